/* speedscope's file format
 * (https://www.speedscope.app/file-format-schema.json) as py-spy 0.4.2
 * writes it: shared frames, and one "sampled" profile per thread with one
 * sample per tick in time order, weighted in seconds. Written as it goes,
 * not built as a JSON tree: a long recording has a sample per tick. */
#include "formats/record_formats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A number as serde_json writes an f64: the shortest text that reads
 * back the same, "2.0" for a whole number, "1e-5" for an exponent. */
static void format_seconds(double v, char *buf, size_t len) {
    if (!isfinite(v)) {
        snprintf(buf, len, "null");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    char *e = strchr(buf, 'e');
    if (e) {
        /* "1e-05" -> "1e-5", "1e+20" -> "1e20" */
        char *d = e + 1, *src = e + 1;
        if (*src == '+')
            src++;
        else if (*src == '-')
            *d++ = *src++;
        while (*src == '0' && src[1])
            src++;
        memmove(d, src, strlen(src) + 1);
    } else if (!strchr(buf, '.') && strlen(buf) + 3 <= len) {
        strcat(buf, ".0");
    }
}

static void put_seconds(FILE *out, double v) {
    char buf[40];
    format_seconds(v, buf, sizeof buf);
    fputs(buf, out);
}

/* py-spy's Frame: name, file (the full path; "" for the thread and
 * process frames), line (null without line numbers), col (never known). */
static int put_frames(FILE *out, const pyspy_agg *a) {
    fputs("\"shared\":{\"frames\":[", out);
    for (size_t i = 0; i < a->nframes; i++) {
        const pyspy_agg_frame *f = &a->frames[i];
        fputs(i ? ",{\"name\":" : "{\"name\":", out);
        if (pyspy_json_put_clean(out, f->name))
            return -1;
        fputs(",\"file\":", out);
        if (pyspy_json_put_clean(out, f->is_meta ? "" : f->full_filename))
            return -1;
        if (a->opts.show_line_numbers)
            fprintf(out, ",\"line\":%d,\"col\":null}", f->line);
        else
            fputs(",\"line\":null,\"col\":null}", out);
    }
    fputs("]}", out);
    return 0;
}

/* py-spy's profile names: Thread 13721 "name" (with the process first
 * when several processes are recorded). */
static char *profile_name(const pyspy_agg *a, const pyspy_agg_thread *th) {
    char tid[32], *buf;
    pyspy_format_thread_id(th->thread_id, th->os_thread_id, tid, sizeof tid);
    const char *name = th->name ? th->name : "";
    size_t len = strlen(name) + 80;
    if (!(buf = malloc(len)))
        return NULL;
    if (a->opts.subprocesses)
        snprintf(buf, len, "Process %d Thread %s \"%s\"", th->pid, tid, name);
    else
        snprintf(buf, len, "Thread %s \"%s\"", tid, name);
    return buf;
}

static void put_stack(FILE *out, const pyspy_agg_stack *st, bool first) {
    fputs(first ? "[" : ",[", out);
    for (uint32_t k = 0; k < st->nframes; k++)
        fprintf(out, k ? ",%u" : "%u", st->frames[k]);
    fputc(']', out);
}

static int put_profile(FILE *out, const pyspy_agg *a,
                       const pyspy_agg_thread *th, const char *name) {
    double tick = 1.0 / (double)(a->opts.rate ? a->opts.rate : 100);
    char one[40];
    format_seconds(tick, one, sizeof one);
    fputs("{\"type\":\"sampled\",\"name\":", out);
    if (pyspy_json_put_clean(out, name))
        return -1;
    fputs(",\"unit\":\"seconds\",\"startValue\":0.0,\"endValue\":", out);
    put_seconds(out, (double)th->ticks * tick);
    fputs(",\"samples\":[", out);
    bool first = true;
    for (size_t r = 0; r < th->nruns; r++) {
        const pyspy_agg_run *run = &th->runs[r];
        for (uint32_t k = 0; k < run->count; k++) {
            put_stack(out, &a->stacks[run->stack], first);
            first = false;
        }
    }
    fputs("],\"weights\":[", out);
    first = true;
    for (size_t r = 0; r < th->nruns; r++) {
        const pyspy_agg_run *run = &th->runs[r];
        for (uint32_t k = 0; k < run->count; k++) {
            if (!first)
                fputc(',', out);
            first = false;
            if (k == 0 && run->first_ticks > 1)
                put_seconds(out, (double)run->first_ticks * tick);
            else
                fputs(one, out);
        }
    }
    fputs("]}", out);
    return 0;
}

typedef struct named {
    char *name;
    size_t thread;
} named;

static int cmp_named(const void *x, const void *y) {
    return strcmp(((const named *)x)->name, ((const named *)y)->name);
}

int pyspy_write_speedscope(FILE *out, const pyspy_agg *a, pyspy_error *err) {
    int rc = -1;
    named *list = calloc(a->nthreads ? a->nthreads : 1, sizeof *list);
    if (!list)
        goto oom;
    for (size_t i = 0; i < a->nthreads; i++) {
        list[i].thread = i;
        if (!(list[i].name = profile_name(a, &a->threads[i])))
            goto oom;
    }
    /* py-spy sorts the profiles by name. */
    qsort(list, a->nthreads, sizeof *list, cmp_named);
    fputs("{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\","
          "\"profiles\":[",
          out);
    for (size_t i = 0; i < a->nthreads; i++) {
        if (i)
            fputc(',', out);
        if (put_profile(out, a, &a->threads[list[i].thread], list[i].name))
            goto oom;
    }
    fputs("],", out);
    if (put_frames(out, a))
        goto oom;
    fputs(",\"activeProfileIndex\":null,\"exporter\":\"pyspy@" PYSPY_VERSION
          "\",\"name\":\"py-spy profile\"}\n",
          out);
    rc = fflush(out) || ferror(out)
             ? pyspy_error_set(err, PYSPY_E_IO, "write failed")
             : 0;
    goto done;
oom:
    pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
done:
    if (list)
        for (size_t i = 0; i < a->nthreads; i++)
            free(list[i].name);
    free(list);
    return rc;
}
