/* Stack → count aggregation with interned frames and per-thread runs. */
#include "analyze/sample/aggregate.h"
#include "capture/base/array.h"
#include "capture/base/map.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A process seen in the traces, for --subprocesses' parent chains. */
typedef struct proc_info {
    int pid, ppid;
    char *cmdline;
} proc_info;

typedef struct agg_index {
    /* Each maps its key's hash to a position in pyspy_agg's array of the
     * same name, which holds the key. */
    pyspy_map frames, stacks, threads;
    proc_info *procs;
    size_t nprocs, capprocs;
    char *buf; /* scratch key buffer */
    size_t bufcap;
    /* The last tick seen and how many ticks its samples stand for. */
    bool have_tick;
    int64_t tick_us, tick_slot;
    uint32_t tick_span;
} agg_index;

static int grow(void *arr, size_t *cap, size_t need, size_t elem) {
    return pyspy_array_reserve(arr, cap, need, elem, 16);
}

static int key_reserve(agg_index *ix, size_t n) {
    return grow(&ix->buf, &ix->bufcap, n, 1);
}

static char *dupstr(const char *s) {
    return strdup(s ? s : "");
}

pyspy_agg *pyspy_agg_new(const pyspy_agg_opts *opts, pyspy_error *err) {
    pyspy_agg *a = calloc(1, sizeof *a);
    agg_index *ix = calloc(1, sizeof *ix);
    if (!a || !ix) {
        free(a);
        free(ix);
        pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        return NULL;
    }
    a->opts = *opts;
    a->index = ix;
    return a;
}

void pyspy_agg_free(pyspy_agg *a) {
    if (!a)
        return;
    for (size_t i = 0; i < a->nframes; i++) {
        free(a->frames[i].name);
        free(a->frames[i].filename);
        free(a->frames[i].full_filename);
    }
    free(a->frames);
    for (size_t i = 0; i < a->nstacks; i++)
        free(a->stacks[i].frames);
    free(a->stacks);
    for (size_t i = 0; i < a->nthreads; i++) {
        free(a->threads[i].name);
        free(a->threads[i].runs);
    }
    free(a->threads);
    agg_index *ix = a->index;
    if (ix) {
        pyspy_map_free(&ix->frames);
        pyspy_map_free(&ix->stacks);
        pyspy_map_free(&ix->threads);
        for (size_t i = 0; i < ix->nprocs; i++)
            free(ix->procs[i].cmdline);
        free(ix->procs);
        free(ix->buf);
        free(ix);
    }
    free(a);
}

bool pyspy_agg_keeps(const pyspy_agg_opts *opts, const pyspy_trace *tr) {
    if (!opts->include_idle && !tr->active)
        return false;
    if (opts->gil_only && !tr->owns_gil)
        return false;
    if (opts->exception_only && !tr->handling_exception)
        return false;
    return true;
}

void pyspy_format_thread_id(uint64_t thread_id, uint64_t os_thread_id,
                            char *buf, size_t len) {
    if (os_thread_id)
        snprintf(buf, len, "%" PRIu64, os_thread_id);
    else
        snprintf(buf, len, "0x%" PRIX64, thread_id);
}

typedef struct frame_key {
    const pyspy_agg *a;
    const char *name, *shortname, *fullname;
    int line;
    bool native, meta;
} frame_key;

static bool frame_eq(const void *ctx, uint32_t v) {
    const frame_key *k = ctx;
    const pyspy_agg_frame *f = &k->a->frames[v];
    return f->line == k->line && f->is_native == k->native &&
           f->is_meta == k->meta && strcmp(f->name, k->name) == 0 &&
           strcmp(f->full_filename, k->fullname) == 0 &&
           strcmp(f->filename, k->shortname) == 0;
}

/* Interns a frame: its index goes to *id. -1 on OOM. */
static int intern_frame(pyspy_agg *a, const char *name, const char *shortname,
                        const char *fullname, int line, bool native, bool meta,
                        uint32_t *id) {
    agg_index *ix = a->index;
    name = name ? name : "";
    fullname = fullname ? fullname : "";
    shortname = shortname ? shortname : fullname;
    size_t ln = strlen(name), lf = strlen(fullname), ls = strlen(shortname);
    /* The hash is of every field back to back (each string with its NUL);
     * built with copies, not a printf: this runs for every frame of every
     * sample. */
    size_t n = ln + 1 + lf + 1 + ls + 1 + sizeof line + 2;
    if (key_reserve(ix, n))
        return -1;
    char *k = ix->buf;
    memcpy(k, name, ln + 1);
    k += ln + 1;
    memcpy(k, fullname, lf + 1);
    k += lf + 1;
    memcpy(k, shortname, ls + 1);
    k += ls + 1;
    memcpy(k, &line, sizeof line);
    k += sizeof line;
    *k++ = (char)native;
    *k = (char)meta;
    uint64_t h = pyspy_hash_bytes(ix->buf, n);
    frame_key key = {a, name, shortname, fullname, line, native, meta};
    if (pyspy_map_find_hashed(&ix->frames, h, frame_eq, &key, id))
        return 0;
    /* Indices are uint32_t (the stacks hold them) */
    if (a->nframes >= UINT32_MAX ||
        grow(&a->frames, &a->capframes, a->nframes + 1, sizeof *a->frames))
        return -1;
    pyspy_agg_frame *f = &a->frames[a->nframes];
    *f = (pyspy_agg_frame){
        dupstr(name), dupstr(shortname), dupstr(fullname), line, native, meta};
    uint32_t v = (uint32_t)a->nframes;
    bool added;
    if (!f->name || !f->filename || !f->full_filename ||
        pyspy_map_add_hashed(&ix->frames, h, frame_eq, &key, &v, &added)) {
        free(f->name);
        free(f->filename);
        free(f->full_filename);
        return -1;
    }
    *id = (uint32_t)a->nframes++;
    return 0;
}

typedef struct stack_key {
    const pyspy_agg *a;
    const uint32_t *ids;
    uint32_t n;
} stack_key;

static bool stack_eq(const void *ctx, uint32_t v) {
    const stack_key *k = ctx;
    const pyspy_agg_stack *st = &k->a->stacks[v];
    return st->nframes == k->n &&
           memcmp(st->frames, k->ids, (size_t)k->n * sizeof *k->ids) == 0;
}

static int intern_stack(pyspy_agg *a, const uint32_t *ids, uint32_t n,
                        uint32_t *id) {
    agg_index *ix = a->index;
    size_t len = (size_t)n * sizeof *ids;
    uint64_t h = pyspy_hash_bytes(ids, len);
    stack_key key = {a, ids, n};
    if (pyspy_map_find_hashed(&ix->stacks, h, stack_eq, &key, id))
        return 0;
    if (a->nstacks >= UINT32_MAX ||
        grow(&a->stacks, &a->capstacks, a->nstacks + 1, sizeof *a->stacks))
        return -1;
    uint32_t *copy = malloc(len ? len : 1);
    if (!copy)
        return -1;
    memcpy(copy, ids, len);
    /* The new entry is in place before the map can compare against it. */
    a->stacks[a->nstacks] = (pyspy_agg_stack){copy, n, 0};
    uint32_t v = (uint32_t)a->nstacks;
    bool added;
    if (pyspy_map_add_hashed(&ix->stacks, h, stack_eq, &key, &v, &added)) {
        free(copy);
        return -1;
    }
    *id = (uint32_t)a->nstacks++;
    return 0;
}

typedef struct thread_key {
    const pyspy_agg *a;
    int pid;
    uint64_t thread_id;
} thread_key;

static bool thread_eq(const void *ctx, uint32_t v) {
    const thread_key *k = ctx;
    const pyspy_agg_thread *th = &k->a->threads[v];
    return th->pid == k->pid && th->thread_id == k->thread_id;
}

int pyspy_agg_intern_thread(pyspy_agg *a, int pid, uint64_t thread_id,
                            uint64_t os_thread_id, const char *name,
                            uint32_t *id) {
    agg_index *ix = a->index;
    unsigned char hk[12];
    memcpy(hk, &pid, 4);
    memcpy(hk + 4, &thread_id, 8);
    uint64_t h = pyspy_hash_bytes(hk, sizeof hk);
    thread_key key = {a, pid, thread_id};
    uint32_t v;
    if (!pyspy_map_find_hashed(&ix->threads, h, thread_eq, &key, &v)) {
        bool added;
        if (a->nthreads >= UINT32_MAX ||
            grow(&a->threads, &a->capthreads, a->nthreads + 1,
                 sizeof *a->threads))
            return -1;
        v = (uint32_t)a->nthreads;
        if (pyspy_map_add_hashed(&ix->threads, h, thread_eq, &key, &v, &added))
            return -1;
        a->threads[a->nthreads++] =
            (pyspy_agg_thread){.pid = pid, .thread_id = thread_id};
    }
    *id = v;
    pyspy_agg_thread *th = &a->threads[v];
    if (os_thread_id)
        th->os_thread_id = os_thread_id;
    if (name && (!th->name || strcmp(th->name, name))) {
        char *n = strdup(name);
        if (n) {
            free(th->name);
            th->name = n;
        }
    }
    return 0;
}

/* Whether a sample (or a run of them) starting at first_us continues
 * the thread's last run rather than starting one. */
static bool continues(const pyspy_agg *a, const pyspy_agg_thread *th,
                      const pyspy_agg_run *next) {
    if (!th->nruns || next->first_ticks != 1)
        return false;
    const pyspy_agg_run *r = &th->runs[th->nruns - 1];
    /* A gap (the thread was filtered out meanwhile) starts a new run so
     * the time line shows it. */
    int64_t slack = (int64_t)(a->opts.period_us + a->opts.period_us / 2);
    return r->stack == next->stack && r->count <= UINT32_MAX - next->count &&
           (a->opts.period_us == 0 || next->first_us - r->last_us <= slack);
}

int pyspy_agg_append_run(pyspy_agg *a, uint32_t thread,
                         const pyspy_agg_run *run) {
    pyspy_agg_thread *th = &a->threads[thread];
    if (continues(a, th, run)) {
        pyspy_agg_run *r = &th->runs[th->nruns - 1];
        r->count += run->count;
        r->last_us = run->last_us;
        return 0;
    }
    if (grow(&th->runs, &th->caprun, th->nruns + 1, sizeof *th->runs))
        return -1;
    th->runs[th->nruns++] = *run;
    return 0;
}

static int add_run(pyspy_agg *a, uint32_t thread, uint32_t stack, int64_t ts,
                   uint32_t span) {
    pyspy_agg_thread *th = &a->threads[thread];
    th->samples++;
    th->ticks += span;
    if (a->opts.counts_only)
        return 0;
    pyspy_agg_run run = {stack, 1, span, ts, ts};
    return pyspy_agg_append_run(a, thread, &run);
}

static proc_info *find_proc(agg_index *ix, int pid) {
    for (size_t i = 0; i < ix->nprocs; i++)
        if (ix->procs[i].pid == pid)
            return &ix->procs[i];
    return NULL;
}

/* Remembers a process (latest command line wins). -1 on OOM. */
int pyspy_agg_note_process(pyspy_agg *a, int pid, int ppid, const char *cmd) {
    agg_index *ix = a->index;
    proc_info *p = find_proc(ix, pid);
    if (!p) {
        if (grow(&ix->procs, &ix->capprocs, ix->nprocs + 1, sizeof *ix->procs))
            return -1;
        p = &ix->procs[ix->nprocs++];
        *p = (proc_info){pid, ppid, NULL};
    }
    p->ppid = ppid;
    if (cmd && (!p->cmdline || strcmp(p->cmdline, cmd))) {
        char *c = strdup(cmd);
        if (!c)
            return -1;
        free(p->cmdline);
        p->cmdline = c;
    }
    return 0;
}

static int process_frame(pyspy_agg *a, int pid, const char *cmd, uint32_t *id) {
    cmd = cmd ? cmd : "";
    size_t len = strlen(cmd) + 48;
    char *s = malloc(len);
    if (!s)
        return -1;
    snprintf(s, len, "process %d:\"%s\"", pid, cmd);
    int rc = intern_frame(a, s, NULL, NULL, 0, false, true, id);
    free(s);
    return rc;
}

#define MAX_PROC_CHAIN 16

/* Root frames: with subprocesses the process and, outermost first, its
 * ancestors among the processes sampled (as py-spy nests a child under
 * its parent); with threads the thread. *nout receives how many were
 * written to ids (room for MAX_PROC_CHAIN + 1). -1 on OOM. */
static int meta_frames(pyspy_agg *a, const pyspy_traces *t,
                       const pyspy_trace *tr, uint32_t *ids, uint32_t *nout) {
    uint32_t n = 0;
    char tid[32];
    if (a->opts.subprocesses) {
        agg_index *ix = a->index;
        int chain[MAX_PROC_CHAIN];
        size_t nchain = 0;
        int pid = tr->pid ? tr->pid : t->pid;
        chain[nchain++] = pid;
        /* Bounded and cycle-checked: ppids come from the target. */
        for (proc_info *p = find_proc(ix, pid); p && nchain < MAX_PROC_CHAIN;
             p = find_proc(ix, p->ppid)) {
            bool seen = false;
            for (size_t k = 0; k < nchain && !seen; k++)
                seen = chain[k] == p->ppid;
            if (seen || !find_proc(ix, p->ppid))
                break;
            chain[nchain++] = p->ppid;
        }
        for (size_t k = nchain; k-- > 0;) {
            proc_info *p = find_proc(ix, chain[k]);
            if (process_frame(a, chain[k], p ? p->cmdline : t->command_line,
                              &ids[n++]))
                return -1;
        }
    }
    if (a->opts.include_thread_ids) {
        pyspy_format_thread_id(tr->thread_id, tr->os_thread_id, tid,
                               sizeof tid);
        const char *name = tr->thread_name;
        size_t len = (name ? strlen(name) : 0) + 48;
        char *s = malloc(len);
        if (!s)
            return -1;
        if (name)
            snprintf(s, len, "thread (%s): %s", tid, name);
        else
            snprintf(s, len, "thread (%s)", tid);
        int rc = intern_frame(a, s, NULL, NULL, 0, false, true, &ids[n++]);
        free(s);
        if (rc)
            return -1;
    }
    *nout = n;
    return 0;
}

/* How many ticks the samples taken at ts stand for: the sampler skips a
 * tick whose slot went by, and a failed tick adds nothing, so a sample
 * after either stands for the slots since the last tick, and the weights
 * still add up to the time recorded. Several targets sampled in one tick
 * share its ts. */
static uint32_t tick_span(pyspy_agg *a, int64_t ts) {
    agg_index *ix = a->index;
    int64_t period = (int64_t)a->opts.period_us;
    if (period <= 0 || period > INT64_MAX / 2)
        return 1;
    if (ix->have_tick && ts == ix->tick_us)
        return ix->tick_span;
    int64_t slot = ts >= 0 ? ts / period : -((-ts + period - 1) / period);
    int64_t d = ix->have_tick ? slot - ix->tick_slot : 1;
    uint32_t span = d < 1 ? 1 : d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    ix->have_tick = true;
    ix->tick_us = ts;
    ix->tick_slot = slot;
    ix->tick_span = span;
    return span;
}

int pyspy_agg_add(pyspy_agg *a, const pyspy_traces *t, int64_t ts_us,
                  size_t *added_out, pyspy_error *err) {
    size_t added = 0;
    uint32_t *ids = NULL;
    size_t capids = 0;
    uint32_t span = tick_span(a, ts_us);
    if (a->total == 0 && a->nthreads == 0)
        a->first_us = ts_us;
    a->last_us = ts_us;
    if (a->opts.subprocesses &&
        pyspy_agg_note_process(a, t->pid, t->ppid, t->command_line))
        goto oom;
    for (size_t i = 0; i < t->ntraces; i++) {
        const pyspy_trace *tr = &t->traces[i];
        /* A thread with no Python frame (starting, or finishing) says
         * nothing about where time goes. */
        if (!pyspy_agg_keeps(&a->opts, tr) || tr->nframes == 0)
            continue;
        if (grow(&ids, &capids, tr->nframes + MAX_PROC_CHAIN + 2, sizeof *ids))
            goto oom;
        uint32_t n;
        if (meta_frames(a, t, tr, ids, &n))
            goto oom;
        for (size_t k = tr->nframes; k-- > 0;) {
            const pyspy_frame *f = &tr->frames[k];
            const char *name = f->name;
            if (!name)
                name = f->unreadable ? "<unreadable>" : "<unknown>";
            int line = a->opts.show_line_numbers ? f->line : 0;
            if (intern_frame(a, name, f->short_filename, f->filename, line,
                             f->is_native, false, &ids[n++]))
                goto oom;
        }
        /* As CPython's own sampler shows a collection: a frame of no
         * file above whatever Python frame was running. */
        if (a->opts.gc_frames && tr->gc_collecting &&
            intern_frame(a, "<GC>", NULL, NULL, 0, false, true, &ids[n++]))
            goto oom;
        uint32_t st, th;
        int pid = tr->pid ? tr->pid : t->pid;
        if (intern_stack(a, ids, n, &st) ||
            pyspy_agg_intern_thread(a, pid, tr->thread_id, tr->os_thread_id,
                                    tr->thread_name, &th) ||
            add_run(a, th, st, ts_us, span))
            goto oom;
        a->stacks[st].count++;
        a->total++;
        a->gil += tr->owns_gil;
        a->active += tr->active;
        added++;
    }
    free(ids);
    if (added_out)
        *added_out = added;
    return 0;
oom:
    free(ids);
    if (added_out)
        *added_out = added;
    pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory while aggregating");
    return -1;
}

char *pyspy_agg_frame_label(const pyspy_agg *a, uint32_t frame) {
    if (frame >= a->nframes)
        return NULL;
    const pyspy_agg_frame *f = &a->frames[frame];
    size_t len = strlen(f->name) + strlen(f->filename) + 32;
    char *s = malloc(len);
    if (!s)
        return NULL;
    if (a->opts.show_line_numbers && f->line != 0)
        snprintf(s, len, "%s (%s:%d)", f->name, f->filename, f->line);
    else if (f->filename[0])
        snprintf(s, len, "%s (%s)", f->name, f->filename);
    else
        snprintf(s, len, "%s", f->name);
    return s;
}

int pyspy_agg_add_stack(pyspy_agg *a, const char *const *labels, uint32_t n,
                        uint64_t count, pyspy_error *err) {
    uint32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids)
        goto oom;
    for (uint32_t k = 0; k < n; k++)
        if (intern_frame(a, labels[k], "", "", 0, false, false, &ids[k]))
            goto oom;
    uint32_t st;
    if (intern_stack(a, ids, n, &st))
        goto oom;
    free(ids);
    if (count > UINT64_MAX - a->total)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "sample counts add up to more than 2^64");
    a->stacks[st].count += count;
    a->total += count;
    return 0;
oom:
    free(ids);
    return pyspy_error_set(err, PYSPY_E_GENERIC,
                           "out of memory while aggregating");
}

int pyspy_agg_intern_frame(pyspy_agg *a, const pyspy_agg_frame *f,
                           uint32_t *id) {
    return intern_frame(a, f->name, f->filename, f->full_filename, f->line,
                        f->is_native, f->is_meta, id);
}

int pyspy_agg_intern_stack(pyspy_agg *a, const uint32_t *frames, uint32_t n,
                           uint32_t *id) {
    for (uint32_t k = 0; k < n; k++)
        if (frames[k] >= a->nframes)
            return -1;
    return intern_stack(a, frames, n, id);
}

size_t pyspy_agg_nprocesses(const pyspy_agg *a) {
    const agg_index *ix = a->index;
    return ix->nprocs;
}

void pyspy_agg_process(const pyspy_agg *a, size_t i, int *pid, int *ppid,
                       const char **cmdline) {
    const agg_index *ix = a->index;
    const proc_info *p = &ix->procs[i];
    *pid = p->pid;
    *ppid = p->ppid;
    *cmdline = p->cmdline;
}
