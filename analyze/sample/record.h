/* Pieces of the record command shared by live (cmd_record.c) and
 * offline (record_offline.c) recording. */
#ifndef PYSPY_ANALYZE_RECORD_H
#define PYSPY_ANALYZE_RECORD_H

#include "analyze/sample/aggregate.h"
#include "analyze/walk/walker.h"
#include <pyspy.h>

/* Aggregation and walk options from the command line. */
pyspy_agg_opts pyspy_record_agg_opts(const pyspy_config *cfg);
pyspy_walk_opts pyspy_record_walk_opts(const pyspy_config *cfg);

/* py-spy's default output name: "<program or pid>-<local time>.<ext>".
 * malloc'd. */
char *pyspy_record_default_name(const pyspy_config *cfg, const char *who);

/* Writes the file and prints py-spy's summary line ("Wrote flamegraph
 * data to 'x'. Samples: N Errors: M"). lede prefixes our messages when
 * they share the terminal with the program's output. 0 or 1 (exit). */
int pyspy_record_write(const pyspy_config *cfg, const pyspy_agg *a,
                       const char *filename, const char *title,
                       uint64_t samples, uint64_t errors, const char *lede);

/* Offline: each snapshot/core is one sample of each of its threads. */
/* Reads inputs into a new aggregate (*out, the caller's), printing
 * record's warnings; 0, or 1 (exit status) after saying why. */
int pyspy_record_offline_read(const pyspy_config *cfg, char *const *inputs,
                              int ninputs, pyspy_agg **out, uint64_t *kept,
                              uint64_t *errors);
int pyspy_record_offline(const pyspy_config *cfg);

/* Progress on stderr when it is a terminal: "\r..." updated at most
 * every 100 ms; pyspy_progress_done clears the line. */
typedef struct pyspy_progress {
    bool enabled;
    int64_t last_us;
    int width;
} pyspy_progress;
void pyspy_progress_init(pyspy_progress *p, bool hide);
void pyspy_progress_update(pyspy_progress *p, int64_t elapsed_us,
                           uint64_t samples, uint64_t errors, uint64_t done,
                           uint64_t total);
/* The same for a run of total_us of wall-clock time (0: unlimited). */
void pyspy_progress_update_timed(pyspy_progress *p, int64_t elapsed_us,
                                 uint64_t samples, uint64_t errors,
                                 int64_t total_us);
void pyspy_progress_done(pyspy_progress *p);

#endif
