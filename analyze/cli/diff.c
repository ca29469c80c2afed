/* diff: a differential flamegraph of two recordings. Each side is a raw
 * (collapsed-stack) file, an aggregate file, one snapshot or core, or a
 * directory of them (analyze/sample/record_input.c). */
#include "analyze/cli/commands.h"
#include "analyze/sample/record.h"
#include "capture/base/out_file.h"
#include "formats/record_formats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One side of the diff into *out; 0 or 1 (exit) after saying why. */
static int load_side(const pyspy_config *cfg, const char *what,
                     const char *path, pyspy_agg **out) {
    pyspy_input_kind kind;
    uint64_t errors;
    return pyspy_read_recording(cfg, what, path, &kind, out, &errors);
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s && s[1] ? s + 1 : p;
}

typedef struct diff_fill {
    const pyspy_agg *base, *cur;
    const char *title;
} diff_fill;

static int fill_diff(FILE *f, void *ctx, pyspy_error *err) {
    const diff_fill *d = ctx;
    return pyspy_write_flamegraph_diff(f, d->base, d->cur, d->title, err);
}

int pyspy_cmd_diff(const pyspy_config *cfg) {
    const char *outname = cfg->filename ? cfg->filename : "diff.svg";
    pyspy_agg *base = NULL, *cur = NULL;
    pyspy_error err = {0};
    if (pyspy_out_check(outname, &err) != 0) {
        fprintf(stderr, "Error: %s\n", err.msg);
        return 1;
    }
    if (load_side(cfg, "base", cfg->inputs[0], &base) ||
        load_side(cfg, "new", cfg->inputs[1], &cur)) {
        pyspy_agg_free(base);
        return 1;
    }
    if (cur->total == 0) {
        fprintf(stderr, "Error: new '%s' holds no samples\n", cfg->inputs[1]);
        pyspy_agg_free(base);
        pyspy_agg_free(cur);
        return 1;
    }
    char title[512];
    snprintf(title, sizeof title, "pyspy diff: %s -> %s",
             base_name(cfg->inputs[0]), base_name(cfg->inputs[1]));
    int rc = 0;
    diff_fill d = {base, cur, title};
    /* As record's outputs: whole or not at all, never through a symlink
     * (capture/base/out_file.h). */
    if (pyspy_out_write(outname, 0666, fill_diff, &d, &err) != 0) {
        fprintf(stderr, "Error: %s\n", err.msg);
        rc = 1;
    } else {
        printf("Wrote differential flamegraph to '%s'. Base samples: %llu "
               "New samples: %llu\n",
               outname, (unsigned long long)base->total,
               (unsigned long long)cur->total);
    }
    pyspy_agg_free(base);
    pyspy_agg_free(cur);
    return rc;
}
