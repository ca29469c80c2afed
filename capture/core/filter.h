/* A view of a memory source with coredump_filter applied (regions left
 * out become absent). Used by core ingest. (capture/core/filter.c) */
#ifndef PYSPY_CAPTURE_CORE_FILTER_H
#define PYSPY_CAPTURE_CORE_FILTER_H

#include "capture/snapshot/snapshot.h"

/* The view shares src's threads, modules and process facts and reads
 * through src; close the view (pyspy_memsrc_close) before src. */
int pyspy_core_filter_view(pyspy_memsrc *src, uint32_t filter,
                           pyspy_memsrc **out, pyspy_error *err);

#endif
