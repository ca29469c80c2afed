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
/* Reads collapsed stacks ("frame;frame;... count" lines, as written by
 * pyspy_write_raw, flamegraph.pl's stackcollapse tools and py-spy) into
 * a with pyspy_agg_add_stack. name is for messages ("name:line: ..."). */
int pyspy_read_raw(FILE *in, const char *name, pyspy_agg *a, pyspy_error *err);
int pyspy_write_speedscope(FILE *out, const pyspy_agg *a, pyspy_error *err);
int pyspy_write_chrometrace(FILE *out, const pyspy_agg *a, pyspy_error *err);
/* gzipped pprof profile.proto (formats/profile.proto); needs the
 * per-thread time line (not counts_only) for its thread labels. */
int pyspy_write_pprof(FILE *out, const pyspy_agg *a, pyspy_error *err);

/* pyspy's aggregate file (formats/aggregate_file.c): everything a
 * recording holds (frames, stacks, threads and their time lines), so
 * partial recordings merge into what one run over all their inputs
 * gives. The reader takes data (the whole file, len bytes) as hostile
 * and gives a new aggregate with the options it was recorded with. */
int pyspy_write_aggregate(FILE *out, const pyspy_agg *a, pyspy_error *err);
bool pyspy_is_aggregate(const void *head, size_t n);
int pyspy_read_aggregate(const void *data, size_t len, const char *name,
                         pyspy_agg **out, pyspy_error *err);

/* How a flamegraph's boxes look, for a writer that draws the same
 * layout with its own colours and hover text (the differential
 * flamegraph, formats/flamegraph_diff.c). */
typedef struct pyspy_fg_style {
    void *ctx;
    /* The box whose stack prefix is path[0..depth-1] (depth 0: the root)
     * and count of total samples: a CSS colour into colour, and into info
     * the hover text after the label (preset to "(N samples, P%)"). */
    void (*box)(void *ctx, const uint32_t *path, uint32_t depth, uint64_t count,
                uint64_t total, char *colour, size_t clen, char *info,
                size_t ilen);
    /* Drawn into a band of legend_height px above the boxes, from y. */
    void (*legend)(void *ctx, FILE *out, double width, int y);
    int legend_height;
} pyspy_fg_style;
int pyspy_write_flamegraph_styled(FILE *out, const pyspy_agg *a,
                                  const char *title,
                                  const pyspy_fg_style *style,
                                  pyspy_error *err);

/* base and new as one flamegraph laid out by new's samples, each box
 * coloured by the change in its share of all samples (red grew, blue
 * shrank) and its hover text carrying both counts and shares. */
int pyspy_write_flamegraph_diff(FILE *out, const pyspy_agg *base,
                                const pyspy_agg *new_agg, const char *title,
                                pyspy_error *err);

/* Dispatches on the format. */
int pyspy_write_record(FILE *out, pyspy_format fmt, const pyspy_agg *a,
                       const char *title, pyspy_error *err);

/* Writes s (NULL: "") as a JSON string, cleaned first by
 * pyspy_text_clean, so only '"' and '\\' need escapes. -1 when out of
 * memory. The speedscope and Chrome trace writers stream their documents
 * with it: a long recording has an entry per sample. */
int pyspy_json_put_clean(FILE *out, const char *s);

/* A copy of s that is valid UTF-8 without control characters (each bad
 * byte or control becomes '?'), safe in XML, JSON and one-line text.
 * malloc'd; NULL when out of memory. */
char *pyspy_text_clean(const char *s);

#endif
