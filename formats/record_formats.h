/* Writers for record's output formats, all made from one aggregation
 * (analyze/sample/aggregate.h): flamegraph SVG, raw collapsed stacks,
 * speedscope JSON and Chrome trace-event JSON. */
#ifndef PYSPY_FORMATS_RECORD_FORMATS_H
#define PYSPY_FORMATS_RECORD_FORMATS_H

#include <stdio.h>

#include "analyze/sample/aggregate.h"

/* title: shown at the top of the flamegraph (py-spy: the command line). */
int pyspy_write_flamegraph(FILE *out, const pyspy_agg *a, const char *title,
                           pyspy_error *err);
int pyspy_write_raw(FILE *out, const pyspy_agg *a, pyspy_error *err);
int pyspy_write_speedscope(FILE *out, const pyspy_agg *a, pyspy_error *err);
int pyspy_write_chrometrace(FILE *out, const pyspy_agg *a, pyspy_error *err);
/* gzipped pprof profile.proto (formats/profile.proto); needs the
 * per-thread time line (not counts_only) for its thread labels. */
int pyspy_write_pprof(FILE *out, const pyspy_agg *a, pyspy_error *err);

/* Dispatches on the format. */
int pyspy_write_record(FILE *out, pyspy_format fmt, const pyspy_agg *a,
                       const char *title, pyspy_error *err);

/* Writes doc as one line of JSON (the speedscope and Chrome trace
 * writers' last step). */
struct cJSON;
int pyspy_write_json(FILE *out, const struct cJSON *doc, pyspy_error *err);

/* A copy of s that is valid UTF-8 without control characters (each bad
 * byte or control becomes '?'), safe in XML, JSON and one-line text.
 * malloc'd; NULL when out of memory. */
char *pyspy_text_clean(const char *s);

#endif
