/* Chrome's Trace Event Format (chrome://tracing, Perfetto, speedscope):
 * begin ("B") and end ("E") events as frames enter and leave a thread's
 * stack, written in time order with ends before begins at each instant,
 * so nesting never depends on how a viewer sorts equal timestamps; and
 * thread-name metadata ("M") events. */
#include "formats/record_formats.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct open_frame {
    uint32_t frame;
} open_frame;

typedef struct emitter {
    const pyspy_agg *a;
    cJSON *events;
    int64_t origin;
    int pid;
    char tid[24]; /* the pthread id, as py-spy: written as an integer */
} emitter;

static cJSON *clean_string(const char *s) {
    char *c = pyspy_text_clean(s);
    if (!c)
        return NULL;
    cJSON *j = cJSON_CreateString(c);
    free(c);
    return j;
}

/* py-spy's fields in py-spy's order: args (filename: the full path; line:
 * null without line numbers), cat, name, ph, pid, tid, ts. */
static int emit_be(emitter *e, const open_frame *o, const char *ph,
                   int64_t ts) {
    const pyspy_agg_frame *f = &e->a->frames[o->frame];
    cJSON *ev = cJSON_CreateObject(), *args = cJSON_CreateObject();
    cJSON *name = clean_string(f->name);
    cJSON *file = clean_string(f->full_filename);
    cJSON *line = e->a->opts.show_line_numbers ? cJSON_CreateNumber(f->line)
                                               : cJSON_CreateNull();
    if (!ev || !args || !name || !file || !line) {
        cJSON_Delete(ev);
        cJSON_Delete(args);
        cJSON_Delete(name);
        cJSON_Delete(file);
        cJSON_Delete(line);
        return -1;
    }
    cJSON_AddItemToObject(args, "filename", file);
    cJSON_AddItemToObject(args, "line", line);
    cJSON_AddItemToObject(ev, "args", args);
    if (!cJSON_AddStringToObject(ev, "cat", "py-spy")) {
        cJSON_Delete(ev);
        cJSON_Delete(name);
        return -1;
    }
    cJSON_AddItemToObject(ev, "name", name);
    if (!cJSON_AddStringToObject(ev, "ph", ph) ||
        !cJSON_AddNumberToObject(ev, "pid", e->pid) ||
        !cJSON_AddRawToObject(ev, "tid", e->tid) ||
        !cJSON_AddNumberToObject(ev, "ts", (double)(ts - e->origin)) ||
        !cJSON_AddItemToArray(e->events, ev)) {
        cJSON_Delete(ev);
        return -1;
    }
    return 0;
}

static int emit_meta(emitter *e, const char *what, const char *value) {
    cJSON *ev = cJSON_CreateObject(), *args = cJSON_CreateObject();
    cJSON *v = clean_string(value);
    if (!ev || !args || !v) {
        cJSON_Delete(ev);
        cJSON_Delete(args);
        cJSON_Delete(v);
        return -1;
    }
    cJSON_AddItemToObject(args, "name", v);
    cJSON_AddItemToObject(ev, "args", args);
    if (!cJSON_AddStringToObject(ev, "name", what) ||
        !cJSON_AddStringToObject(ev, "ph", "M") ||
        !cJSON_AddNumberToObject(ev, "pid", e->pid) ||
        !cJSON_AddRawToObject(ev, "tid", e->tid) ||
        !cJSON_AddItemToArray(e->events, ev)) {
        cJSON_Delete(ev);
        return -1;
    }
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
    emitter e = {a, cJSON_CreateArray(), a->first_us, 0, ""};
    int rc = -1;
    if (!e.events)
        goto oom;
    for (size_t i = 0; i < a->nthreads; i++)
        if (thread_events(&e, &a->threads[i]))
            goto oom;
    rc = pyspy_write_json(out, e.events, err);
    goto done;
oom:
    pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
done:
    cJSON_Delete(e.events);
    return rc;
}
