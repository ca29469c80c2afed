/* The differential flamegraph: the flamegraph writer's layout of the new
 * recording (formats/flamegraph.c), with each box coloured by how the
 * share of all samples its stack prefix holds changed from the base
 * recording, and hover text carrying both counts and shares. Stack
 * prefixes are matched by their frame labels, so a raw file and a set of
 * snapshots compare as long as they label frames alike. */
#include "formats/record_formats.h"
#include "capture/base/array.h"
#include "capture/base/map.h"
#include "capture/base/strtab.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 4096 /* as the flamegraph writer: deeper frames dropped */

/* A prefix tree of both recordings' stacks by label id. */
typedef struct node {
    uint32_t parent, label;
    uint64_t base, cur; /* samples under this prefix in base and new */
} node;

typedef struct dtree {
    node *nodes;
    size_t n, cap;
    pyspy_map children; /* parent << 32 | label -> node */
    pyspy_strtab labels;
} dtree;

/* The child of parent with label; created when add, else UINT32_MAX when
 * there is none. -1 on OOM. */
static int child(dtree *t, uint32_t parent, uint32_t label, bool add,
                 uint32_t *out) {
    uint64_t key = (uint64_t)parent << 32 | label;
    *out = UINT32_MAX;
    if (pyspy_map_find(&t->children, key, out) || !add)
        return 0;
    if (t->n >= UINT32_MAX - 1 ||
        pyspy_array_reserve(&t->nodes, &t->cap, t->n + 1, sizeof *t->nodes,
                            1024))
        return -1;
    uint32_t v = (uint32_t)t->n;
    bool added;
    if (pyspy_map_add(&t->children, key, &v, &added))
        return -1;
    t->nodes[t->n++] = (node){parent, label, 0, 0};
    *out = v;
    return 0;
}

/* Cleaned labels of a's frames as label ids (the flamegraph writer shows
 * the same cleaned labels). */
static uint32_t *frame_labels(dtree *t, const pyspy_agg *a) {
    uint32_t *ids = malloc((a->nframes ? a->nframes : 1) * sizeof *ids);
    if (!ids)
        return NULL;
    for (size_t i = 0; i < a->nframes; i++) {
        char *l = pyspy_agg_frame_label(a, (uint32_t)i);
        char *c = l ? pyspy_text_clean(l) : NULL;
        free(l);
        int rc = c ? pyspy_strtab_intern(&t->labels, c, &ids[i]) : -1;
        free(c);
        if (rc) {
            free(ids);
            return NULL;
        }
    }
    return ids;
}

static int add_recording(dtree *t, const pyspy_agg *a, const uint32_t *lab,
                         bool is_base) {
    for (size_t s = 0; s < a->nstacks; s++) {
        const pyspy_agg_stack *st = &a->stacks[s];
        if (!st->count)
            continue;
        uint32_t at = 0;
        if (is_base)
            t->nodes[0].base += st->count;
        else
            t->nodes[0].cur += st->count;
        uint32_t n = st->nframes < MAX_DEPTH - 1 ? st->nframes : MAX_DEPTH - 1;
        for (uint32_t k = 0; k < n; k++) {
            if (st->frames[k] >= a->nframes ||
                child(t, at, lab[st->frames[k]], true, &at))
                return -1;
            if (is_base)
                t->nodes[at].base += st->count;
            else
                t->nodes[at].cur += st->count;
        }
    }
    return 0;
}

typedef struct dctx {
    dtree t;
    const uint32_t *new_labels; /* new's frame -> label id */
    uint64_t base_total, new_total;
    double max_change;  /* largest |share change| of any prefix */
    uint64_t base_gone; /* base samples under prefixes new lacks */
    /* The last path looked up and its nodes: boxes come in depth-first
     * order, so most of each path was just walked. */
    uint32_t last[MAX_DEPTH], last_nodes[MAX_DEPTH + 1];
    uint32_t nlast;
} dctx;

static double share(uint64_t n, uint64_t total) {
    return total ? (double)n / (double)total : 0;
}

static uint32_t lookup(dctx *d, const uint32_t *path, uint32_t depth) {
    uint32_t k = 0;
    while (k < depth && k < d->nlast && d->last[k] == path[k])
        k++;
    uint32_t at = d->last_nodes[k];
    for (; k < depth && at != UINT32_MAX; k++) {
        d->last[k] = path[k];
        if (child(&d->t, at, d->new_labels[path[k]], false, &at))
            at = UINT32_MAX;
        d->last_nodes[k + 1] = at;
    }
    d->nlast = at == UINT32_MAX ? 0 : depth;
    return at;
}

static void diff_box(void *ctx, const uint32_t *path, uint32_t depth,
                     uint64_t count, uint64_t total, char *colour, size_t clen,
                     char *info, size_t ilen) {
    dctx *d = ctx;
    (void)total;
    uint32_t at = depth < MAX_DEPTH ? lookup(d, path, depth) : UINT32_MAX;
    uint64_t base = at == UINT32_MAX ? 0 : d->t.nodes[at].base;
    double sb = share(base, d->base_total), sn = share(count, d->new_total);
    double change = sn - sb;
    double f = d->max_change > 0 ? fabs(change) / d->max_change : 0;
    if (f > 1)
        f = 1;
    /* Hue 0 red (grew), 220 blue (shrank); the larger the change the
     * deeper the colour, near white when about the same. */
    snprintf(colour, clen, "hsl(%d,%d%%,%d%%)", change >= 0 ? 0 : 220,
             f > 0 ? 85 : 0, (int)lround(96 - 46 * f));
    snprintf(info, ilen,
             "(base %" PRIu64 " sample%s, %.2f%%; new %" PRIu64
             " sample%s, %.2f%%; %+.2f points)",
             base, base == 1 ? "" : "s", 100 * sb, count, count == 1 ? "" : "s",
             100 * sn, 100 * change);
}

static void diff_legend(void *ctx, FILE *out, double width, int y) {
    dctx *d = ctx;
    /* Five swatches from the largest shrink to the largest growth. */
    static const struct {
        int hue, sat, light;
        double f;
    } sw[] = {{220, 85, 50, -1},
              {220, 85, 73, -0.5},
              {0, 0, 96, 0},
              {0, 85, 73, 0.5},
              {0, 85, 50, 1}};
    double x = 10;
    fprintf(out,
            "<g id=\"legend\">\n<text x=\"%.0f\" y=\"%d\">share of "
            "samples:</text>\n",
            x, y + 12);
    x += 140;
    for (size_t i = 0; i < sizeof sw / sizeof sw[0]; i++) {
        fprintf(out,
                "<rect class=\"swatch\" x=\"%.0f\" y=\"%d\" width=\"14\" "
                "height=\"12\" fill=\"hsl(%d,%d%%,%d%%)\" stroke=\"#888\" "
                "stroke-width=\"0.5\"/><text x=\"%.0f\" y=\"%d\">%+.1f "
                "pts%s</text>\n",
                x, y + 2, sw[i].hue, sw[i].sat, sw[i].light, x + 18, y + 12,
                100 * sw[i].f * d->max_change,
                sw[i].f < 0   ? " (shrank)"
                : sw[i].f > 0 ? " (grew)"
                              : "");
        x += 150;
    }
    fprintf(out,
            "<text id=\"legend-totals\" x=\"%.0f\" y=\"%d\" "
            "text-anchor=\"end\">base %" PRIu64 " samples, new %" PRIu64
            " samples; %.2f%% of base in stacks new lacks</text>\n</g>\n",
            width - 10, y + 28, d->base_total, d->new_total,
            100 * share(d->base_gone, d->base_total));
}

/* a with each frame replaced by its cleaned label: frames that differ
 * but look alike (the same label) become one, so each box of the layout
 * is one prefix of labels, the unit the two sides are compared in. */
static pyspy_agg *by_label(const pyspy_agg *a, pyspy_error *err) {
    pyspy_agg_opts o = {.show_line_numbers = true, .counts_only = true};
    pyspy_agg *out = pyspy_agg_new(&o, err);
    char **labels = calloc(a->nframes ? a->nframes : 1, sizeof *labels);
    const char **path = malloc(MAX_DEPTH * sizeof *path);
    int rc = out && labels && path ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < a->nframes; i++) {
        char *l = pyspy_agg_frame_label(a, (uint32_t)i);
        labels[i] = l ? pyspy_text_clean(l) : NULL;
        free(l);
        if (!labels[i])
            rc = -1;
    }
    if (rc)
        pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    for (size_t s = 0; rc == 0 && s < a->nstacks; s++) {
        const pyspy_agg_stack *st = &a->stacks[s];
        if (!st->count)
            continue;
        uint32_t n = st->nframes < MAX_DEPTH - 1 ? st->nframes : MAX_DEPTH - 1;
        for (uint32_t k = 0; k < n && rc == 0; k++)
            if (st->frames[k] < a->nframes)
                path[k] = labels[st->frames[k]];
            else
                rc = pyspy_error_set(err, PYSPY_E_GENERIC, "bad frame");
        if (rc == 0)
            rc = pyspy_agg_add_stack(out, path, n, st->count, err);
    }
    if (labels)
        for (size_t i = 0; i < a->nframes; i++)
            free(labels[i]);
    free(labels);
    free(path);
    if (rc) {
        pyspy_agg_free(out);
        return NULL;
    }
    return out;
}

int pyspy_write_flamegraph_diff(FILE *out, const pyspy_agg *base_in,
                                const pyspy_agg *new_in, const char *title,
                                pyspy_error *err) {
    dctx *d = calloc(1, sizeof *d);
    uint32_t *base_labels = NULL, *new_labels = NULL;
    pyspy_agg *base = NULL, *new_agg = NULL;
    int rc = -1;
    if (!d)
        goto oom;
    base = by_label(base_in, err);
    new_agg = base ? by_label(new_in, err) : NULL;
    if (!new_agg)
        goto done;
    if (pyspy_array_reserve(&d->t.nodes, &d->t.cap, 1, sizeof *d->t.nodes,
                            1024))
        goto oom;
    d->t.nodes[0] = (node){UINT32_MAX, UINT32_MAX, 0, 0};
    d->t.n = 1;
    base_labels = frame_labels(&d->t, base);
    new_labels = frame_labels(&d->t, new_agg);
    if (!base_labels || !new_labels ||
        add_recording(&d->t, base, base_labels, true) ||
        add_recording(&d->t, new_agg, new_labels, false))
        goto oom;
    d->new_labels = new_labels;
    d->base_total = d->t.nodes[0].base;
    d->new_total = d->t.nodes[0].cur;
    for (size_t i = 1; i < d->t.n; i++) {
        const node *nd = &d->t.nodes[i];
        double c =
            fabs(share(nd->cur, d->new_total) - share(nd->base, d->base_total));
        if (c > d->max_change)
            d->max_change = c;
        /* Count a vanished prefix once, at its top. */
        if (!nd->cur && d->t.nodes[nd->parent].cur)
            d->base_gone += nd->base;
    }
    d->last_nodes[0] = 0;
    pyspy_fg_style style = {
        .ctx = d, .box = diff_box, .legend = diff_legend, .legend_height = 34};
    rc = pyspy_write_flamegraph_styled(out, new_agg, title, &style, err);
    goto done;
oom:
    pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
done:
    pyspy_agg_free(base);
    pyspy_agg_free(new_agg);
    free(base_labels);
    free(new_labels);
    if (d) {
        pyspy_strtab_free(&d->t.labels);
        pyspy_map_free(&d->t.children);
        free(d->t.nodes);
        free(d);
    }
    return rc;
}
