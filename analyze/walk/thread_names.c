/* Thread names from the threading module: sys.modules["threading"],
 * its _active {ident: Thread} (and _limbo for threads still starting),
 * and each Thread's _name. Missing pieces (threading never imported, an
 * unreadable Thread) just leave threads unnamed. */
#include "capture/base/array.h"
#include "analyze/objects/objects.h"
#include "analyze/objects/object_layout.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 4096
#define THREAD_NAME_MAX 256

typedef struct {
    pyspy_memsrc *src;
    const pyspy_python *py;
    pyspy_thread_name *v;
    size_t n, cap;
    bool from_limbo;
    bool oom;
} names;

static bool have(const names *ns, uint64_t ident) {
    for (size_t i = 0; i < ns->n; i++)
        if (ns->v[i].ident == ident)
            return true;
    return false;
}

static int add_thread(void *ctx, uint64_t key, uint64_t thread) {
    names *ns = ctx;
    int64_t ident;
    if (ns->from_limbo) {
        uint64_t id_obj;
        if (pyspy_py_object_getattr_str(ns->src, ns->py, thread,
                                        ns->py->layout.thread_ident_attr,
                                        &id_obj, NULL) < 0 ||
            !id_obj ||
            pyspy_py_int_value(ns->src, ns->py, id_obj, &ident, NULL) < 0)
            return 0;
    } else if (pyspy_py_int_value(ns->src, ns->py, key, &ident, NULL) < 0) {
        return 0;
    }
    if (have(ns, (uint64_t)ident))
        return 0;
    uint64_t name_obj;
    if (pyspy_py_object_getattr_str(ns->src, ns->py, thread,
                                    ns->py->layout.thread_name_attr, &name_obj,
                                    NULL) < 0 ||
        !name_obj)
        return 0;
    char *name = pyspy_py_str(ns->src, ns->py, name_obj, THREAD_NAME_MAX, NULL);
    if (!name)
        return 0;
    if (pyspy_array_reserve(&ns->v, &ns->cap, ns->n + 1, sizeof *ns->v, 16) !=
        0) {
        free(name);
        ns->oom = true;
        return 1;
    }
    ns->v[ns->n].ident = (uint64_t)ident;
    ns->v[ns->n].name = name;
    ns->n++;
    return ns->n >= MAX_THREADS;
}

int pyspy_py_thread_names(pyspy_memsrc *src, const pyspy_python *py,
                          pyspy_thread_name **out, size_t *n,
                          pyspy_error *err) {
    *out = NULL;
    *n = 0;
    if (!py->layout.thread_name_attr || !py->layout.thread_ident_attr)
        return pyspy_error_set(err, PYSPY_E_UNSUPPORTED,
                               "threading's attribute names unknown");
    if (!py->interp_head || py->layout.interp_modules < 0)
        return pyspy_error_set(err, PYSPY_E_UNSUPPORTED,
                               "no interpreter to find sys.modules in");
    uint64_t modules, threading = 0, md_dict = 0;
    if (pyspy_py_read_u64(src,
                          py->interp_head + (uint64_t)py->layout.interp_modules,
                          &modules, err) < 0)
        return pyspy_error_prefix(err, "sys.modules");
    if (!modules)
        return 0;
    if (pyspy_py_dict_get_str(src, py, modules, "threading", &threading, err) <
        0)
        return pyspy_error_prefix(err, "sys.modules");
    if (!threading)
        return 0; /* never imported: no names, not an error */
    if (pyspy_py_read_u64(src, threading + (uint64_t)py->layout.module_md_dict,
                          &md_dict, err) < 0)
        return pyspy_error_prefix(err, "threading module");
    names ns = {.src = src, .py = py};
    const char *regs[] = {"_active", "_limbo"};
    for (int i = 0; i < 2 && md_dict; i++) {
        uint64_t reg;
        if (pyspy_py_dict_get_str(src, py, md_dict, regs[i], &reg, NULL) < 0 ||
            !reg)
            continue;
        ns.from_limbo = i == 1;
        pyspy_py_dict_each(src, py, reg, MAX_THREADS, add_thread, &ns, NULL);
    }
    if (ns.oom) {
        pyspy_py_thread_names_free(ns.v, ns.n);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    *out = ns.v;
    *n = ns.n;
    return 0;
}

void pyspy_py_thread_names_free(pyspy_thread_name *v, size_t n) {
    for (size_t i = 0; v && i < n; i++)
        free(v[i].name);
    free(v);
}
