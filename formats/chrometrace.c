/* Chrome's Trace Event Format (chrome://tracing, Perfetto, speedscope):
 * begin ("B") and end ("E") events as frames enter and leave a thread's
 * stack, written in time order with ends before begins at each instant,
 * so nesting never depends on how a viewer sorts equal timestamps; and
 * thread-name metadata ("M") events. */
#include "formats/record_formats.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct open_frame {
    uint32_t frame;
} open_frame;

/* Written as it goes, not built as a JSON tree: a recording has events
 * for every change of stack, and the tree of a 1 kHz run of 32 threads
 * held hundreds of MB at the end. */
typedef struct emitter {
    const pyspy_agg *a;
    FILE *out;
    size_t nevents;
    int64_t origin;
    int pid;
    char tid[24]; /* the pthread id, as py-spy: written as an integer */
} emitter;

static void event_start(emitter *e) {
    fputs(e->nevents++ ? "," : "[", e->out);
}

/* py-spy's fields in py-spy's order: args (filename: the full path; line:
 * null without line numbers), cat, name, ph, pid, tid, ts. */
static int emit_be(emitter *e, const open_frame *o, const char *ph,
                   int64_t ts) {
    const pyspy_agg_frame *f = &e->a->frames[o->frame];
    event_start(e);
    fputs("{\"args\":{\"filename\":", e->out);
    if (pyspy_json_put_clean(e->out, f->full_filename))
        return -1;
    if (e->a->opts.show_line_numbers)
        fprintf(e->out, ",\"line\":%d", f->line);
    else
        fputs(",\"line\":null", e->out);
    fputs("},\"cat\":\"py-spy\",\"name\":", e->out);
    if (pyspy_json_put_clean(e->out, f->name))
        return -1;
    fprintf(e->out, ",\"ph\":\"%s\",\"pid\":%d,\"tid\":%s,\"ts\":%" PRId64 "}",
            ph, e->pid, e->tid, ts - e->origin);
    return 0;
}

static int emit_meta(emitter *e, const char *what, const char *value) {
    event_start(e);
    fputs("{\"args\":{\"name\":", e->out);
    if (pyspy_json_put_clean(e->out, value))
        return -1;
    fprintf(e->out, "},\"name\":\"%s\",\"ph\":\"M\",\"pid\":%d,\"tid\":%s}",
            what, e->pid, e->tid);
    return 0;
}

static int64_t sample_period(const pyspy_agg *a) {
    if (a->opts.period_us)
        return (int64_t)a->opts.period_us;
    /* Offline: the spacing of the inputs is the best guess. */
    if (a->total > 1 && a->last_us > a->first_us && a->nthreads)
        return (a->last_us - a->first_us) / (int64_t)(a->total);
    return 10000;
}

static int thread_events(emitter *e, const pyspy_agg_thread *th) {
    const pyspy_agg *a = e->a;
    int64_t period = sample_period(a);
    e->pid = th->pid;
    /* Raw text: a double would round a 64-bit pthread id. */
    snprintf(e->tid, sizeof e->tid, "%" PRIu64, th->thread_id);
    /* The track's label is py-spy's --threads frame for the thread. */
    char tid[32];
    pyspy_format_thread_id(th->thread_id, th->os_thread_id, tid, sizeof tid);
    size_t len = (th->name ? strlen(th->name) : 0) + 48;
    char *label = malloc(len);
    if (!label)
        return -1;
    if (th->name)
        snprintf(label, len, "thread (%s): %s", tid, th->name);
    else
        snprintf(label, len, "thread (%s)", tid);
    int mrc = emit_meta(e, "thread_name", label);
    free(label);
    if (mrc)
        return -1;
    size_t maxdepth = 0;
    for (size_t r = 0; r < th->nruns; r++)
        if (a->stacks[th->runs[r].stack].nframes > maxdepth)
            maxdepth = a->stacks[th->runs[r].stack].nframes;
    open_frame *open = calloc(maxdepth ? maxdepth : 1, sizeof *open);
    if (!open)
        return -1;
    size_t nopen = 0;
    int64_t prev_end = 0;
    int rc = 0;
    for (size_t r = 0; r < th->nruns && !rc; r++) {
        const pyspy_agg_run *run = &th->runs[r];
        const pyspy_agg_stack *st = &a->stacks[run->stack];
        /* The thread left the record (idle, lost the GIL): close all. */
        if (nopen && run->first_us > prev_end + period / 2)
            while (nopen && !rc)
                rc = emit_be(e, &open[--nopen], "E", prev_end);
        size_t common = 0;
        while (common < nopen && common < st->nframes &&
               open[common].frame == st->frames[common])
            common++;
        while (nopen > common && !rc)
            rc = emit_be(e, &open[--nopen], "E", run->first_us);
        for (; nopen < st->nframes && !rc; nopen++) {
            open[nopen] = (open_frame){st->frames[nopen]};
            rc = emit_be(e, &open[nopen], "B", run->first_us);
        }
        prev_end = run->last_us + period;
    }
    while (nopen && !rc)
        rc = emit_be(e, &open[--nopen], "E", prev_end);
    free(open);
    return rc;
}

/* The JSON array form of the format (as py-spy writes it): every viewer
 * reads it, and speedscope takes an object with "traceEvents" for a
 * Chrome DevTools timeline instead. */
int pyspy_write_chrometrace(FILE *out, const pyspy_agg *a, pyspy_error *err) {
    emitter e = {a, out, 0, a->first_us, 0, ""};
    for (size_t i = 0; i < a->nthreads; i++)
        if (thread_events(&e, &a->threads[i]))
            return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    fputs(e.nevents ? "]\n" : "[]\n", out);
    if (ferror(out))
        return pyspy_error_set(err, PYSPY_E_IO, "write failed");
    return 0;
}
