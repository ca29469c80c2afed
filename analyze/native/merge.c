/* Merging a thread's native stack with its Python frames: every native
 * frame of the interpreter's eval loop is replaced by the Python frames
 * that invocation runs (innermost up to and including the frame the
 * walker marked is_entry); the interpreter's own call plumbing between
 * them is dropped, other native frames are kept.
 *
 * Which native frame is an eval-loop invocation: where the walker found
 * that invocation's entry frame on the C stack (3.12+), the native frame
 * whose stack holds it, whatever its symbol (a stripped build's eval
 * loop may run in an unnamed part split off by the compiler, as
 * Debian's 3.14 and 3.15 do in _PyEval_EvalFrameDefault.cold); without
 * one, the frame whose symbol is an eval function. */
#include "capture/base/array.h"
#include "analyze/native/unwind.h"
#include "analyze/walk/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The eval loop (and its compiler-split ".cold" part, which belongs to
 * the same invocation). */
static bool is_eval_frame(const char *name) {
    static const char *const evals[] = {"_PyEval_EvalFrameDefault",
                                        "PyEval_EvalFrameEx"};
    for (size_t i = 0; i < sizeof evals / sizeof evals[0]; i++) {
        size_t len = strlen(evals[i]);
        if (strncmp(name, evals[i], len) == 0 &&
            (name[len] == '\0' || name[len] == '.'))
            return true;
    }
    return false;
}

/* Functions of the interpreter that only carry a call from one Python
 * frame to the next: shown, they would bury the Python frames. (The
 * tail-calling interpreter of 3.14+ runs each instruction in its own
 * _TAIL_CALL_<op> function, called from the eval function.) */
static bool is_interpreter_plumbing(const char *name) {
    static const char *const prefixes[] = {"_Py",
                                           "Py",
                                           "cfunction_",
                                           "method_vectorcall",
                                           "vectorcall_",
                                           "slot_tp_",
                                           "call_function",
                                           "function_code_fastcall",
                                           "object_vacall",
                                           "pymain_",
                                           "_PyEval",
                                           "fast_function",
                                           "do_call_core",
                                           "run_mod",
                                           "run_eval_code_obj",
                                           "run_pyc_file",
                                           "pyrun_",
                                           "_TAIL_CALL_"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (starts_with(name, prefixes[i]))
            return true;
    return false;
}

static bool in_interpreter(const pyspy_python *py, const char *module) {
    return module && py->module_path && strcmp(module, py->module_path) == 0;
}

typedef struct frame_vec {
    pyspy_frame *v;
    size_t n, cap;
} frame_vec;

static pyspy_frame *push(frame_vec *fv) {
    if (pyspy_array_reserve(&fv->v, &fv->cap, fv->n + 1, sizeof *fv->v, 32) !=
        0)
        return NULL;
    pyspy_frame *f = &fv->v[fv->n++];
    memset(f, 0, sizeof *f);
    return f;
}

static int push_native(frame_vec *fv, pyspy_native_frame *nf) {
    pyspy_frame *f = push(fv);
    if (!f)
        return -1;
    char hex[32];
    if (!nf->name)
        snprintf(hex, sizeof hex, "0x%llx", (unsigned long long)nf->pc);
    f->name = nf->name ? nf->name : strdup(hex);
    nf->name = NULL;
    f->module = nf->module;
    nf->module = NULL;
    f->filename = f->module ? strdup(f->module) : strdup("?");
    f->is_native = true;
    f->is_entry = true;
    if (!f->name || !f->filename)
        return -1;
    /* Shown as the object's file name, as the walker shortens paths that
     * are not under sys.path. */
    const char *slash = strrchr(f->filename, '/');
    f->short_filename = strdup(slash ? slash + 1 : f->filename);
    return f->short_filename ? 0 : -1;
}

/* Whether native frame i's own stack (from its sp up to its caller's)
 * holds addr. */
static bool frame_holds(const pyspy_native_frame *nf, size_t nn, size_t i,
                        uint64_t addr) {
    return nf[i].sp && i + 1 < nn && nf[i + 1].sp && nf[i].sp <= addr &&
           addr < nf[i + 1].sp;
}

/* Where the entry frame of the invocation that runs Python frames
 * [next, ...] sits (its is_entry frame says), when the stack of a native
 * frame from the from'th on holds it; else 0 (unknown, or on a stack not
 * unwound here): that invocation is then found by name. */
static uint64_t run_anchor(const pyspy_trace *trace, size_t next,
                           const pyspy_native_frame *nf, size_t nn,
                           size_t from) {
    uint64_t addr = 0;
    for (size_t i = next; i < trace->nframes; i++)
        if (trace->frames[i].is_entry) {
            addr = trace->frames[i].entry_frame_addr;
            break;
        }
    for (size_t i = from; addr && i < nn; i++)
        if (frame_holds(nf, nn, i, addr))
            return addr;
    return 0;
}

/* Whether native frame i is the eval-loop invocation that runs the
 * Python frames whose entry frame sits at anchor (0: by name). */
static bool runs_python(const pyspy_native_frame *nf, size_t nn, size_t i,
                        uint64_t anchor) {
    if (anchor)
        return frame_holds(nf, nn, i, anchor);
    return nf[i].name && is_eval_frame(nf[i].name);
}

/* Moves Python frames [*next, entry] into fv; returns -1 out of memory. */
static int push_python_run(frame_vec *fv, pyspy_trace *trace, size_t *next) {
    while (*next < trace->nframes) {
        pyspy_frame *f = push(fv);
        if (!f)
            return -1;
        *f = trace->frames[*next];
        memset(&trace->frames[*next], 0, sizeof *f);
        (*next)++;
        if (f->is_entry)
            break;
    }
    return 0;
}

int pyspy_native_merge(pyspy_native_session **s, pyspy_memsrc *src,
                       const pyspy_python *py, pyspy_trace *trace,
                       pyspy_error *err) {
    if (!trace->os_thread_id)
        return pyspy_error_set(err, PYSPY_E_UNREADABLE,
                               "the OS thread of thread 0x%llx is unknown",
                               (unsigned long long)trace->thread_id);
    pyspy_native_frame *nf = NULL;
    size_t nn = 0;
    if (pyspy_native_unwind_in(s, src, (int)trace->os_thread_id, &nf, &nn,
                               err) < 0)
        return -1;
    frame_vec fv = {0};
    size_t next = 0;
    int rc = 0;
    uint64_t anchor = run_anchor(trace, next, nf, nn, 0);
    for (size_t i = 0; rc == 0 && i < nn; i++) {
        const char *name = nf[i].name;
        if (next < trace->nframes && runs_python(nf, nn, i, anchor)) {
            rc = push_python_run(&fv, trace, &next);
            anchor = run_anchor(trace, next, nf, nn, i + 1);
            continue;
        }
        /* An eval function that runs none of the Python frames left (its
         * frames were placed by their entry frame, or it shows none). */
        if (name && is_eval_frame(name))
            continue;
        if (name && in_interpreter(py, nf[i].module) &&
            is_interpreter_plumbing(name))
            continue;
        rc = push_native(&fv, &nf[i]);
    }
    /* Python frames the native stack did not reach (an unwind cut short)
     * still belong to the thread, outermost last. */
    while (rc == 0 && next < trace->nframes)
        rc = push_python_run(&fv, trace, &next);
    pyspy_native_frames_free(nf, nn);
    if (rc < 0) {
        /* Frames moved into fv are owned there now; trace keeps the
         * rest (zeroed slots free as nothing). */
        pyspy_frames_free(fv.v, fv.n);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    pyspy_frames_free(trace->frames, trace->nframes);
    trace->frames = fv.v;
    trace->nframes = fv.n;
    return 0;
}
