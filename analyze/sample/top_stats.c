/* top's per-function and per-line counters. */
#include "capture/base/array.h"
#include "analyze/sample/top_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct label_key {
    const pyspy_top_table *t;
    const char *label;
} label_key;

static bool label_eq(const void *ctx, uint32_t v) {
    const label_key *k = ctx;
    return strcmp(k->t->e[v].label, k->label) == 0;
}

/* Finds or adds label; NULL on out of memory. */
static pyspy_top_entry *entry(pyspy_top_table *t, const char *label) {
    label_key key = {t, label};
    uint64_t h = pyspy_hash_bytes(label, strlen(label));
    uint32_t at;
    if (pyspy_map_find_hashed(&t->index, h, label_eq, &key, &at))
        return &t->e[at];
    if (t->n >= UINT32_MAX)
        return NULL;
    if (pyspy_array_reserve(&t->e, &t->cap, t->n + 1, sizeof *t->e, 128) != 0)
        return NULL;
    char *l = strdup(label);
    if (!l)
        return NULL;
    at = (uint32_t)t->n;
    bool added;
    if (pyspy_map_add_hashed(&t->index, h, label_eq, &key, &at, &added) != 0) {
        free(l);
        return NULL;
    }
    t->e[t->n] = (pyspy_top_entry){.label = l};
    return &t->e[t->n++];
}

static char *label_of(const pyspy_frame *f, bool line) {
    const char *file = f->short_filename ? f->short_filename
                       : f->filename     ? f->filename
                                         : "";
    const char *name = f->name ? f->name : "<unknown>";
    size_t len = strlen(file) + strlen(name) + 32;
    char *s = malloc(len);
    if (!s)
        return NULL;
    if (line && f->line)
        snprintf(s, len, "%s (%s:%d)", name, file, f->line);
    else
        snprintf(s, len, "%s (%s)", name, file);
    return s;
}

/* A recursive function counts once per sample in its total. Entries
 * are remembered by index: the table may move while a trace is counted. */
static int count_trace(pyspy_top_table *t, const pyspy_trace *tr, bool line) {
    size_t *seen = calloc(tr->nframes ? tr->nframes : 1, sizeof *seen);
    if (!seen)
        return -1;
    size_t nseen = 0;
    int rc = 0;
    for (size_t i = 0; i < tr->nframes; i++) {
        char *l = label_of(&tr->frames[i], line);
        pyspy_top_entry *e = l ? entry(t, l) : NULL;
        free(l);
        if (!e) {
            rc = -1;
            break;
        }
        size_t idx = (size_t)(e - t->e);
        bool dup = false;
        for (size_t k = 0; k < nseen && !dup; k++)
            dup = seen[k] == idx;
        if (i == 0) {
            e->cur_own++;
            e->all_own++;
        }
        if (dup)
            continue;
        seen[nseen++] = idx;
        e->cur_total++;
        e->all_total++;
    }
    free(seen);
    return rc;
}

int pyspy_top_add(pyspy_top_stats *s, const pyspy_agg_opts *opts,
                  const pyspy_traces *t) {
    s->tick_processes++;
    for (size_t i = 0; i < t->ntraces; i++) {
        const pyspy_trace *tr = &t->traces[i];
        s->tick_threads++;
        if (!pyspy_agg_keeps(opts, tr))
            continue;
        s->gil += tr->owns_gil;
        s->active += tr->active;
        if (count_trace(&s->lines, tr, true) ||
            count_trace(&s->funcs, tr, false))
            return -1;
    }
    return 0;
}

void pyspy_top_tick(pyspy_top_stats *s, uint64_t errors, bool late) {
    s->current_samples++;
    s->overall_samples++;
    s->errors += errors;
    s->late += late;
    s->threads = s->tick_threads;
    s->processes = s->tick_processes;
    s->tick_threads = s->tick_processes = 0;
}

static void reset_table(pyspy_top_table *t) {
    for (size_t i = 0; i < t->n; i++)
        t->e[i].cur_own = t->e[i].cur_total = 0;
}

void pyspy_top_reset_current(pyspy_top_stats *s) {
    reset_table(&s->lines);
    reset_table(&s->funcs);
    s->gil = s->active = 0;
    s->current_samples = 0;
}

static void free_table(pyspy_top_table *t) {
    for (size_t i = 0; i < t->n; i++)
        free(t->e[i].label);
    free(t->e);
    pyspy_map_free(&t->index);
    memset(t, 0, sizeof *t);
}

void pyspy_top_free(pyspy_top_stats *s) {
    free_table(&s->lines);
    free_table(&s->funcs);
}

static uint64_t key(const pyspy_top_entry *e, int column) {
    switch (column) {
    case 1:
        return e->cur_own;
    case 2:
        return e->cur_total;
    case 4:
        return e->all_total;
    default:
        return e->all_own;
    }
}

typedef struct sort_ctx {
    const pyspy_top_table *t;
    int column;
} sort_ctx;

static int cmp(const void *x, const void *y, void *c) {
    const sort_ctx *s = c;
    const pyspy_top_entry *a = &s->t->e[*(const uint32_t *)x];
    const pyspy_top_entry *b = &s->t->e[*(const uint32_t *)y];
    uint64_t ka = key(a, s->column), kb = key(b, s->column);
    if (ka != kb)
        return ka < kb ? 1 : -1;
    /* Ties: the other time column, then the name, for a calm display. */
    uint64_t ta = a->all_total, tb = b->all_total;
    if (ta != tb)
        return ta < tb ? 1 : -1;
    return strcmp(a->label, b->label);
}

void pyspy_top_sort(const pyspy_top_table *t, int column, uint32_t *order) {
    for (size_t i = 0; i < t->n; i++)
        order[i] = (uint32_t)i;
    sort_ctx c = {t, column};
    qsort_r(order, t->n, sizeof *order, cmp, &c);
}
