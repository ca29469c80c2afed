/* speedscope's file format
 * (https://www.speedscope.app/file-format-schema.json): shared frames and one
 * "sampled" profile per thread, in time order, weights counted in samples. */
#include "formats/record_formats.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static cJSON *clean_string(const char *s) {
    char *c = pyspy_text_clean(s);
    if (!c)
        return NULL;
    cJSON *j = cJSON_CreateString(c);
    free(c);
    return j;
}

static cJSON *shared_frames(const pyspy_agg *a) {
    cJSON *frames = cJSON_CreateArray();
    for (size_t i = 0; frames && i < a->nframes; i++) {
        const pyspy_agg_frame *f = &a->frames[i];
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(frames, o))
            goto fail;
        cJSON *name = clean_string(f->name);
        if (!name || !cJSON_AddItemToObject(o, "name", name))
            goto fail;
        if (!f->is_meta) {
            cJSON *file = clean_string(f->full_filename);
            if (!file || !cJSON_AddItemToObject(o, "file", file))
                goto fail;
            if (f->line > 0 && !cJSON_AddNumberToObject(o, "line", f->line))
                goto fail;
        }
    }
    return frames;
fail:
    cJSON_Delete(frames);
    return NULL;
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

static cJSON *thread_profile(const pyspy_agg *a, const pyspy_agg_thread *th) {
    cJSON *p = cJSON_CreateObject();
    cJSON *samples = cJSON_CreateArray(), *weights = cJSON_CreateArray();
    char *name = profile_name(a, th);
    cJSON *jname = name ? clean_string(name) : NULL;
    free(name);
    if (!p || !samples || !weights || !jname)
        goto fail;
    cJSON_AddItemToObject(p, "name", jname);
    jname = NULL;
    if (!cJSON_AddStringToObject(p, "type", "sampled") ||
        !cJSON_AddStringToObject(p, "unit", "none") ||
        !cJSON_AddNumberToObject(p, "startValue", 0) ||
        !cJSON_AddNumberToObject(p, "endValue", (double)th->samples))
        goto fail;
    for (size_t r = 0; r < th->nruns; r++) {
        const pyspy_agg_run *run = &th->runs[r];
        const pyspy_agg_stack *st = &a->stacks[run->stack];
        cJSON *s = cJSON_CreateArray();
        if (!s || !cJSON_AddItemToArray(samples, s))
            goto fail;
        for (uint32_t k = 0; k < st->nframes; k++) {
            cJSON *n = cJSON_CreateNumber(st->frames[k]);
            if (!n || !cJSON_AddItemToArray(s, n))
                goto fail;
        }
        cJSON *w = cJSON_CreateNumber(run->count);
        if (!w || !cJSON_AddItemToArray(weights, w))
            goto fail;
    }
    cJSON_AddItemToObject(p, "samples", samples);
    cJSON_AddItemToObject(p, "weights", weights);
    return p;
fail:
    cJSON_Delete(jname);
    cJSON_Delete(p);
    cJSON_Delete(samples);
    cJSON_Delete(weights);
    return NULL;
}

static int cmp_profile(const void *x, const void *y) {
    const cJSON *a = *(cJSON *const *)x, *b = *(cJSON *const *)y;
    return strcmp(cJSON_GetObjectItem(a, "name")->valuestring,
                  cJSON_GetObjectItem(b, "name")->valuestring);
}

int pyspy_write_speedscope(FILE *out, const pyspy_agg *a, const char *name,
                           pyspy_error *err) {
    cJSON *root = cJSON_CreateObject();
    cJSON *shared = cJSON_CreateObject();
    cJSON *profiles = cJSON_CreateArray();
    cJSON **list = calloc(a->nthreads ? a->nthreads : 1, sizeof *list);
    cJSON *frames = shared_frames(a);
    cJSON *jname = clean_string(name ? name : "pyspy profile");
    int rc = -1;
    if (!root || !shared || !profiles || !list || !frames || !jname)
        goto oom;
    cJSON_AddItemToObject(shared, "frames", frames);
    frames = NULL;
    for (size_t i = 0; i < a->nthreads; i++)
        if (!(list[i] = thread_profile(a, &a->threads[i])))
            goto oom;
    /* Stable order (by name), as py-spy sorts them. */
    qsort(list, a->nthreads, sizeof *list, cmp_profile);
    for (size_t i = 0; i < a->nthreads; i++) {
        cJSON_AddItemToArray(profiles, list[i]);
        list[i] = NULL;
    }
    if (!cJSON_AddStringToObject(root, "$schema",
                                 "https://www.speedscope.app/"
                                 "file-format-schema.json"))
        goto oom;
    cJSON_AddItemToObject(root, "shared", shared);
    shared = NULL;
    cJSON_AddItemToObject(root, "profiles", profiles);
    profiles = NULL;
    cJSON_AddItemToObject(root, "name", jname);
    jname = NULL;
    if (!cJSON_AddNumberToObject(root, "activeProfileIndex", 0) ||
        !cJSON_AddStringToObject(root, "exporter", "pyspy@" PYSPY_VERSION))
        goto oom;
    rc = pyspy_write_json(out, root, err);
    goto done;
oom:
    pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
done:
    if (list)
        for (size_t i = 0; i < a->nthreads; i++)
            cJSON_Delete(list[i]);
    free(list);
    cJSON_Delete(frames);
    cJSON_Delete(jname);
    cJSON_Delete(shared);
    cJSON_Delete(profiles);
    cJSON_Delete(root);
    return rc;
}
