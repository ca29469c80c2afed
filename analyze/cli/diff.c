/* diff: a differential flamegraph of two recordings. Each side is a raw
 * (collapsed-stack) file, an aggregate file, one snapshot or core, or a
 * directory of them (analyze/sample/record_input.c). */
#include "analyze/cli/commands.h"
#include "analyze/sample/record.h"
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

int pyspy_cmd_diff(const pyspy_config *cfg) {
    const char *outname = cfg->filename ? cfg->filename : "diff.svg";
    pyspy_agg *base = NULL, *cur = NULL;
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
    pyspy_error err = {0};
    int rc = 0;
    FILE *f = fopen(outname, "w");
    if (!f) {
        fprintf(stderr, "Error: cannot write '%s': %s\n", outname,
                strerror(errno));
        rc = 1;
    } else {
        rc = pyspy_write_flamegraph_diff(f, base, cur, title, &err);
        if (fclose(f) != 0 && rc == 0)
            rc = pyspy_error_set(&err, PYSPY_E_IO, "%s", strerror(errno));
        if (rc) {
            fprintf(stderr, "Error: writing '%s': %s\n", outname, err.msg);
            rc = 1;
        } else {
            printf("Wrote differential flamegraph to '%s'. Base samples: %llu "
                   "New samples: %llu\n",
                   outname, (unsigned long long)base->total,
                   (unsigned long long)cur->total);
        }
    }
    pyspy_agg_free(base);
    pyspy_agg_free(cur);
    return rc;
}
