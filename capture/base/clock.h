/* The monotonic clock every timing in the tree reads (pauses, sample
 * periods, progress, cache ages). (capture/base/clock.c) */
#ifndef PYSPY_CAPTURE_BASE_CLOCK_H
#define PYSPY_CAPTURE_BASE_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds and in microseconds. */
int64_t pyspy_clock_ns(void);
int64_t pyspy_clock_us(void);

#endif
