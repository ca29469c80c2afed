/* top's counters, py-spy style: per function (and per line) the samples
 * where it was the innermost frame (own) or anywhere on the stack
 * (total), both for the current refresh interval and overall. */
#ifndef PYSPY_ANALYZE_TOP_STATS_H
#define PYSPY_ANALYZE_TOP_STATS_H

#include "analyze/sample/aggregate.h"
#include "capture/base/map.h"
#include <pyspy.h>

typedef struct pyspy_top_entry {
    char *label; /* "name (file:line)" or "name (file)" */
    uint64_t cur_own, cur_total, all_own, all_total;
} pyspy_top_entry;

typedef struct pyspy_top_table {
    pyspy_top_entry *e;
    size_t n, cap;
    pyspy_map index; /* label -> position in e */
} pyspy_top_table;

typedef struct pyspy_top_stats {
    pyspy_top_table lines, funcs;
    uint64_t current_samples, overall_samples; /* ticks */
    uint64_t errors, late;
    uint64_t threads, processes; /* seen in the latest tick */
    uint64_t gil, active;        /* kept traces, current interval */
    char last_error[256];
    /* per-tick scratch */
    uint64_t tick_threads, tick_processes;
} pyspy_top_stats;

/* Adds one process's traces of the current tick. -1 on out of memory. */
int pyspy_top_add(pyspy_top_stats *s, const pyspy_agg_opts *opts,
                  const pyspy_traces *t);
/* Closes the tick (errors: failed reads in it). */
void pyspy_top_tick(pyspy_top_stats *s, uint64_t errors, bool late);
/* Starts a new refresh interval (current counters to zero). */
void pyspy_top_reset_current(pyspy_top_stats *s);
void pyspy_top_free(pyspy_top_stats *s);

/* Sort keys: 1 %Own, 2 %Total, 3 OwnTime, 4 TotalTime. Fills order with
 * indices into the table, best first. */
void pyspy_top_sort(const pyspy_top_table *t, int column, uint32_t *order);

#endif
