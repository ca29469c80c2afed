/* The pyspy-capture flow: one snapshot of a live process (copied to RAM
 * while stopped, resumed, then compressed), a process tree, or a series.
 * (capture/tool/run.c) */
#ifndef PYSPY_CAPTURE_CAPTURE_RUN_H
#define PYSPY_CAPTURE_CAPTURE_RUN_H

#include <pyspy.h>
#include <stdio.h>

typedef struct pyspy_capture_result {
    int pid;
    size_t nthreads;
    uint64_t memory_bytes;
    uint64_t file_bytes;
    uint64_t pause_ns; /* how long the target was stopped; 0 if not by us */
    bool streamed;     /* written while stopped: over the memory budget */
} pyspy_capture_result;

/* Snapshots pid into path. Messages (the over-budget notice) go to log,
 * which may be NULL. */
int pyspy_capture_pid(int pid, const pyspy_capture_config *cfg,
                      const char *path, FILE *log, pyspy_capture_result *res,
                      pyspy_error *err);

/* "pyspy-<pid>-<UTC YYYYmmddTHHMMSSZ>.core.zst" (pid <= 0: "core"
 * instead), in dir (NULL = current directory); seq >= 0 is added before
 * the extension for the files of a series. malloc'd. */
char *pyspy_capture_default_name(const char *dir, int pid, int64_t time_ns,
                                 long seq);

/* The output path for pid when a whole tree is captured into one -o:
 * "out-<pid>.core.zst" from "out.core.zst"; a directory gets default
 * names inside. malloc'd. */
char *pyspy_capture_tree_name(const char *output, int pid, int64_t time_ns);

/* One line: pid, threads, memory, file size, ratio, pause. */
void pyspy_capture_summary(FILE *out, const char *path,
                           const pyspy_capture_result *res);

/* Runs a series: a snapshot every 1/rate s for duration s into dir
 * (created if missing). Stops early, without error, when the target
 * exits after at least one snapshot. Summaries go to out. *count gets how
 * many were written. */
int pyspy_capture_series(const pyspy_capture_config *cfg, FILE *out, FILE *log,
                         size_t *count, pyspy_error *err);

/* The snapshot being written now (NULL: none), so that a fatal signal
 * can remove its temporary file; set around every write. */
void pyspy_capture_mark_writing(const char *path);
/* Async-signal-safe: removes the temporary file of the snapshot being
 * written, if any. */
void pyspy_capture_remove_partial(void);

#endif
