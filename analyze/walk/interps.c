/* Sub-interpreters: one trace per OS thread, whatever number of
 * interpreters run on it.
 *
 * A thread that enters another interpreter (_interpreters.exec or
 * run_string, 3.12's _xxsubinterpreters.run_string, Py_NewInterpreter
 * from C) gets a thread state in that interpreter too, and the walk of
 * every interpreter's thread list meets the OS thread once per thread
 * state. Those traces are merged here: the frames of every interpreter,
 * innermost first, each frame keeping its interpreter_id.
 *
 * Which interpreter is innermost. The switch (PyThreadState_Swap) leaves
 * the outer thread state detached with its frames as they were, and
 * nothing in either thread state says which one was entered from the
 * other: the attached/active state (3.12 _status.active, 3.13+ state,
 * holds_gil) only names the running one, and a parked sub-interpreter
 * (sleeping, waiting on a lock) has released its interpreter, so both
 * thread states read as detached. What does say it is the C stack: every
 * eval-loop invocation keeps a structure in its own C frame and the
 * thread state points at the innermost one's (tstate->cframe, 3.11-3.12:
 * the _PyCFrame local of _PyEval_EvalFrameDefault; 3.13+: the entry
 * frame, a _PyInterpreterFrame local of that function, the first frame
 * of the chain whose owner marks it so, see py_layout.h). The outer
 * interpreter's eval loop called the C function that switched, so its structure
 * sits higher on the same stack; the stack grows down (x86_64), so the thread
 * state whose anchor has the lower address is the inner one. This holds while
 * the sub-interpreter runs and while it is parked, and for any depth of
 * nesting.
 *
 * Where that cannot be used (2.7-3.10 keep PyFrameObjects on the heap;
 * an anchor that could not be read; anchors that are not on one stack),
 * the thread state holding a GIL comes first, then the newer interpreter
 * (the runtime lists interpreters newest first, and an interpreter is
 * normally entered from one that existed before it).
 *
 * Which OS thread. A thread state's ids are those of the thread that
 * created it, which is not the one running it after run_string on a
 * thread other than the interpreter's creator up to 3.12 (it reuses the
 * interpreter's first thread state, gh-109860). So a thread state whose
 * anchor lies on another thread's stack (stack_owner) belongs to that
 * thread; without an anchor (before 3.11) it stays where its ids say. */
#include "capture/base/array.h"
#include "analyze/walk/internal.h"

#include <stdlib.h>
#include <string.h>

int pyspy_tstate_refs_push(pyspy_tstate_refs *r, uint64_t tstate,
                           uint32_t interp_rank) {
    if (pyspy_array_reserve(&r->v, &r->cap, r->n + 1, sizeof *r->v, 16) != 0)
        return -1;
    r->v[r->n++] = (pyspy_tstate_ref){tstate, interp_rank};
    return 0;
}

void pyspy_tstate_refs_free(pyspy_tstate_refs *r) {
    free(r->v);
    memset(r, 0, sizeof *r);
}

static int read_u64(pyspy_memsrc *src, uint64_t addr, uint64_t *out) {
    return pyspy_memsrc_read(src, addr, out, sizeof *out, NULL);
}

/* The C-stack structure of the thread state's innermost eval loop, 0
 * when there is none (no frames, a heap-only frame chain, unreadable). */
static uint64_t cstack_anchor(pyspy_memsrc *src, const pyspy_python *py,
                              uint64_t tstate) {
    const pyspy_py_layout *l = &py->layout;
    uint64_t v = 0;
    switch (l->threads) {
    case PYSPY_THREADS_FRAME:
        return 0;
    case PYSPY_THREADS_CFRAME:
        if (l->tstate_cframe < 0 ||
            read_u64(src, tstate + (uint64_t)l->tstate_cframe, &v) < 0)
            return 0;
        return v;
    case PYSPY_THREADS_CURRENT_FRAME:
        break;
    }
    if (l->tstate_frame < 0 || l->iframe_previous < 0 || l->iframe_owner < 0 ||
        (l->owner_cstack < 0 && l->owner_interpreter < 0) ||
        read_u64(src, tstate + (uint64_t)l->tstate_frame, &v) < 0)
        return 0;
    /* Bounded like the frame walk (shims count); a cycle ends it there. */
    for (size_t steps = 0; v && steps < 2 * PYSPY_MAX_FRAMES; steps++) {
        int8_t owner = 0;
        if (pyspy_memsrc_read(src, v + (uint64_t)l->iframe_owner, &owner,
                              sizeof owner, NULL) < 0)
            return 0;
        if ((l->owner_cstack >= 0 && owner == l->owner_cstack) ||
            (l->owner_interpreter >= 0 && owner == l->owner_interpreter))
            return v;
        if (read_u64(src, v + (uint64_t)l->iframe_previous, &v) < 0)
            return 0;
    }
    return 0;
}

/* The OS thread whose stack holds addr, in the mapping r. Thread stacks
 * need not be mappings of their own (a glibc that guards them with
 * madvise, not mprotect, leaves neighbours in one mapping), so the owner
 * is the nearest stack bottom: with every thread's registers, the
 * thread whose stack pointer is the closest at or below addr (a live
 * part of a stack lies between its pointer and its top); without, the
 * thread whose pthread is the closest at or above addr (glibc puts a
 * thread's struct pthread at the top of the block it allocates for the
 * thread's stack), as a thread state's thread_id says; the main stack,
 * which holds no pthread, when maps names it. 0 unknown. */
static uint64_t stack_owner(const pyspy_memsrc *src, const pyspy_region *r,
                            uint64_t addr, const pyspy_trace *tv,
                            const pyspy_region *const *pthread_region,
                            size_t n) {
    bool regs = src->nthreads > 0;
    const pyspy_thread *best = NULL;
    for (size_t i = 0; regs && i < src->nthreads; i++) {
        const pyspy_thread *t = &src->threads[i];
        uint64_t sp = t->regs[PYSPY_REG_RSP];
        if (!t->has_regs)
            regs = false;
        else if (sp >= r->start && sp < r->end && sp <= addr &&
                 (!best || sp > best->regs[PYSPY_REG_RSP]))
            best = t;
    }
    if (regs)
        return best ? (uint64_t)best->tid : 0;
    size_t at = n;
    for (size_t j = 0; j < n; j++)
        if (pthread_region[j] == r && tv[j].os_thread_id &&
            tv[j].thread_id >= addr &&
            (at == n || tv[j].thread_id < tv[at].thread_id))
            at = j;
    if (at < n)
        return tv[at].os_thread_id;
    if (r->path && strcmp(r->path, "[stack]") == 0 && src->proc.pid > 0)
        return (uint64_t)src->proc.pid;
    return 0;
}

typedef struct member {
    size_t at;       /* index of the trace */
    uint64_t anchor; /* 0 unknown */
    const pyspy_region *region;
    uint32_t rank;
} member;

/* Innermost first, by the rule in the file comment. by_stack: every
 * member with frames has an anchor and they share one mapping. */
static bool inner_before(const pyspy_trace *tv, const member *a,
                         const member *b, bool by_stack) {
    const pyspy_trace *ta = &tv[a->at], *tb = &tv[b->at];
    /* Thread states without frames add nothing; they go last. */
    if ((ta->nframes == 0) != (tb->nframes == 0))
        return tb->nframes == 0;
    if (by_stack && a->anchor != b->anchor)
        return a->anchor < b->anchor;
    if (ta->owns_gil != tb->owns_gil)
        return ta->owns_gil;
    if (a->rank != b->rank)
        return a->rank < b->rank;
    return a->at < b->at;
}

/* Moves the group's traces (innermost first) into one, at dst. */
static int merge_group(pyspy_trace *tv, member *g, size_t ng,
                       pyspy_trace *dst) {
    size_t nframes = 0, outer = 0;
    for (size_t i = 0; i < ng; i++) {
        nframes += tv[g[i].at].nframes;
        if (tv[g[i].at].nframes)
            outer = i;
    }
    pyspy_frame *frames = malloc((nframes ? nframes : 1) * sizeof *frames);
    if (!frames)
        return -1;
    pyspy_trace m = tv[g[outer].at];
    m.frames = frames;
    m.nframes = 0;
    m.thread_name = NULL;
    /* The name the thread was started with: the outermost interpreter's
     * threading module knows it; a sub-interpreter's does not. */
    for (size_t k = ng; k-- > 0 && !m.thread_name;)
        if (tv[g[k].at].thread_name) {
            m.thread_name = tv[g[k].at].thread_name;
            tv[g[k].at].thread_name = NULL;
        }
    for (size_t i = 0; i < ng; i++) {
        pyspy_trace *t = &tv[g[i].at];
        if (t->nframes)
            memcpy(frames + m.nframes, t->frames, t->nframes * sizeof *frames);
        m.nframes += t->nframes;
        m.owns_gil |= t->owns_gil;
        m.incomplete |= t->incomplete;
        m.crashed |= t->crashed;
        m.gc_collecting |= t->gc_collecting;
        m.handling_exception |= t->handling_exception;
        free(t->frames);
        t->frames = NULL;
        t->nframes = 0;
        free(t->thread_name);
        t->thread_name = NULL;
    }
    *dst = m;
    return 0;
}

int pyspy_merge_interpreters(pyspy_memsrc *src, const pyspy_python *py,
                             pyspy_trace *tv, size_t *n,
                             const pyspy_tstate_refs *refs) {
    if (refs->ninterps < 2 || refs->n != *n || *n < 2)
        return 0;
    member *ms = calloc(*n, sizeof *ms);
    bool *done = calloc(*n, sizeof *done);
    const pyspy_region **pr = calloc(*n, sizeof *pr);
    if (!ms || !done || !pr) {
        free(ms);
        free(done);
        free(pr);
        return -1;
    }
    for (size_t i = 0; i < *n; i++) {
        ms[i] = (member){.at = i, .rank = refs->v[i].interp_rank};
        pr[i] = pyspy_memsrc_region_at(src, tv[i].thread_id);
        if (tv[i].nframes == 0)
            continue;
        ms[i].anchor = cstack_anchor(src, py, refs->v[i].tstate);
        if (ms[i].anchor)
            ms[i].region = pyspy_memsrc_region_at(src, ms[i].anchor);
    }
    /* Owners are found from the ids as read, before any is changed. */
    uint64_t *owner = calloc(*n, sizeof *owner);
    for (size_t i = 0; owner && i < *n; i++)
        if (ms[i].region)
            owner[i] = stack_owner(src, ms[i].region, ms[i].anchor, tv, pr, *n);
    for (size_t i = 0; owner && i < *n; i++)
        if (owner[i])
            tv[i].os_thread_id = owner[i];
    free(pr);
    if (!owner) {
        free(ms);
        free(done);
        return -1;
    }
    free(owner);
    /* A group stands where its last trace stood: the main interpreter is
     * walked last, so threads keep the order they have without
     * sub-interpreters. Built from the end, then turned round. An
     * unknown OS thread (0) is nobody's twin. */
    size_t out = 0;
    int rc = 0;
    member *g = calloc(*n, sizeof *g);
    pyspy_trace *merged = g ? calloc(*n, sizeof *merged) : NULL;
    if (!merged)
        rc = -1;
    for (size_t i = *n; rc == 0 && i-- > 0;) {
        if (done[i])
            continue;
        size_t ng = 0;
        for (size_t j = 0; j <= i; j++)
            if (!done[j] &&
                (j == i || (tv[i].os_thread_id &&
                            tv[j].os_thread_id == tv[i].os_thread_id))) {
                done[j] = true;
                g[ng++] = ms[j];
            }
        bool by_stack = true;
        const pyspy_region *r = NULL;
        for (size_t k = 0; k < ng; k++) {
            if (tv[g[k].at].nframes == 0)
                continue;
            if (!g[k].anchor || !g[k].region || (r && g[k].region != r))
                by_stack = false;
            r = g[k].region;
        }
        /* Insertion sort: groups are a handful of thread states. */
        for (size_t k = 1; k < ng; k++)
            for (size_t m = k;
                 m > 0 && inner_before(tv, &g[m], &g[m - 1], by_stack); m--) {
                member s = g[m];
                g[m] = g[m - 1];
                g[m - 1] = s;
            }
        if (ng == 1) {
            merged[out++] = tv[g[0].at];
            memset(&tv[g[0].at], 0, sizeof tv[g[0].at]);
        } else if (merge_group(tv, g, ng, &merged[out]) == 0) {
            out++;
        } else {
            rc = -1;
        }
    }
    for (size_t k = 0; rc == 0 && k < out / 2; k++) {
        pyspy_trace s = merged[k];
        merged[k] = merged[out - 1 - k];
        merged[out - 1 - k] = s;
    }
    if (rc == 0) {
        memcpy(tv, merged, out * sizeof *tv);
        *n = out;
    } else {
        /* Out of memory: what was moved goes; the caller frees the rest. */
        for (size_t k = 0; merged && k < out; k++)
            pyspy_trace_clear(&merged[k]);
    }
    free(merged);
    free(g);
    free(ms);
    free(done);
    return rc;
}
