/* Collapsed stacks ("frame;frame;... count"), the input flamegraph.pl and
 * inferno read; one line per distinct stack, outermost frame first. */
#include "formats/record_formats.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *x, const void *y) {
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Labels are cleaned for one-line output; ';' would split a frame in two
 * for every reader of this format, so it becomes ':'. */
static char **make_labels(const pyspy_agg *a) {
    char **labels = calloc(a->nframes ? a->nframes : 1, sizeof *labels);
    if (!labels)
        return NULL;
    for (size_t i = 0; i < a->nframes; i++) {
        char *l = pyspy_agg_frame_label(a, (uint32_t)i);
        labels[i] = l ? pyspy_text_clean(l) : NULL;
        free(l);
        if (!labels[i]) {
            for (size_t k = 0; k < i; k++)
                free(labels[k]);
            free(labels);
            return NULL;
        }
        for (char *c = labels[i]; *c; c++)
            if (*c == ';')
                *c = ':';
    }
    return labels;
}

int pyspy_write_raw(FILE *out, const pyspy_agg *a, pyspy_error *err) {
    int rc = -1;
    char **labels = make_labels(a);
    char **lines = calloc(a->nstacks ? a->nstacks : 1, sizeof *lines);
    size_t nlines = 0;
    if (!labels || !lines)
        goto oom;
    for (size_t s = 0; s < a->nstacks; s++) {
        const pyspy_agg_stack *st = &a->stacks[s];
        if (!st->count)
            continue;
        size_t len = 32;
        for (uint32_t k = 0; k < st->nframes; k++)
            len += strlen(labels[st->frames[k]]) + 1;
        char *line = malloc(len);
        if (!line)
            goto oom;
        size_t o = 0;
        for (uint32_t k = 0; k < st->nframes; k++) {
            size_t l = strlen(labels[st->frames[k]]);
            if (k)
                line[o++] = ';';
            memcpy(line + o, labels[st->frames[k]], l);
            o += l;
        }
        snprintf(line + o, len - o, " %" PRIu64, st->count);
        lines[nlines++] = line;
    }
    /* Sorted so the same profile always gives the same file. */
    qsort(lines, nlines, sizeof *lines, cmp_str);
    rc = 0;
    for (size_t i = 0; i < nlines; i++)
        if (fprintf(out, "%s\n", lines[i]) < 0)
            rc = pyspy_error_set(err, PYSPY_E_IO, "write failed");
    goto done;
oom:
    pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
done:
    for (size_t i = 0; i < nlines; i++)
        free(lines[i]);
    free(lines);
    if (labels)
        for (size_t i = 0; i < a->nframes; i++)
            free(labels[i]);
    free(labels);
    return rc;
}
