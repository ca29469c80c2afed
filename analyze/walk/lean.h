/* Reading the stacks and keeping what the read needed: a lean snapshot
 * of the same instant. (analyze/walk/lean.c) */
#ifndef PYSPY_ANALYZE_WALK_LEAN_H
#define PYSPY_ANALYZE_WALK_LEAN_H

#include "capture/snapshot/snapshot.h"
#include <pyspy.h>

/* What writing a lean snapshot cost. */
typedef struct pyspy_lean_stats {
    size_t pages;            /* pages kept */
    uint64_t pause_ns;       /* the target's stop, 0 when it was not ours */
    pyspy_snapshot_stats io; /* memory and file bytes */
} pyspy_lean_stats;

/* pyspy_traces_read through a recording source over src, then the pages
 * that read (with opts->native also each thread's stack in use) written
 * to path by the capture library's lean writer, after the target is let
 * go. */
int pyspy_traces_read_lean(pyspy_memsrc *src, const pyspy_trace_opts *opts,
                           const char *path, pyspy_traces *out,
                           pyspy_lean_stats *stats, pyspy_error *err);

#endif
