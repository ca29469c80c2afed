/* merge: partial recordings into one, in any of record's formats, the
 * same as one run over all their inputs. Inputs are aggregate files
 * (record -f aggregate), raw files, snapshots, cores and directories of
 * them (analyze/sample/record_input.c), merged in the order given. */
#include "analyze/cli/commands.h"
#include "analyze/sample/record.h"
#include "capture/base/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct merger {
    const pyspy_config *cfg;
    bool labels; /* some input is a raw file: merge by frame labels */
    pyspy_agg *dst;
    const char *first; /* the input dst's options came from */
    uint64_t errors;
} merger;

/* Whether the output shows each thread's samples in time order, which
 * raw files and aggregates merged from them do not keep. */
static bool needs_time_line(pyspy_format f) {
    return pyspy_format_keeps_threads(f) && f != PYSPY_FORMAT_AGGREGATE;
}

/* Whether any input is a raw file, which only has labels; 0 or 1. */
static int scan_kinds(merger *m) {
    const pyspy_config *cfg = m->cfg;
    for (int i = 0; i < cfg->ninputs; i++) {
        pyspy_error err = {0};
        pyspy_input_kind kind;
        if (pyspy_input_kind_of(cfg->inputs[i], &kind, &err)) {
            fprintf(stderr, "Error: input %s\n", err.msg);
            return 1;
        }
        if (kind == PYSPY_INPUT_RAW && !m->labels) {
            m->labels = true;
            if (needs_time_line(cfg->format)) {
                fprintf(stderr,
                        "Error: '%s' is a raw file, which keeps no threads "
                        "or time line for -f %s: merge raw files into a "
                        "flamegraph, raw or aggregate file, or record the "
                        "inputs with -f aggregate\n",
                        cfg->inputs[i], pyspy_file_format_name(cfg->format));
                return 1;
            }
        }
    }
    return 0;
}

static int add_input(merger *m, const char *path, pyspy_agg *src) {
    pyspy_error err = {0};
    const pyspy_config *cfg = m->cfg;
    bool threads = pyspy_format_keeps_threads(cfg->format);
    if (!m->dst) {
        pyspy_agg_opts o = m->labels ? pyspy_raw_agg_opts(cfg) : src->opts;
        o.counts_only = o.counts_only || !threads;
        if (!(m->dst = pyspy_agg_new(&o, &err))) {
            fprintf(stderr, "Error: %s\n", err.msg);
            return 1;
        }
        m->first = path;
    }
    if (m->labels) {
        if (pyspy_agg_merge_labels(m->dst, src, &err)) {
            fprintf(stderr, "Error: merging '%s': %s\n", path, err.msg);
            return 1;
        }
        return 0;
    }
    const char *which;
    if (!pyspy_agg_same_shape(&m->dst->opts, &src->opts, &which)) {
        fprintf(stderr,
                "Error: '%s' and '%s' were recorded with different %s "
                "settings, so their stacks do not add up\n",
                m->first, path, which);
        return 1;
    }
    if (needs_time_line(cfg->format) && src->opts.counts_only && src->total) {
        fprintf(stderr,
                "Error: '%s' keeps no threads or time line for -f %s (it "
                "was merged from raw files)\n",
                path, pyspy_file_format_name(cfg->format));
        return 1;
    }
    if (pyspy_agg_merge(m->dst, src, &err)) {
        fprintf(stderr, "Error: merging '%s': %s\n", path, err.msg);
        return 1;
    }
    return 0;
}

int pyspy_cmd_merge(const pyspy_config *cfg) {
    merger m = {.cfg = cfg};
    if (scan_kinds(&m))
        return 1;
    char *filename = pyspy_record_output_name(cfg, "merge");
    if (!filename)
        return 1;
    pyspy_progress prog;
    pyspy_progress_init(&prog, cfg->hide_progress);
    int64_t t0 = pyspy_clock_us();
    int rc = 0;
    for (int i = 0; rc == 0 && i < cfg->ninputs; i++) {
        pyspy_input_kind kind;
        pyspy_agg *src = NULL;
        uint64_t errors = 0;
        /* A snapshot set draws its own progress line. */
        pyspy_progress_done(&prog);
        rc = pyspy_read_recording(cfg, "input", cfg->inputs[i], &kind, &src,
                                  &errors);
        if (rc == 0)
            rc = add_input(&m, cfg->inputs[i], src);
        m.errors += errors;
        pyspy_agg_free(src);
        pyspy_progress_update(&prog, pyspy_clock_us() - t0,
                              m.dst ? m.dst->total : 0, m.errors,
                              (uint64_t)i + 1, (uint64_t)cfg->ninputs);
    }
    pyspy_progress_done(&prog);
    if (rc == 0) {
        char title[96];
        snprintf(title, sizeof title, "pyspy merge: %d input%s", cfg->ninputs,
                 cfg->ninputs == 1 ? "" : "s");
        rc = pyspy_record_write(cfg, m.dst, filename, title, m.dst->total,
                                m.errors, "");
    }
    pyspy_agg_free(m.dst);
    free(filename);
    return rc;
}
