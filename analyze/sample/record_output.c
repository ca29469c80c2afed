/* What live and offline record share: options, the default file name,
 * writing the file with py-spy's summary, and the progress line. */
#include "analyze/sample/record.h"
#include "capture/base/out_file.h"
#include "formats/record_formats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

bool pyspy_format_keeps_threads(pyspy_format f) {
    /* Only speedscope and chrometrace show samples in time order; pprof
     * labels each sample with its thread, which the time line keeps; an
     * aggregate file keeps everything for a later merge. */
    return f == PYSPY_FORMAT_SPEEDSCOPE || f == PYSPY_FORMAT_CHROMETRACE ||
           f == PYSPY_FORMAT_PPROF || f == PYSPY_FORMAT_AGGREGATE;
}

pyspy_agg_opts pyspy_record_agg_opts(const pyspy_config *cfg) {
    pyspy_agg_opts o = {0};
    o.include_idle = cfg->include_idle;
    o.gil_only = cfg->gil_only;
    o.exception_only = cfg->exception_only;
    o.gc_frames = cfg->gc_frames;
    o.include_thread_ids = cfg->include_thread_ids;
    o.subprocesses = cfg->subprocesses;
    o.show_line_numbers = cfg->show_line_numbers;
    o.period_us = cfg->sampling_rate ? 1000000 / cfg->sampling_rate : 0;
    o.rate = cfg->sampling_rate;
    o.counts_only = !pyspy_format_keeps_threads(cfg->format);
    return o;
}

pyspy_walk_opts pyspy_record_walk_opts(const pyspy_config *cfg) {
    pyspy_walk_opts w = {0};
    w.lineno = cfg->lineno;
    w.locals = 0;
    w.full_filenames = cfg->full_filenames;
    w.native = cfg->native;
    /* Only --gil uses the GIL's holder, and --gc, which tells the thread
     * running a collection by it. */
    w.skip_gil = !cfg->gil_only && !cfg->gc_frames;
    w.skip_gc = !cfg->gc_frames;
    w.exceptions = cfg->exception_only;
    /* Only --threads frames and the per-thread formats name threads. */
    w.skip_thread_names =
        !cfg->include_thread_ids && !pyspy_format_keeps_threads(cfg->format);
    return w;
}

static const char *extension(pyspy_format f) {
    switch (f) {
    case PYSPY_FORMAT_SPEEDSCOPE:
    case PYSPY_FORMAT_CHROMETRACE:
        return "json";
    case PYSPY_FORMAT_RAW:
        return "txt";
    case PYSPY_FORMAT_PPROF:
        return "pb.gz";
    case PYSPY_FORMAT_AGGREGATE:
        return "pyagg";
    default:
        return "svg";
    }
}

char *pyspy_record_default_name(const pyspy_config *cfg, const char *who) {
    char when[64] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm)) {
        size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        long off = tm.tm_gmtoff;
        /* RFC 3339 offset, "Z" for UTC, as py-spy names its files. */
        if (off == 0)
            snprintf(when + n, sizeof when - n, "Z");
        else
            snprintf(when + n, sizeof when - n, "%c%02ld:%02ld",
                     off < 0 ? '-' : '+', labs(off) / 3600,
                     (labs(off) % 3600) / 60);
    }
    /* Only the program's base name: "/usr/bin/python3" must not turn the
     * output path into a directory we did not mean. */
    const char *base = who ? strrchr(who, '/') : NULL;
    base = base ? base + 1 : (who && *who ? who : "unknown");
    size_t len = strlen(base) + strlen(when) + 16;
    char *s = malloc(len);
    if (s)
        snprintf(s, len, "%s-%s.%s", base, when, extension(cfg->format));
    return s;
}

char *pyspy_record_output_name(const pyspy_config *cfg, const char *who) {
    char *filename = cfg->filename ? strdup(cfg->filename)
                                   : pyspy_record_default_name(cfg, who);
    if (!filename) {
        fprintf(stderr, "Error: out of memory\n");
        return NULL;
    }
    pyspy_error err = {0};
    if (pyspy_out_check(filename, &err) != 0) {
        fprintf(stderr, "Error: %s\n", err.msg);
        free(filename);
        return NULL;
    }
    return filename;
}

typedef struct record_fill {
    const pyspy_config *cfg;
    const pyspy_agg *a;
    const char *title;
} record_fill;

static int fill_record(FILE *f, void *ctx, pyspy_error *err) {
    const record_fill *r = ctx;
    return pyspy_write_record(f, r->cfg->format, r->a, r->title, err);
}

int pyspy_record_write(const pyspy_config *cfg, const pyspy_agg *a,
                       const char *filename, const char *title,
                       uint64_t samples, uint64_t errors, const char *lede) {
    pyspy_error err = {0};
    /* Like a snapshot: never through a symlink planted at the name, and
     * never a partial file in place of the previous one (ENOSPC). */
    record_fill r = {cfg, a, title};
    if (pyspy_out_write(filename, 0666, fill_record, &r, &err) != 0) {
        fprintf(stderr, "Error: %s\n", err.msg);
        return 1;
    }
    const char *what = "flamegraph data", *hint = NULL;
    switch (cfg->format) {
    case PYSPY_FORMAT_SPEEDSCOPE:
        what = "speedscope file";
        hint = "Visit https://www.speedscope.app/ to view";
        break;
    case PYSPY_FORMAT_RAW:
        what = "raw flamegraph data";
        hint = "You can use the flamegraph.pl script from "
               "https://github.com/brendangregg/flamegraph to generate a SVG";
        break;
    case PYSPY_FORMAT_CHROMETRACE:
        what = "chrome trace";
        hint = "Visit chrome://tracing or https://ui.perfetto.dev/ to view";
        break;
    case PYSPY_FORMAT_PPROF:
        what = "pprof profile";
        hint = "Run 'go tool pprof -http=: FILE' or load it into Pyroscope, "
               "Parca or Grafana to view";
        break;
    case PYSPY_FORMAT_AGGREGATE:
        what = "aggregate profile";
        hint = "Run 'pyspy merge FILE... -o OUT -f FORMAT' to combine it "
               "with others";
        break;
    default:
        break;
    }
    printf("%sWrote %s to '%s'. Samples: %llu Errors: %llu\n", lede, what,
           filename, (unsigned long long)samples, (unsigned long long)errors);
    if (hint)
        printf("%s%s\n", lede, hint);
    fflush(stdout);
    return 0;
}

#define PROGRESS_BAR 24

void pyspy_progress_init(pyspy_progress *p, bool hide) {
    memset(p, 0, sizeof *p);
    p->enabled = !hide && isatty(2);
}

void pyspy_progress_update(pyspy_progress *p, int64_t elapsed_us,
                           uint64_t samples, uint64_t errors, uint64_t done,
                           uint64_t total) {
    if (!p->enabled)
        return;
    if (p->last_us && elapsed_us - p->last_us < 100000 && done != total)
        return;
    p->last_us = elapsed_us ? elapsed_us : 1;
    char line[160];
    int n;
    if (total) {
        /* A bar, and when it has run long enough to tell, the time
         * left at the rate so far. */
        char bar[PROGRESS_BAR + 1];
        uint64_t fill = done >= total
                            ? PROGRESS_BAR
                            : (uint64_t)((double)PROGRESS_BAR * (double)done /
                                         (double)total);
        for (uint64_t k = 0; k < PROGRESS_BAR; k++)
            bar[k] = k < fill ? '=' : k == fill ? '>' : ' ';
        bar[PROGRESS_BAR] = 0;
        char eta[32] = "";
        if (done && done < total && elapsed_us > 500000)
            snprintf(eta, sizeof eta, ", %.1fs left",
                     (double)elapsed_us / 1e6 * (double)(total - done) /
                         (double)done);
        n = snprintf(
            line, sizeof line,
            "[%5.1fs] [%s] %llu/%llu (%3.0f%%) %llu samples, %llu "
            "errors%s",
            (double)elapsed_us / 1e6, bar, (unsigned long long)done,
            (unsigned long long)total, 100.0 * (double)done / (double)total,
            (unsigned long long)samples, (unsigned long long)errors, eta);
    } else
        n = snprintf(line, sizeof line, "[%5.1fs] %llu samples, %llu errors",
                     (double)elapsed_us / 1e6, (unsigned long long)samples,
                     (unsigned long long)errors);
    if (n < 0)
        return;
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    p->width = n;
}

void pyspy_progress_update_timed(pyspy_progress *p, int64_t elapsed_us,
                                 uint64_t samples, uint64_t errors,
                                 int64_t total_us) {
    if (!p->enabled || total_us <= 0) {
        pyspy_progress_update(p, elapsed_us, samples, errors, 0, 0);
        return;
    }
    if (p->last_us && elapsed_us - p->last_us < 100000)
        return;
    p->last_us = elapsed_us ? elapsed_us : 1;
    double done = elapsed_us < total_us ? (double)elapsed_us : (double)total_us;
    char line[160];
    int n = snprintf(line, sizeof line,
                     "[%5.1fs] %.0f of %.0f s (%3.0f%%) %llu samples, %llu "
                     "errors",
                     (double)elapsed_us / 1e6, done / 1e6,
                     (double)total_us / 1e6, 100.0 * done / (double)total_us,
                     (unsigned long long)samples, (unsigned long long)errors);
    if (n < 0)
        return;
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    p->width = n;
}

void pyspy_progress_done(pyspy_progress *p) {
    if (p->enabled && p->width) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    p->width = 0;
}
