/* The sampling loop shared by record and top: at a fixed rate against
 * CLOCK_MONOTONIC with absolute deadlines (no drift; a deadline missed
 * is skipped, not caught up), one sample = suspend the target, walk every
 * thread, resume. With subprocesses, Python
 * descendants are picked up while sampling. */
#ifndef PYSPY_ANALYZE_SAMPLER_H
#define PYSPY_ANALYZE_SAMPLER_H

#include <signal.h>

#include "analyze/walk/walker.h"
#include <pyspy.h>

typedef enum {
    PYSPY_STOP_NONE = 0,
    PYSPY_STOP_DURATION,
    PYSPY_STOP_SIGNAL,   /* the stop flag (Ctrl-C) */
    PYSPY_STOP_EXITED,   /* every target process exited */
    PYSPY_STOP_CALLBACK, /* on_tick asked to stop (top's q) */
    PYSPY_STOP_ERROR     /* a callback failed */
} pyspy_stop_reason;

typedef struct pyspy_sampler_stats {
    uint64_t ticks;   /* sampling intervals run */
    uint64_t samples; /* traces delivered (threads × ticks) */
    uint64_t errors;  /* failed reads of a target in a tick */
    uint64_t late;    /* ticks taken after a skipped one */
    uint64_t missed;  /* ticks skipped: their slot passed during another */
    int64_t max_late_us;
    int64_t elapsed_us;
    /* Lock mode: how long the targets were held stopped, summed */
    uint64_t paused_ns, pauses;
    uint64_t rewalks;        /* samples walked again, every thread stopped */
    int nprocs;              /* processes being sampled now */
    int nprocs_seen;         /* distinct processes sampled so far */
    char python_version[32]; /* of the first interpreter found */
    int pid;                 /* the root target */
    pyspy_stop_reason reason;
} pyspy_sampler_stats;

typedef struct pyspy_sampler_opts {
    int pid;
    uint64_t rate; /* Hz, >= 1 */
    /* With timed, sampling lasts duration_us of wall-clock time from the
     * first tick (0: it stops before the first); without, until another
     * stop condition. */
    bool timed;
    int64_t duration_us;
    pyspy_lock_mode lock;
    bool subprocesses;
    pyspy_walk_opts walk;
    /* Nothing shown depends on whether a thread runs (record --idle): a
     * NonBlocking sampler leaves the kernel's thread states unread. */
    bool skip_thread_states;
    /* How long to wait for the root to start running Python (a spawned
     * program is still starting up); 0 = try a few times only. */
    uint64_t attach_wait_ms;
    volatile sig_atomic_t *stop; /* set by a signal handler */
    /* Called with each target's traces (the sampler frees them after).
     * ts_us counts from the first tick. Return -1 to abort. */
    int (*on_traces)(void *ctx, const pyspy_traces *t, int64_t ts_us);
    /* Called once the root is attached (or, with subprocesses, being
     * watched), before the first tick. */
    void (*on_attached)(void *ctx, const pyspy_sampler_stats *st);
    /* Called after every tick; return 1 to stop, -1 to abort. */
    int (*on_tick)(void *ctx, const pyspy_sampler_stats *st);
    void *ctx;
} pyspy_sampler_opts;

/* Attaches, samples until a stop condition, detaches. Fails (-1) only
 * when the root cannot be attached (no such process, no Python,
 * permissions) or a callback aborted; stats->reason says why it ended. */
int pyspy_sampler_run(const pyspy_sampler_opts *o, pyspy_sampler_stats *st,
                      pyspy_error *err);

/* Descendants of root (children, grandchildren, ...) from /proc, at most
 * max; returns how many were stored. */
size_t pyspy_descendant_pids(int root, int *out, size_t max);

#endif
