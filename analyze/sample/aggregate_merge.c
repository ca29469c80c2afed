/* Merging aggregates: partial profiles of one set of inputs add up to the
 * profile of all of them in one run (pyspy merge, the Dask driver). */
#include "analyze/sample/aggregate.h"

#include <stdlib.h>
#include <string.h>

bool pyspy_agg_same_shape(const pyspy_agg_opts *x, const pyspy_agg_opts *y,
                          const char **which) {
    const char *w = NULL;
    if (x->include_idle != y->include_idle)
        w = "--idle";
    else if (x->gil_only != y->gil_only)
        w = "--gil";
    else if (x->exception_only != y->exception_only)
        w = "--mode exception";
    else if (x->gc_frames != y->gc_frames)
        w = "--gc";
    else if (x->include_thread_ids != y->include_thread_ids)
        w = "--threads";
    else if (x->subprocesses != y->subprocesses)
        w = "--subprocesses";
    else if (x->show_line_numbers != y->show_line_numbers)
        w = "--nolineno";
    else if (x->rate != y->rate || x->period_us != y->period_us)
        w = "--rate";
    if (which)
        *which = w;
    return w == NULL;
}

static int oom(pyspy_error *err) {
    return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory while merging");
}

static bool is_empty(const pyspy_agg *a) {
    return a->total == 0 && a->nthreads == 0 && a->nstacks == 0;
}

/* How far src's times move to follow dst's, as offline record places a
 * file after the last. */
static int time_shift(const pyspy_agg *dst, const pyspy_agg *src,
                      int64_t *shift, pyspy_error *err) {
    int64_t d = 0, first;
    if (dst->origin_us && src->origin_us &&
        __builtin_sub_overflow(src->origin_us, dst->origin_us, &d))
        d = 0;
    if (__builtin_add_overflow(src->first_us, d, &first) ||
        first < dst->last_us) {
        if (__builtin_add_overflow(dst->last_us, PYSPY_AGG_GAP_US, &d) ||
            __builtin_sub_overflow(d, src->first_us, &d))
            return pyspy_error_set(err, PYSPY_E_FORMAT,
                                   "sample times out of range");
    }
    int64_t last;
    if (__builtin_add_overflow(src->last_us, d, &last))
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "sample times out of range");
    *shift = d;
    return 0;
}

static int add_u64(uint64_t *dst, uint64_t v, pyspy_error *err) {
    if (__builtin_add_overflow(*dst, v, dst))
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "sample counts add up to more than 2^64");
    return 0;
}

static int merge_threads(pyspy_agg *dst, const pyspy_agg *src,
                         const uint32_t *smap, int64_t shift,
                         pyspy_error *err) {
    for (size_t i = 0; i < src->nthreads; i++) {
        const pyspy_agg_thread *th = &src->threads[i];
        uint32_t t;
        if (pyspy_agg_intern_thread(dst, th->pid, th->thread_id,
                                    th->os_thread_id, th->name, &t))
            return oom(err);
        if (add_u64(&dst->threads[t].samples, th->samples, err) ||
            add_u64(&dst->threads[t].ticks, th->ticks, err))
            return -1;
        if (dst->opts.counts_only)
            continue;
        for (size_t r = 0; r < th->nruns; r++) {
            pyspy_agg_run run = th->runs[r];
            run.stack = smap[run.stack];
            run.first_us += shift;
            run.last_us += shift;
            if (pyspy_agg_append_run(dst, t, &run))
                return oom(err);
        }
    }
    return 0;
}

int pyspy_agg_merge(pyspy_agg *dst, const pyspy_agg *src, pyspy_error *err) {
    const char *which;
    if (!pyspy_agg_same_shape(&dst->opts, &src->opts, &which))
        return pyspy_error_set(err, PYSPY_E_USAGE,
                               "recorded with different %s settings", which);
    /* Threads with samples but no runs would leave dst's time line short
     * of its counts. */
    for (size_t i = 0;
         !dst->opts.counts_only && src->opts.counts_only && i < src->nthreads;
         i++)
        if (src->threads[i].samples)
            return pyspy_error_set(err, PYSPY_E_USAGE,
                                   "it keeps no time line of its threads");
    bool was_empty = is_empty(dst);
    uint32_t *fmap = malloc((src->nframes ? src->nframes : 1) * sizeof *fmap);
    uint32_t *smap = malloc((src->nstacks ? src->nstacks : 1) * sizeof *smap);
    uint32_t *ids = NULL;
    size_t capids = 0;
    int rc = fmap && smap ? 0 : oom(err);
    for (size_t i = 0; rc == 0 && i < src->nframes; i++)
        if (pyspy_agg_intern_frame(dst, &src->frames[i], &fmap[i]))
            rc = oom(err);
    for (size_t s = 0; rc == 0 && s < src->nstacks; s++) {
        const pyspy_agg_stack *st = &src->stacks[s];
        if (!ids || st->nframes > capids) {
            free(ids);
            capids = st->nframes;
            if (!(ids = malloc((capids ? capids : 1) * sizeof *ids))) {
                rc = oom(err);
                break;
            }
        }
        for (uint32_t k = 0; k < st->nframes; k++)
            ids[k] = fmap[st->frames[k]];
        if (pyspy_agg_intern_stack(dst, ids, st->nframes, &smap[s]))
            rc = oom(err);
        else
            rc = add_u64(&dst->stacks[smap[s]].count, st->count, err);
    }
    free(ids);
    free(fmap);
    for (size_t i = 0; rc == 0 && i < pyspy_agg_nprocesses(src); i++) {
        int pid, ppid;
        const char *cmd;
        pyspy_agg_process(src, i, &pid, &ppid, &cmd);
        if (pyspy_agg_note_process(dst, pid, ppid, cmd))
            rc = oom(err);
    }
    int64_t shift = 0;
    if (rc == 0 && !is_empty(src) && !was_empty &&
        time_shift(dst, src, &shift, err))
        rc = -1;
    if (rc == 0 && merge_threads(dst, src, smap, shift, err))
        rc = -1;
    free(smap);
    if (rc || add_u64(&dst->total, src->total, err) ||
        add_u64(&dst->gil, src->gil, err) ||
        add_u64(&dst->active, src->active, err))
        return -1;
    if (was_empty) {
        dst->origin_us = src->origin_us;
        dst->first_us = src->first_us;
        dst->last_us = src->last_us;
    } else if (!is_empty(src)) {
        dst->last_us = src->last_us + shift;
    }
    return 0;
}

int pyspy_agg_merge_labels(pyspy_agg *dst, const pyspy_agg *src,
                           pyspy_error *err) {
    char **labels = calloc(src->nframes ? src->nframes : 1, sizeof *labels);
    const char **line = NULL;
    size_t capline = 0;
    int rc = labels ? 0 : oom(err);
    for (size_t i = 0; rc == 0 && i < src->nframes; i++)
        if (!(labels[i] = pyspy_agg_frame_label(src, (uint32_t)i)))
            rc = oom(err);
    for (size_t s = 0; rc == 0 && s < src->nstacks; s++) {
        const pyspy_agg_stack *st = &src->stacks[s];
        if (st->nframes > capline) {
            free(line);
            capline = st->nframes;
            if (!(line = malloc(capline * sizeof *line))) {
                rc = oom(err);
                break;
            }
        }
        for (uint32_t k = 0; k < st->nframes; k++)
            line[k] = labels[st->frames[k]];
        if (st->count)
            rc = pyspy_agg_add_stack(dst, line, st->nframes, st->count, err);
    }
    free(line);
    if (labels)
        for (size_t i = 0; i < src->nframes; i++)
            free(labels[i]);
    free(labels);
    return rc;
}
