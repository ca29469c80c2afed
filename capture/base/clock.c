/* pyspy_clock_ns, pyspy_clock_us (capture/base/clock.h). */
#include "capture/base/clock.h"

#include <time.h>

int64_t pyspy_clock_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t pyspy_clock_us(void) {
    return pyspy_clock_ns() / 1000;
}
