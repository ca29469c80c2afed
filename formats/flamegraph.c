/* A self-contained interactive flamegraph SVG (icicle: the outermost
 * frame at the top, as py-spy draws it). Stacks are sorted by their frame
 * labels so equal prefixes become one box; boxes narrower than
 * MIN_WIDTH_PX are left out (their time stays in the parent), which keeps
 * tens of thousands of distinct stacks readable and the file small. */
#include "formats/flamegraph_parts.h"
#include "formats/record_formats.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define IMG_WIDTH 1200.0
#define PAD 10.0
#define FRAME_H 16
#define TOP 48    /* title, buttons */
#define BOTTOM 28 /* details line */
#define MIN_WIDTH_PX 0.1
#define MAX_DEPTH 4096 /* hostile input: deeper frames are dropped */

typedef struct fg {
    const pyspy_agg *a;
    const pyspy_fg_style *style; /* NULL: colour by package */
    FILE *out;
    int top;       /* y of the first row of boxes */
    char **labels; /* cleaned frame labels, NULL for unused */
    uint64_t total;
    double scale; /* px per sample */
} fg;

static int cmp_stacks(const void *x, const void *y, void *ctx) {
    const fg *sort_ctx = ctx;
    const pyspy_agg_stack *s = &sort_ctx->a->stacks[*(const uint32_t *)x];
    const pyspy_agg_stack *t = &sort_ctx->a->stacks[*(const uint32_t *)y];
    uint32_t n = s->nframes < t->nframes ? s->nframes : t->nframes;
    for (uint32_t k = 0; k < n; k++) {
        if (s->frames[k] == t->frames[k])
            continue;
        int c = strcmp(sort_ctx->labels[s->frames[k]],
                       sort_ctx->labels[t->frames[k]]);
        if (c)
            return c;
        return s->frames[k] < t->frames[k] ? -1 : 1;
    }
    return (s->nframes > t->nframes) - (s->nframes < t->nframes);
}

static void put_escaped(FILE *out, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&apos;", out);
            break;
        default:
            fputc(*s, out);
        }
    }
}

static uint32_t hash_str(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n && s[i]; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

/* Colour by package: the first component of the (short) filename picks
 * the hue, the function name nudges the lightness so neighbours differ. */
static void frame_colour(const pyspy_agg_frame *f, char *buf, size_t len) {
    if (f->is_meta) {
        snprintf(buf, len, "hsl(220,10%%,78%%)");
        return;
    }
    /* Package: "pkg/mod.py" -> "pkg", "mod.py" -> "mod"; an absolute
     * path (no short name known) -> its directory's name. */
    const char *file = f->filename;
    size_t n;
    if (file[0] == '/') {
        const char *last = strrchr(file, '/');
        const char *dir = last;
        while (dir > file && dir[-1] != '/')
            dir--;
        n = (size_t)(last - dir);
        file = n ? dir : last + 1;
        if (!n)
            n = strcspn(file, ".");
    } else {
        n = strcspn(file, "/\\.");
    }
    uint32_t h = hash_str(file, n), l = hash_str(f->name, strlen(f->name));
    if (f->is_native)
        snprintf(buf, len, "hsl(%u,45%%,%u%%)", 190 + h % 40, 62 + l % 14);
    else
        snprintf(buf, len, "hsl(%u,%u%%,%u%%)", h % 360, 55 + (h >> 9) % 25,
                 62 + l % 14);
}

/* The box of frame (path[depth - 1], UINT32_MAX for the root) whose
 * stack prefix is path[0..depth-1]. */
static void emit_box(fg *g, uint32_t frame, const uint32_t *path,
                     uint32_t depth, uint64_t start, uint64_t count) {
    double w = (double)count * g->scale;
    if (w < MIN_WIDTH_PX)
        return;
    double x = PAD + (double)start * g->scale;
    int y = g->top + (int)depth * FRAME_H;
    const char *label = frame == UINT32_MAX ? "all" : g->labels[frame];
    char colour[48], info[256];
    double pct = g->total ? 100.0 * (double)count / (double)g->total : 0;
    snprintf(info, sizeof info, "(%" PRIu64 " sample%s, %.2f%%)", count,
             count == 1 ? "" : "s", pct);
    if (g->style && g->style->box)
        g->style->box(g->style->ctx, path, depth, count, g->total, colour,
                      sizeof colour, info, sizeof info);
    else if (frame == UINT32_MAX)
        snprintf(colour, sizeof colour, "hsl(0,0%%,85%%)");
    else
        frame_colour(&g->a->frames[frame], colour, sizeof colour);
    fputs("<g class=\"f\" data-l=\"", g->out);
    put_escaped(g->out, label);
    /* The box's extent in samples, exact: the script zooms by these,
     * never by the rounded pixels. */
    fprintf(g->out, "\" data-s=\"%" PRIu64 "\" data-x=\"%" PRIu64 "\"><title>",
            count, start);
    put_escaped(g->out, label);
    fputc(' ', g->out);
    put_escaped(g->out, info);
    fputs("</title>", g->out);
    fprintf(g->out,
            "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" "
            "fill=\"%s\" rx=\"2\"/><text x=\"%.2f\" y=\"%d\"></text></g>\n",
            x, y, w, FRAME_H - 1, colour, x + 3, y + FRAME_H - 4);
}

static void header(fg *g, const char *title, int height) {
    FILE *o = g->out;
    fprintf(o,
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
            "<svg version=\"1.1\" width=\"%.0f\" height=\"%d\" "
            "viewBox=\"0 0 %.0f %d\" xmlns=\"http://www.w3.org/2000/svg\">\n"
            "<style type=\"text/css\"><![CDATA[\n%s]]></style>\n"
            "<script type=\"text/ecmascript\"><![CDATA[\n%s]]></script>\n"
            "<rect x=\"0\" y=\"0\" width=\"100%%\" height=\"100%%\" "
            "fill=\"#f6f6f0\"/>\n",
            IMG_WIDTH, height, IMG_WIDTH, height, pyspy_flamegraph_css,
            pyspy_flamegraph_js);
    fprintf(o,
            "<text id=\"title\" x=\"%.0f\" y=\"22\" "
            "text-anchor=\"middle\">",
            IMG_WIDTH / 2);
    char *t = pyspy_text_clean(title ? title : "pyspy record");
    put_escaped(o, t ? t : "");
    free(t);
    fprintf(o, " (%" PRIu64 " sample%s)</text>\n", g->total,
            g->total == 1 ? "" : "s");
    fprintf(o,
            "<text id=\"unzoom\" class=\"btn hide\" x=\"%.0f\" y=\"38\">"
            "Reset Zoom</text>\n"
            "<text id=\"search\" class=\"btn\" x=\"%.0f\" y=\"38\" "
            "text-anchor=\"end\">Search</text>\n"
            "<text id=\"matched\" class=\"btn\" x=\"%.0f\" y=\"%d\" "
            "text-anchor=\"end\"> </text>\n"
            "<text id=\"details\" x=\"%.0f\" y=\"%d\"> </text>\n",
            PAD, IMG_WIDTH - PAD, IMG_WIDTH - PAD, height - 10, PAD,
            height - 10);
    if (g->style && g->style->legend)
        g->style->legend(g->style->ctx, o, IMG_WIDTH, TOP);
}

static int make_labels(fg *g) {
    const pyspy_agg *a = g->a;
    g->labels = calloc(a->nframes ? a->nframes : 1, sizeof *g->labels);
    if (!g->labels)
        return -1;
    for (size_t i = 0; i < a->nframes; i++) {
        char *l = pyspy_agg_frame_label(a, (uint32_t)i);
        g->labels[i] = l ? pyspy_text_clean(l) : NULL;
        free(l);
        if (!g->labels[i])
            return -1;
    }
    return 0;
}

int pyspy_write_flamegraph(FILE *out, const pyspy_agg *a, const char *title,
                           pyspy_error *err) {
    return pyspy_write_flamegraph_styled(out, a, title, NULL, err);
}

int pyspy_write_flamegraph_styled(FILE *out, const pyspy_agg *a,
                                  const char *title,
                                  const pyspy_fg_style *style,
                                  pyspy_error *err) {
    fg g = {.a = a, .out = out, .style = style, .top = TOP};
    if (style)
        g.top += style->legend_height;
    uint32_t *order = NULL;
    uint32_t *path = NULL;
    uint64_t *starts = NULL;
    size_t norder = 0;
    int rc = -1;
    if (make_labels(&g))
        goto oom;
    order = malloc((a->nstacks ? a->nstacks : 1) * sizeof *order);
    path = malloc(MAX_DEPTH * sizeof *path);
    starts = malloc(MAX_DEPTH * sizeof *starts);
    if (!order || !path || !starts)
        goto oom;
    uint32_t maxdepth = 0;
    for (size_t s = 0; s < a->nstacks; s++) {
        if (!a->stacks[s].count)
            continue;
        order[norder++] = (uint32_t)s;
        g.total += a->stacks[s].count;
        if (a->stacks[s].nframes > maxdepth)
            maxdepth = a->stacks[s].nframes;
    }
    if (maxdepth > MAX_DEPTH - 1)
        maxdepth = MAX_DEPTH - 1;
    qsort_r(order, norder, sizeof *order, cmp_stacks, &g);
    g.scale = g.total ? (IMG_WIDTH - 2 * PAD) / (double)g.total : 0;
    int height = g.top + (int)(maxdepth + 1) * FRAME_H + BOTTOM;
    header(&g, title, height);
    fputs("<g id=\"frames\">\n", out);
    /* The root first: the script measures everything against it. */
    emit_box(&g, UINT32_MAX, path, 0, 0, g.total);
    /* Walk the sorted stacks keeping the open path; a box is written
     * when the path leaves it, with the samples seen meanwhile. */
    uint32_t depth = 0;
    uint64_t offset = 0;
    for (size_t i = 0; i <= norder; i++) {
        const pyspy_agg_stack *st = i < norder ? &a->stacks[order[i]] : NULL;
        uint32_t n = st ? st->nframes : 0;
        if (n > maxdepth)
            n = maxdepth;
        uint32_t common = 0;
        while (common < depth && common < n &&
               path[common] == st->frames[common])
            common++;
        while (depth > common) {
            depth--;
            emit_box(&g, path[depth], path, depth + 1, starts[depth],
                     offset - starts[depth]);
        }
        for (; depth < n; depth++) {
            path[depth] = st->frames[depth];
            starts[depth] = offset;
        }
        if (st)
            offset += st->count;
    }
    fputs("</g>\n</svg>\n", out);
    rc = ferror(out) ? pyspy_error_set(err, PYSPY_E_IO, "write failed") : 0;
    goto done;
oom:
    pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
done:
    if (g.labels)
        for (size_t i = 0; i < a->nframes; i++)
            free(g.labels[i]);
    free(g.labels);
    free(order);
    free(path);
    free(starts);
    return rc;
}
