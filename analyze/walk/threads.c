/* Every thread state of every interpreter, into the stack-trace model:
 * thread ids, the OS thread, thread name, GIL and idle state, frames and
 * short filenames. Both linked lists are remote and hostile: bounded and
 * checked for cycles. */
#include "capture/base/array.h"
#include "analyze/native/unwind.h"
#include "analyze/objects/objects.h"
#include "analyze/walk/internal.h"
#include "analyze/walk/cache.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int read_u64(pyspy_memsrc *src, uint64_t addr, uint64_t *out) {
    return pyspy_memsrc_read(src, addr, out, sizeof *out, NULL);
}

/* The thread state holding this interpreter's GIL, 0 for none (or no GIL
 * at all in a free-threaded build). */
static uint64_t gil_holder(pyspy_memsrc *src, const pyspy_python *py,
                           uint64_t interp) {
    const pyspy_py_layout *l = &py->layout;
    if (l->free_threaded)
        return 0;
    uint64_t gil = 0, holder = 0;
    switch (l->gil) {
    case PYSPY_GIL_TSTATE_CURRENT:
        if (!py->tstate_current_addr ||
            read_u64(src, py->tstate_current_addr, &holder) < 0)
            return 0;
        return holder;
    case PYSPY_GIL_RUNTIME:
        if (!py->runtime_addr || l->runtime_gil < 0)
            return 0;
        gil = py->runtime_addr + (uint64_t)l->runtime_gil;
        break;
    case PYSPY_GIL_INTERP_PTR:
        if (l->interp_gil_ptr < 0 ||
            read_u64(src, interp + (uint64_t)l->interp_gil_ptr, &gil) < 0)
            return 0;
        break;
    }
    if (!gil || l->gil_locked < 0 || l->gil_last_holder < 0)
        return 0;
    int32_t locked = 0;
    if (pyspy_memsrc_read(src, gil + (uint64_t)l->gil_locked, &locked,
                          sizeof locked, NULL) < 0 ||
        !locked)
        return 0;
    if (read_u64(src, gil + (uint64_t)l->gil_last_holder, &holder) < 0)
        return 0;
    return holder;
}

typedef struct trace_list {
    pyspy_trace *v;
    size_t n, cap;
} trace_list;

/* A first block under 1 KiB: glibc serves those from its small bins,
 * where a larger one (16 entries of this size) goes the large-bin way
 * and consolidates the fast bins, at every walk of every sample. */
#define FIRST_CAP (1000 / sizeof(*((trace_list *)0)->v))

static pyspy_trace *push_trace(trace_list *tl) {
    if (pyspy_array_reserve(&tl->v, &tl->cap, tl->n + 1, sizeof *tl->v,
                            FIRST_CAP) != 0)
        return NULL;
    pyspy_trace *t = &tl->v[tl->n++];
    memset(t, 0, sizeof *t);
    return t;
}

static const char *name_of(const pyspy_thread_name *names, size_t n,
                           uint64_t ident) {
    for (size_t i = 0; i < n; i++)
        if (names[i].ident == ident)
            return names[i].name;
    return NULL;
}

typedef struct walk {
    pyspy_memsrc *src;
    const pyspy_python *py;
    const pyspy_walk_opts *opts;
    pyspy_code_cache own; /* when the options bring no cache */
    pyspy_code_cache *cache;
    pyspy_thread_name *names; /* owned when read without a cache */
    size_t nnames;
    const pyspy_thread_name *view; /* the names in use, owned or cached */
    size_t nview;
    uint64_t interp; /* the one being walked */
    int64_t interp_id;
    trace_list tl;
    pyspy_tstate_refs refs; /* refs.v[i]: where tl.v[i] was read */
    size_t lists_cut;
    bool oom;
    pyspy_own_tids own_tids; /* Python's thread ids to the source's */
    bool gc_collecting;      /* some interpreter's collector runs */
    /* The interpreter's thread names or sys.path met damage. */
    bool ctx_damaged;
    uint64_t thread_d0; /* src->damaged_reads after the last thread */
    bool tainted;       /* a thread or interpreter link met damage */
} walk;

/* Marks the thread running the interpreter's collection, when one runs
 * and the thread can be told (analyze/walk/gc_state.c says how). */
static void mark_collector(walk *w, uint64_t interp, size_t first) {
    uint64_t start = 0;
    if (pyspy_gc_collecting(w->src, w->py, interp, &start) != 1)
        return;
    w->gc_collecting = true;
    size_t hit = SIZE_MAX;
    for (size_t i = first; start && hit == SIZE_MAX && i < w->tl.n; i++)
        if (pyspy_gc_frame_on_thread(w->src, w->py, w->refs.v[i].tstate, start))
            hit = i;
    for (size_t i = first; hit == SIZE_MAX && i < w->tl.n; i++)
        if (w->tl.v[i].owns_gil)
            hit = i;
    if (hit == SIZE_MAX && w->tl.n == first + 1)
        hit = first;
    if (hit != SIZE_MAX)
        w->tl.v[hit].gc_collecting = true;
}

static int one_thread(walk *w, uint64_t tstate, uint64_t holder,
                      const pyspy_sys_path *sp) {
    const pyspy_py_layout *l = &w->py->layout;
    pyspy_trace *t = push_trace(&w->tl);
    if (!t ||
        pyspy_tstate_refs_push(&w->refs, tstate, w->refs.ninterps - 1) < 0)
        return -1;
    t->pid = w->src->proc.pid;
    /* Damage met since the last thread was its link to this one: every
     * thread found after it is suspect. */
    if (w->src->damaged_reads != w->thread_d0)
        w->tainted = true;
    uint64_t d0 = w->src->damaged_reads;
    if (l->tstate_thread_id >= 0)
        read_u64(w->src, tstate + (uint64_t)l->tstate_thread_id, &t->thread_id);
    uint64_t native = 0;
    if (l->tstate_native_thread_id >= 0 &&
        read_u64(w->src, tstate + (uint64_t)l->tstate_native_thread_id,
                 &native) == 0 &&
        native > 0 && native < (1u << 31)) {
        const pyspy_thread *os =
            pyspy_thread_by_own_tid(w->src, &w->own_tids, (int)native);
        if (os)
            t->os_thread_id = (uint64_t)os->tid;
        else if (!pyspy_own_tids_nested(w->src, &w->own_tids))
            t->os_thread_id = native; /* a thread not listed (yet) */
        else if ((os = pyspy_os_thread_for(w->src, &w->own_tids, t->thread_id)))
            t->os_thread_id = (uint64_t)os->tid;
        /* Else a container's id that names no thread known here: never
         * taken for the host's thread of that number. */
        if (!t->os_thread_id)
            t->ns_thread_id = native;
    } else {
        const pyspy_thread *os =
            pyspy_os_thread_for(w->src, &w->own_tids, t->thread_id);
        if (os)
            t->os_thread_id = (uint64_t)os->tid;
    }
    t->owns_gil = holder && holder == tstate;
    if (w->opts->exceptions)
        t->handling_exception =
            pyspy_tstate_handling_exception(w->src, w->py, tstate);
    t->damaged = w->ctx_damaged || w->tainted || w->src->damaged_reads != d0;
    const char *name = name_of(w->view, w->nview, t->thread_id);
    if (name && !(t->thread_name = strdup(name)))
        return -1;
    if (!name && !w->opts->skip_thread_names)
        pyspy_walk_cache_name_missing(w->opts->cache, w->interp);
    if (pyspy_walk_frames(w->src, w->py, w->opts, w->cache, sp, tstate,
                          &t->frames, &t->nframes) < 0)
        return -1;
    for (size_t i = 0; i < t->nframes; i++) {
        t->frames[i].interpreter_id = w->interp_id;
        /* a thread state found through damage holds frames found so */
        t->frames[i].damaged |= w->tainted;
        t->damaged |= t->frames[i].damaged;
    }
    w->thread_d0 = w->src->damaged_reads;
    return 0;
}

/* Activity and the crash mark need the OS thread; the main thread's
 * pthread is not always found by registers, so a single Python thread
 * left without an OS thread is the process's main thread, as long as
 * no other Python thread claimed it. */
static int finish(walk *w) {
    pyspy_memsrc *src = w->src;
    size_t unknown = 0, at = 0;
    bool main_taken = false;
    for (size_t i = 0; i < w->tl.n; i++) {
        if (!w->tl.v[i].os_thread_id) {
            unknown++;
            at = i;
        } else if ((int)w->tl.v[i].os_thread_id == src->proc.pid) {
            main_taken = true;
        }
    }
    if (unknown == 1 && !main_taken && src->proc.pid > 0 &&
        (src->nthreads == 0 || pyspy_thread_by_tid(src, src->proc.pid)))
        w->tl.v[at].os_thread_id = (uint64_t)src->proc.pid;
    if (pyspy_merge_interpreters(src, w->py, w->tl.v, &w->tl.n, &w->refs) < 0)
        return -1;
    for (size_t i = 0; i < w->tl.n; i++) {
        pyspy_trace *t = &w->tl.v[i];
        const pyspy_thread *os = pyspy_thread_by_tid(src, (int)t->os_thread_id);
        if (os && os->ns_tid > 0)
            t->ns_thread_id = os->ns_tid != os->tid ? (uint64_t)os->ns_tid : 0;
        t->active = pyspy_thread_active(os);
        if (t->active && pyspy_frames_look_idle(t->frames, t->nframes))
            t->active = false;
        t->crashed = os && os->crashed;
        /* A thread started outside threading (C pthread_create, an
         * extension's thread, _thread) has no Python name; pystack shows
         * the kernel's. */
        const char *own = w->opts->skip_thread_names || t->thread_name
                              ? NULL
                              : pyspy_os_thread_own_name(src, os);
        if (own && !(t->thread_name = strndup(own, sizeof os->name)))
            return -1;
        for (size_t k = 0; k < t->nframes; k++)
            t->incomplete |= t->frames[k].unreadable;
    }
    return 0;
}

static int walk_interpreter(walk *w, uint64_t interp, pyspy_error *err) {
    const pyspy_py_layout *l = &w->py->layout;
    uint64_t tstate = 0;
    uint64_t d0 = w->src->damaged_reads;
    if (l->interp_tstate_head < 0 ||
        read_u64(w->src, interp + (uint64_t)l->interp_tstate_head, &tstate) < 0)
        return pyspy_error_set(err, PYSPY_E_UNREADABLE,
                               "cannot read the thread list of the "
                               "interpreter at 0x%" PRIx64,
                               interp);
    w->tainted |= w->src->damaged_reads != d0;
    uint64_t holder = w->opts->skip_gil ? 0 : gil_holder(w->src, w->py, interp);
    w->interp = interp;
    w->interp_id = 0; /* the main interpreter's, and 2.7/3.6 have no ids */
    if (l->interp_id >= 0 && read_u64(w->src, interp + (uint64_t)l->interp_id,
                                      (uint64_t *)&w->interp_id) < 0)
        w->interp_id = 0;
    w->refs.ninterps++;
    const pyspy_sys_path *sp = NULL;
    pyspy_sys_path own_sp = {0};
    const pyspy_thread_name *cached = NULL;
    size_t ncached = 0;
    bool use_cache =
        pyspy_walk_cache_interp(w->opts->cache,
                                w->opts->cold_src ? w->opts->cold_src : w->src,
                                w->py, interp, !w->opts->skip_thread_names, &sp,
                                &cached, &ncached) == 0;
    if (!use_cache) {
        pyspy_interp_context_read(w->src, w->py, interp,
                                  !w->opts->skip_thread_names, &own_sp,
                                  &w->names, &w->nnames);
        sp = &own_sp;
        cached = w->names;
        ncached = w->nnames;
    }
    w->view = cached;
    w->nview = ncached;
    w->ctx_damaged = w->src->damaged_reads != d0;
    w->thread_d0 = w->src->damaged_reads;
    pyspy_addr_set seen = {0};
    int rc = 0;
    size_t first = w->tl.n;
    while (tstate && w->tl.n < PYSPY_MAX_THREADS) {
        bool added;
        if (pyspy_addr_set_add(&seen, tstate, &added) != 0) {
            rc = -1;
            break;
        }
        if (!added)
            break; /* a cycle: every thread is already in */
        if (one_thread(w, tstate, holder, sp) < 0) {
            rc = -1;
            break;
        }
        if (l->tstate_next < 0)
            break;
        if (read_u64(w->src, tstate + (uint64_t)l->tstate_next, &tstate) < 0) {
            w->lists_cut++;
            break;
        }
    }
    pyspy_addr_set_free(&seen);
    if (rc == 0 && !w->opts->skip_gc)
        mark_collector(w, interp, first);
    pyspy_sys_path_free(&own_sp);
    pyspy_py_thread_names_free(w->names, w->nnames);
    w->names = NULL;
    w->nnames = 0;
    if (rc < 0) {
        w->oom = true;
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    return 0;
}

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

int pyspy_stack_traces(pyspy_memsrc *src, const pyspy_python *py,
                       const pyspy_walk_opts *opts, pyspy_traces *out,
                       pyspy_error *err) {
    memset(out, 0, sizeof *out);
    walk w = {.src = src, .py = py, .opts = opts};
    w.cache = pyspy_walk_cache_code(opts->cache);
    if (!w.cache)
        w.cache = &w.own;
    pyspy_code_cache_next_walk(w.cache);
    if (!py->interp_head)
        return pyspy_error_set(err, PYSPY_E_NOPYTHON,
                               "no interpreter state found");
    pyspy_addr_set interps = {0};
    uint64_t interp = py->interp_head;
    int rc = 0;
    for (size_t k = 0; interp && k < PYSPY_MAX_INTERPRETERS; k++) {
        bool added;
        if (pyspy_addr_set_add(&interps, interp, &added) != 0) {
            rc = pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
            break;
        }
        if (!added)
            break;
        pyspy_error e = {0};
        if (walk_interpreter(&w, interp, &e) < 0) {
            /* The first interpreter must be readable; a broken link
             * further on only ends the list. */
            if (k == 0 || w.oom) {
                if (err)
                    *err = e;
                rc = -1;
            } else {
                w.lists_cut++;
            }
            break;
        }
        if (py->layout.interp_next < 0)
            break;
        uint64_t d0 = src->damaged_reads;
        if (read_u64(src, interp + (uint64_t)py->layout.interp_next, &interp) <
            0) {
            w.lists_cut++;
            break;
        }
        w.tainted |= src->damaged_reads != d0;
    }
    pyspy_addr_set_free(&interps);
    pyspy_code_cache_free(&w.own);
    if (rc == 0 && finish(&w) < 0)
        rc = pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    pyspy_tstate_refs_free(&w.refs);
    pyspy_own_tids_free(&w.own_tids);
    if (rc == 0 && opts->native) {
        /* After finish: idle detection looks at the Python frames. */
        /* A thread that cannot be unwound keeps its Python frames. One
         * libdw session serves the walk's threads, got at the first that
         * has registers to unwind. */
        pyspy_native_session *ns = NULL;
        for (size_t i = 0; i < w.tl.n; i++)
            pyspy_native_merge(&ns, src, py, &w.tl.v[i], NULL);
        pyspy_native_put(ns);
    }
    out->traces = w.tl.v;
    out->ntraces = w.tl.n;
    out->lists_cut = w.lists_cut;
    out->gc_collecting = w.gc_collecting;
    out->pid = src->proc.pid;
    out->ppid = src->proc.ppid;
    out->command_line = dup_or_null(src->proc.cmdline ? src->proc.cmdline : "");
    out->executable =
        dup_or_null(py->executable ? py->executable : src->proc.exe);
    out->python_version = dup_or_null(py->version);
    if (rc < 0) {
        pyspy_traces_free(out);
        return -1;
    }
    return 0;
}
