/* Pieces of the record command shared by live (cmd_record.c) and
 * offline (record_offline.c) recording. */
#ifndef PYSPY_ANALYZE_RECORD_H
#define PYSPY_ANALYZE_RECORD_H

#include "analyze/sample/aggregate.h"
#include "analyze/walk/walker.h"
#include <pyspy.h>

/* Whether a format needs each thread's time line and name (the
 * aggregate's runs), not only the counts of its stacks. */
bool pyspy_format_keeps_threads(pyspy_format f);

/* Aggregation and walk options from the command line. */
pyspy_agg_opts pyspy_record_agg_opts(const pyspy_config *cfg);
pyspy_walk_opts pyspy_record_walk_opts(const pyspy_config *cfg);

/* py-spy's default output name: "<program or pid>-<local time>.<ext>".
 * malloc'd. */
char *pyspy_record_default_name(const pyspy_config *cfg, const char *who);

/* The file an offline command writes: cfg's -o, else the default name
 * for who, refused before any input is read when pyspy_out_check would
 * refuse it. malloc'd; NULL once the one-line error is printed. */
char *pyspy_record_output_name(const pyspy_config *cfg, const char *who);

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

/* The input files that paths name: a directory stands for its files
 * (sorted by name, which is a series' time order), anything else for
 * itself. *out (nout names) is the caller's, freed with
 * pyspy_inputs_free. */
int pyspy_inputs_expand(char *const *paths, int n, char ***out, int *nout,
                        pyspy_error *err);
void pyspy_inputs_free(char **paths, int n);

/* A recording named on the command line (analyze/sample/record_input.c),
 * told apart by content: a directory (of snapshots or cores) or one
 * snapshot or core, an aggregate file, or else a raw file. */
typedef enum {
    PYSPY_INPUT_SNAPSHOTS,
    PYSPY_INPUT_AGGREGATE,
    PYSPY_INPUT_RAW
} pyspy_input_kind;
int pyspy_input_kind_of(const char *path, pyspy_input_kind *kind,
                        pyspy_error *err);
/* The options a raw file's stacks are read with: labels as they are. */
pyspy_agg_opts pyspy_raw_agg_opts(const pyspy_config *cfg);
/* Reads it into a new aggregate (*out, the caller's): snapshots as
 * offline record reads them with cfg's options (*errors: files that
 * could not be read), an aggregate file with the options it was recorded
 * with, a raw file's lines as stacks of their labels. what names it in
 * the error line ("base"). 0, or 1 (exit status) after saying why. */
int pyspy_read_recording(const pyspy_config *cfg, const char *what,
                         const char *path, pyspy_input_kind *kind,
                         pyspy_agg **out, uint64_t *errors);

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
