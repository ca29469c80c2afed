/* Walking every interpreter, thread state and frame chain into the
 * stack-trace model (analyze/walk/threads.c, analyze/walk/frames.c,
 * analyze/walk/line_table.c, ...). */
#ifndef PYSPY_ANALYZE_WALKER_H
#define PYSPY_ANALYZE_WALKER_H

#include <pyspy.h>
#include "analyze/cpython/python.h"

typedef struct pyspy_walk_opts {
    pyspy_lineno lineno;
    uint64_t locals;     /* 0 none, 1 short reprs, 2+ longer reprs */
    bool full_filenames; /* else short_filename is filled as py-spy does */
    bool native;
    /* Optional, kept by a sampler across walks of one target
     * (analyze/walk/cache.h); NULL reads everything on every walk. */
    struct pyspy_walk_cache *cache;
    /* Optional: where the reads that cache refreshes every few seconds
     * (sys.path, thread names) go, such as the source a per-sample page
     * cache reads through: they touch a hundred pages once, and each page
     * that cache would fill is a page fault of our own, which costs more
     * than the small reads. NULL: the walked source. */
    pyspy_memsrc *cold_src;
    /* Nothing will show thread names: leave the threading module unread
     * (a walk of its dicts was a tenth of a sampler's start-up). */
    bool skip_thread_names;
    /* Nothing will use which thread holds the GIL (record without
     * --gil): leave the lock unread, one page fewer per sample. */
    bool skip_gil;
    /* Nothing will show whether the collector runs (record without
     * --gc, top): leave its state unread. */
    bool skip_gc;
    /* Read whether each thread handles an exception (record --mode
     * exception); off, handling_exception stays false. */
    bool exceptions;
} pyspy_walk_opts;

/* Fills out with one trace per Python thread of every interpreter. A frame
 * chain that cannot be read (wild pointer, cycle) ends with a frame marked
 * unreadable; it is not an error. Returns -1 only when nothing could be
 * read at all. */
int pyspy_stack_traces(pyspy_memsrc *src, const pyspy_python *py,
                       const pyspy_walk_opts *opts, pyspy_traces *out,
                       pyspy_error *err);

#endif
