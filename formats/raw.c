/* Collapsed stacks ("frame;frame;... count"), the input flamegraph.pl and
 * inferno read; one line per distinct stack, outermost frame first. */
#include "formats/record_formats.h"

#include "capture/base/cli_args.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define MAX_LINE (64u << 20) /* one stack line; the input is hostile */
#define MAX_FRAMES 65536     /* frames in one line */

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

int pyspy_read_raw(FILE *f, const char *path, pyspy_agg *a, pyspy_error *err) {
    char *line = NULL;
    size_t cap = 0;
    const char **labels = malloc(MAX_FRAMES * sizeof *labels);
    int rc =
        labels ? 0 : pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    unsigned long lineno = 0;
    ssize_t len;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if ((size_t)len > MAX_LINE) {
            rc = pyspy_error_set(err, PYSPY_E_FORMAT,
                                 "%s:%lu: line longer than %u bytes", path,
                                 lineno, MAX_LINE);
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        char *sp = strrchr(line, ' ');
        uint64_t count = 0;
        const char *why = NULL;
        if (!sp || sp == line || pyspy_parse_u64(sp + 1, &count, &why)) {
            rc = pyspy_error_set(err, PYSPY_E_FORMAT,
                                 "%s:%lu: not a collapsed stack ('frame;"
                                 "frame;... count'), nor a snapshot or core",
                                 path, lineno);
            break;
        }
        *sp = '\0';
        uint32_t n = 0;
        for (char *p = line;; p++) {
            char *semi = strchr(p, ';');
            if (n == MAX_FRAMES) {
                rc = pyspy_error_set(err, PYSPY_E_FORMAT,
                                     "%s:%lu: more than %d frames", path,
                                     lineno, MAX_FRAMES);
                break;
            }
            labels[n++] = p;
            if (!semi)
                break;
            *semi = '\0';
            p = semi;
        }
        if (rc == 0 && count)
            rc = pyspy_agg_add_stack(a, labels, n, count, err);
    }
    if (rc == 0 && ferror(f))
        rc = pyspy_error_set(err, PYSPY_E_IO, "reading '%s' failed", path);
    free(labels);
    free(line);
    return rc;
}
