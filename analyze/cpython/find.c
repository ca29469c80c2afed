/* Finding the interpreter in a memory source: the ELF object that holds
 * it (a static executable, or libpython for --enable-shared builds), its
 * exact version and layout, and the addresses the walker starts from.
 * Symbols first (_PyRuntime, interp_head); without them, the object's
 * writable data is searched for a structure that validates. Everything
 * read is checked: a found address must lead to an interpreter whose
 * first thread state points back at it. */
#include "analyze/cpython/layout_tables.h"
#include "analyze/cpython/python.h"
#include "analyze/cpython/find.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SCAN_BYTES ((uint64_t)64 << 20)

static int read_ptr(pyspy_memsrc *src, uint64_t addr, uint64_t *out) {
    pyspy_error e = {0};
    *out = 0;
    return pyspy_memsrc_read(src, addr, out, sizeof *out, &e);
}

static bool writable_at(const pyspy_memsrc *src, uint64_t addr) {
    const pyspy_region *r = pyspy_memsrc_region_at(src, addr);
    return r && r->present && (r->perms & PYSPY_PERM_W) && !(addr & 7);
}

/* Whether obj is a dict: its type's tp_name reads "dict". */
static bool is_dict(pyspy_memsrc *src, const pyspy_py_layout *l, uint64_t obj) {
    uint64_t type, name;
    char buf[8];
    pyspy_error e = {0};
    if (!obj || !writable_at(src, obj) ||
        read_ptr(src, obj + (uint64_t)l->ob_type, &type) < 0 || !type ||
        read_ptr(src, type + (uint64_t)l->type_tp_name, &name) < 0 || !name ||
        pyspy_memsrc_read_cstr(src, name, buf, sizeof buf, &e) < 0)
        return false;
    return strcmp(buf, "dict") == 0;
}

/* 3: the interpreter's first thread state points back at it and its
 * sys.modules is a dict; 2: the thread state points back; 1: no thread
 * state (starting up or finalizing) but sys.modules is a dict; 0: not
 * an interpreter. Scans demand 3 (two words pointing at each other also
 * match unrelated doubly linked lists); a symbol's target needs 1. */
static int interp_score(pyspy_memsrc *src, const pyspy_py_layout *l,
                        uint64_t interp) {
    if (!interp || !writable_at(src, interp))
        return 0;
    uint64_t tstate, back, next;
    if (read_ptr(src, interp + (uint64_t)l->interp_tstate_head, &tstate) < 0 ||
        read_ptr(src, interp + (uint64_t)l->interp_next, &next) < 0)
        return 0;
    if (next && !writable_at(src, next))
        return 0;
    if (l->interp_id >= 0) {
        uint64_t id;
        if (read_ptr(src, interp + (uint64_t)l->interp_id, &id) < 0 ||
            id > 1000000)
            return 0;
    }
    uint64_t modules;
    bool dict =
        read_ptr(src, interp + (uint64_t)l->interp_modules, &modules) == 0 &&
        is_dict(src, l, modules);
    if (!tstate)
        return dict ? 1 : 0;
    if (!writable_at(src, tstate) ||
        read_ptr(src, tstate + (uint64_t)l->tstate_interp, &back) < 0 ||
        back != interp)
        return 0;
    return dict ? 3 : 2;
}

typedef struct {
    pyspy_memsrc *src;
    const pyspy_py_layout *l;
    bool runtime; /* looking for &_PyRuntime.interpreters.head, else for
                     the interp_head static */
    uint64_t best_addr, best_interp;
    int best_score;
    size_t checked;
} ptr_scan;

/* Extra evidence that addr is &_PyRuntime.interpreters.head: .main
 * follows .head and equals it in a process without subinterpreters, and
 * 3.7-3.11 keep a GIL whose locked flag is 0 or 1 in the runtime. */
static int runtime_bonus(ptr_scan *c, uint64_t addr, uint64_t interp) {
    int bonus = 0;
    uint64_t main_interp, locked;
    if (read_ptr(c->src, addr + 8, &main_interp) == 0 && main_interp == interp)
        bonus++;
    if (c->l->runtime_gil >= 0) {
        uint64_t rt = addr - (uint64_t)c->l->runtime_interpreters_head;
        if (read_ptr(c->src,
                     rt + (uint64_t)c->l->runtime_gil +
                         (uint64_t)c->l->gil_locked,
                     &locked) == 0 &&
            ((uint32_t)locked == 0 || (uint32_t)locked == 1))
            bonus++;
    }
    return bonus;
}

static int ptr_fn(void *ctx, uint64_t addr, const uint8_t *buf, size_t len) {
    ptr_scan *c = ctx;
    size_t i = (size_t)((8 - (addr & 7)) & 7);
    for (; i + 8 <= len; i += 8) {
        uint64_t p;
        memcpy(&p, buf + i, 8);
        if (!p || (p & 7) || !writable_at(c->src, p))
            continue;
        /* Bounded work even on a hostile snapshot full of pointers. */
        if (++c->checked > 4000000)
            return 1;
        int s = interp_score(c->src, c->l, p);
        if (s < 3)
            continue;
        uint64_t at = addr + i;
        if (c->runtime) {
            if (at < (uint64_t)c->l->runtime_interpreters_head)
                continue;
            s += runtime_bonus(c, at, p);
        }
        if (s > c->best_score) {
            c->best_score = s;
            c->best_addr = at;
            c->best_interp = p;
            if (s >= (c->runtime ? 3 + (c->l->runtime_gil >= 0 ? 2 : 1) : 3))
                return 1;
        }
    }
    return 0;
}

/* Symbol-less: the address of the word holding the first interpreter
 * (&_PyRuntime.interpreters.head for 3.7+, the interp_head static for
 * 2.7/3.6), searched in the module's writable data. */
static uint64_t scan_for_head(pyspy_memsrc *src, const pyspy_module *m,
                              const pyspy_py_layout *l, bool runtime) {
    ptr_scan c = {.src = src, .l = l, .runtime = runtime};
    pyspy_scan_module(src, m, PYSPY_PERM_R | PYSPY_PERM_W, 0, 8, MAX_SCAN_BYTES,
                      ptr_fn, &c);
    return c.best_score >= 3 ? c.best_addr : 0;
}

static int unsupported(const pyspy_pyver *v, const pyspy_module *m,
                       pyspy_error *err) {
    return pyspy_error_set(
        err, PYSPY_E_UNSUPPORTED,
        "Python %s%s (in %s, version from %s) is not supported; supported "
        "versions are 2.7 and 3.6 to 3.15",
        v->version, v->free_threaded ? " (free-threaded)" : "", m->path,
        v->source);
}

static int try_module(pyspy_memsrc *src, pyspy_module *m, pyspy_python *py,
                      pyspy_error *err) {
    uint64_t runtime = pyspy_module_symbol(m, "_PyRuntime", NULL);
    if (!runtime)
        runtime = pyspy_debug_offsets_scan(src, m);
    pyspy_pyver v;
    if (pyspy_python_version(src, m, runtime, &v, err) < 0)
        return -1;
    const pyspy_py_layout *builtin =
        pyspy_py_layout_builtin(v.major, v.minor, v.free_threaded);
    if (!builtin)
        return unsupported(&v, m, err);
    /* Py_TRACE_REFS (implied by Py_DEBUG up to 3.12) puts two list
     * pointers in front of every object, which no table describes; the
     * function exists only in such builds. */
    if (pyspy_module_api_symbol(m, "_Py_ForgetReference", NULL) &&
        builtin->runtime_debug_offsets < 0)
        return pyspy_error_set(err, PYSPY_E_UNSUPPORTED,
                               "Python %s in %s is a Py_TRACE_REFS (debug) "
                               "build, which is not supported",
                               v.version, m->path);
    pyspy_py_layout l = *builtin;
    if (runtime && l.runtime_debug_offsets >= 0) {
        /* An implausible or foreign _Py_DebugOffsets keeps the built-in
         * table, which validation below still has to accept. */
        pyspy_error e = {0};
        py->debug_offsets =
            pyspy_debug_offsets_apply(
                src, runtime + (uint64_t)l.runtime_debug_offsets, &l, &e) == 0;
    }

    uint64_t head_addr = 0, tstate_current = 0;
    if (l.runtime_interpreters_head >= 0) {
        if (!runtime) {
            head_addr = scan_for_head(src, m, &l, true);
            if (head_addr)
                runtime = head_addr - (uint64_t)l.runtime_interpreters_head;
        } else {
            head_addr = runtime + (uint64_t)l.runtime_interpreters_head;
        }
    } else {
        head_addr = pyspy_module_symbol(m, "interp_head", NULL);
        if (!head_addr)
            head_addr = scan_for_head(src, m, &l, false);
        tstate_current = pyspy_module_symbol(m, "_PyThreadState_Current", NULL);
    }
    uint64_t interp = 0;
    if (!head_addr || read_ptr(src, head_addr, &interp) < 0)
        return pyspy_error_set(err, PYSPY_E_NOPYTHON,
                               "Python %s in %s: no interpreter state found",
                               v.version, m->path);
    if (!interp)
        return pyspy_error_set(err, PYSPY_E_NOPYTHON,
                               "Python %s in %s has no interpreter (not "
                               "initialized yet, or finalized)",
                               v.version, m->path);
    if (interp_score(src, &l, interp) == 0)
        return pyspy_error_set(err, PYSPY_E_NOPYTHON,
                               "Python %s in %s: the interpreter state at "
                               "0x%llx does not validate",
                               v.version, m->path, (unsigned long long)interp);

    py->major = v.major;
    py->minor = v.minor;
    py->micro = v.micro;
    snprintf(py->version, sizeof py->version, "%s", v.version);
    py->layout = l;
    py->runtime_addr = l.runtime_interpreters_head >= 0 ? runtime : 0;
    py->interp_head = interp;
    py->tstate_current_addr = tstate_current;
    py->module = m;
    /* 2.7's Py_UNICODE width shows in the name its API is exported
     * under; the layout's guess stands when neither is there. */
    if (py->layout.py2_unicode_size > 0) {
        if (pyspy_module_api_symbol(m, "PyUnicodeUCS4_FromString", NULL))
            py->layout.py2_unicode_size = 4;
        else if (pyspy_module_api_symbol(m, "PyUnicodeUCS2_FromString", NULL))
            py->layout.py2_unicode_size = 2;
    }
    py->module_path = m->path ? strdup(m->path) : NULL;
    py->version_source = v.source;
    const char *exe =
        src->proc.exe && src->proc.exe[0] ? src->proc.exe : m->path;
    py->executable = strdup(exe);
    if (!py->executable)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    return 0;
}

/* How strongly a module looks like the interpreter: its symbols first,
 * then its name. */
static int module_rank(pyspy_module *m) {
    if (!m->path)
        return 0;
    if (pyspy_module_symbol(m, "_PyRuntime", NULL) ||
        pyspy_module_symbol(m, "interp_head", NULL))
        return 4;
    if (pyspy_module_symbol(m, "Py_Version", NULL) ||
        pyspy_module_symbol(m, "Py_GetVersion", NULL) ||
        pyspy_module_symbol(m, "PyEval_EvalFrameEx", NULL) ||
        pyspy_module_symbol(m, "_PyEval_EvalFrameDefault", NULL))
        return 3;
    pyspy_pyver v;
    if (pyspy_pyver_from_name(m->path, &v) == 0) {
        /* Extension modules (…/lib-dynload/x.cpython-39-….so) do not
         * match; libpython beats the small launcher that links it. */
        const char *base = strrchr(m->path, '/');
        base = base ? base + 1 : m->path;
        return strncmp(base, "libpython", 9) == 0 ? 2 : 1;
    }
    return 0;
}

/* The program itself and anything named like Python's own files: where
 * the interpreter nearly always is. Looking there first leaves the
 * symbol tables of every other library unread (a live source reads them
 * on first use). */
static bool likely_home(const pyspy_memsrc *src, const pyspy_module *m) {
    if (!m->path)
        return false;
    if (src->proc.exe && strcmp(src->proc.exe, m->path) == 0)
        return true;
    const char *base = strrchr(m->path, '/');
    base = base ? base + 1 : m->path;
    return strncmp(base, "python", 6) == 0 ||
           strncmp(base, "libpython", 9) == 0;
}

int pyspy_python_find(pyspy_memsrc *src, pyspy_python *py, pyspy_error *err) {
    memset(py, 0, sizeof *py);
    pyspy_error best = {0};
    for (int pass = 0; pass < 2; pass++) {
        for (int rank = 4; rank >= 1; rank--) {
            for (size_t i = 0; i < src->nmodules; i++) {
                pyspy_module *m = &src->modules[i];
                if (likely_home(src, m) != (pass == 0) ||
                    module_rank(m) != rank)
                    continue;
                pyspy_error e = {0};
                if (try_module(src, m, py, &e) == 0)
                    return 0;
                pyspy_python_free(py);
                memset(py, 0, sizeof *py);
                /* The most specific failure wins: an unsupported version
                 * beats "no interpreter here". */
                if (!best.code || (e.code == PYSPY_E_UNSUPPORTED &&
                                   best.code != PYSPY_E_UNSUPPORTED))
                    best = e;
            }
        }
    }
    if (best.code) {
        if (err)
            *err = best;
        return -1;
    }
    return pyspy_error_set(err, PYSPY_E_NOPYTHON,
                           "no Python interpreter found in %s",
                           src->origin ? src->origin : "the target");
}

void pyspy_python_free(pyspy_python *py) {
    if (!py)
        return;
    free(py->executable);
    py->executable = NULL;
    free(py->module_path);
    py->module_path = NULL;
}
