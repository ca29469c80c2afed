/* Stack aggregation for record: frames are interned once, stacks
 * (outermost first) are counted, and unless counts_only each thread keeps
 * a run-length encoded time line of its stacks so the time-ordered
 * formats (speedscope, chrometrace) can be written from the same data. */
#ifndef PYSPY_ANALYZE_AGGREGATE_H
#define PYSPY_ANALYZE_AGGREGATE_H

#include <pyspy.h>

typedef struct pyspy_agg_opts {
    bool include_idle;       /* --idle: keep threads that are not active */
    bool gil_only;           /* --gil: keep only the GIL holder */
    bool exception_only;     /* --mode exception: threads handling one */
    bool gc_frames;          /* --gc: <GC> on top during a collection */
    bool include_thread_ids; /* --threads: a "thread (tid): name" root */
    bool subprocesses;       /* --subprocesses: a "process N:..." root */
    bool show_line_numbers;  /* false: frames differing by line merge */
    uint64_t period_us;      /* expected gap between samples (for runs) */
    uint64_t rate; /* samples a second: a tick weighs 1/rate seconds */
    /* Only the counts (flamegraph, raw): no per-thread time line, so
     * memory grows with the distinct stacks and threads, not with the
     * samples. */
    bool counts_only;
} pyspy_agg_opts;

typedef struct pyspy_agg_frame {
    char *name;
    char *filename; /* short filename when known, else the full one */
    char *full_filename;
    int line; /* 0 when none or line numbers are hidden */
    bool is_native;
    bool is_meta; /* process/thread pseudo-frame (no file) */
} pyspy_agg_frame;

typedef struct pyspy_agg_stack {
    uint32_t *frames; /* indices into frames[], outermost first */
    uint32_t nframes;
    uint64_t count;
} pyspy_agg_stack;

/* Consecutive samples of one thread with the same stack. Each sample is
 * one tick, but the first may stand for more: ticks the sampler skipped
 * (late) or failed just before it, when period_us is set. */
typedef struct pyspy_agg_run {
    uint32_t stack;
    uint32_t count;
    uint32_t first_ticks; /* ticks the first sample stands for (>= 1) */
    int64_t first_us, last_us;
} pyspy_agg_run;

typedef struct pyspy_agg_thread {
    int pid;
    uint64_t thread_id;
    uint64_t os_thread_id;
    char *name; /* latest known threading name, NULL unknown */
    uint64_t samples;
    uint64_t ticks; /* what its samples stand for (>= samples) */
    pyspy_agg_run *runs;
    size_t nruns, caprun;
} pyspy_agg_thread;

typedef struct pyspy_agg pyspy_agg;

struct pyspy_agg {
    pyspy_agg_opts opts;
    pyspy_agg_frame *frames;
    size_t nframes, capframes;
    pyspy_agg_stack *stacks;
    size_t nstacks, capstacks;
    pyspy_agg_thread *threads;
    size_t nthreads, capthreads;
    uint64_t total;  /* samples kept (one per thread per tick) */
    uint64_t gil;    /* kept samples whose thread held the GIL */
    uint64_t active; /* kept samples whose thread was active */
    int64_t first_us, last_us;
    /* Wall-clock time (CLOCK_REALTIME, microseconds) of time 0, so that
     * pyspy_agg_merge can lay recordings on one time line; 0 unknown. */
    int64_t origin_us;
    void *index; /* private hash tables */
};

/* Where offline record puts a file whose capture time is unknown or
 * earlier than the last one: this long after the last. */
#define PYSPY_AGG_GAP_US 10000

pyspy_agg *pyspy_agg_new(const pyspy_agg_opts *opts, pyspy_error *err);
void pyspy_agg_free(pyspy_agg *a);

/* Adds one tick: every trace that passes the filters becomes one sample.
 * ts_us is the tick's time in microseconds (any origin, non-decreasing).
 * *added (may be NULL) receives how many samples were added, also when
 * it fails (out of memory) part way. */
int pyspy_agg_add(pyspy_agg *a, const pyspy_traces *t, int64_t ts_us,
                  size_t *added, pyspy_error *err);

/* Adds count samples of one stack given by its frame labels, outermost
 * first, as a collapsed-stack (raw) file holds them: each label becomes
 * a frame of that name with no file, so pyspy_agg_frame_label gives it
 * back unchanged. No time line. */
int pyspy_agg_add_stack(pyspy_agg *a, const char *const *labels, uint32_t n,
                        uint64_t count, pyspy_error *err);

/* Adds everything src holds to dst as if src's samples had come after
 * dst's in one run: frames, stacks, threads and processes keep their
 * order of first appearance, counts add up, and src's time line is moved
 * by the difference of the origins (or, when that would put it before
 * dst's end, to PYSPY_AGG_GAP_US after it), a thread's last run of dst
 * continuing into its first of src as pyspy_agg_add would have. The two
 * must have the same shape (pyspy_agg_same_shape). */
int pyspy_agg_merge(pyspy_agg *dst, const pyspy_agg *src, pyspy_error *err);

/* Adds src's stacks to dst as labels (pyspy_agg_add_stack), for a dst
 * that also holds raw files' stacks: no threads, no time line. */
int pyspy_agg_merge_labels(pyspy_agg *dst, const pyspy_agg *src,
                           pyspy_error *err);

/* Whether recordings with these options can be merged: the same filters,
 * root frames, line numbers and rate. When not, *which (may be NULL)
 * names the first option that differs ("--idle"). */
bool pyspy_agg_same_shape(const pyspy_agg_opts *x, const pyspy_agg_opts *y,
                          const char **which);

/* The tables pyspy_agg_add fills, for a reader that rebuilds an
 * aggregate (formats/aggregate_file.c): each interns its key, or finds
 * it, into *id. -1 when out of memory or full. */
int pyspy_agg_intern_frame(pyspy_agg *a, const pyspy_agg_frame *f,
                           uint32_t *id);
int pyspy_agg_intern_stack(pyspy_agg *a, const uint32_t *frames, uint32_t n,
                           uint32_t *id);
/* os_thread_id 0 and name NULL leave what is known. */
int pyspy_agg_intern_thread(pyspy_agg *a, int pid, uint64_t thread_id,
                            uint64_t os_thread_id, const char *name,
                            uint32_t *id);
/* Appends a run to a thread's time line, or continues its last run when
 * pyspy_agg_add would have (same stack, one tick, within the period).
 * The thread's samples and ticks are the caller's. */
int pyspy_agg_append_run(pyspy_agg *a, uint32_t thread,
                         const pyspy_agg_run *run);
/* The processes seen (for --subprocesses' parent chains), in order. */
int pyspy_agg_note_process(pyspy_agg *a, int pid, int ppid,
                           const char *cmdline);
size_t pyspy_agg_nprocesses(const pyspy_agg *a);
void pyspy_agg_process(const pyspy_agg *a, size_t i, int *pid, int *ppid,
                       const char **cmdline);

/* Whether a trace passes --idle/--gil/--mode (exposed for top's
 * counters). */
bool pyspy_agg_keeps(const pyspy_agg_opts *opts, const pyspy_trace *tr);

/* "name (file:line)", "name (file)" or "name", as py-spy labels frames
 * in collapsed stacks. malloc'd; NULL when out of memory. */
char *pyspy_agg_frame_label(const pyspy_agg *a, uint32_t frame);

/* A thread as py-spy's format_threadid names it on Linux: the OS thread
 * id in decimal when known ("13721"), else the pthread id in hex
 * ("0x7F12AB"). buf of at least 24 bytes. */
void pyspy_format_thread_id(uint64_t thread_id, uint64_t os_thread_id,
                            char *buf, size_t len);

#endif
