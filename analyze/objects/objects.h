/* Reading Python objects out of target memory: strings, ints, containers,
 * dict lookups, Python-style reprs for locals, and thread names.
 * (analyze/objects/strings.c, analyze/objects/dict.c, analyze/objects/repr.c,
 * analyze/walk/thread_names.c) Every function bounds what it reads. */
#ifndef PYSPY_ANALYZE_PY_OBJECTS_H
#define PYSPY_ANALYZE_PY_OBJECTS_H

#include <pyspy.h>
#include "analyze/cpython/python.h"

/* str (or 2.7 str/unicode) as UTF-8, malloc'd, at most max_bytes long. */
char *pyspy_py_str(pyspy_memsrc *src, const pyspy_python *py, uint64_t addr,
                   size_t max_bytes, pyspy_error *err);
/* bytes contents, malloc'd. */
int pyspy_py_bytes(pyspy_memsrc *src, const pyspy_python *py, uint64_t addr,
                   uint8_t **out, size_t *len, size_t max_len,
                   pyspy_error *err);
/* Looks up a str key in a dict; *value = 0 when absent. */
int pyspy_py_dict_get_str(pyspy_memsrc *src, const pyspy_python *py,
                          uint64_t dict, const char *key, uint64_t *value,
                          pyspy_error *err);
/* Python-style repr, malloc'd; verbosity 1 = short, 2+ = longer. */
char *pyspy_py_repr(pyspy_memsrc *src, const pyspy_python *py, uint64_t addr,
                    int verbosity);

/* Items of a list or tuple (at most max; *n is how many were read),
 * malloc'd array of object addresses. (analyze/objects/list.c) */
int pyspy_py_seq_items(pyspy_memsrc *src, const pyspy_python *py, uint64_t obj,
                       uint64_t **items, size_t *n, size_t max,
                       pyspy_error *err);

/* Locals of one frame for the walker: arguments first (is_arg), then
 * locals, then cell and free variables, with reprs at the given
 * verbosity (0 = names and addresses only). code is the frame's code
 * object, localsplus_addr the address of its fast-locals array
 * (f_localsplus / _PyInterpreterFrame.localsplus). Unset (NULL) slots
 * are skipped. (analyze/objects/locals.c) */
int pyspy_py_frame_locals(pyspy_memsrc *src, const pyspy_python *py,
                          uint64_t code, uint64_t localsplus_addr,
                          int verbosity, pyspy_local **out, size_t *n,
                          pyspy_error *err);
void pyspy_py_locals_free(pyspy_local *v, size_t n);

/* Thread names from threading's registry: maps PyThreadState.thread_id
 * (the Python thread ident) to the Thread's name. */
typedef struct pyspy_thread_name {
    uint64_t ident;
    char *name;
} pyspy_thread_name;
int pyspy_py_thread_names(pyspy_memsrc *src, const pyspy_python *py,
                          pyspy_thread_name **out, size_t *n, pyspy_error *err);
void pyspy_py_thread_names_free(pyspy_thread_name *v, size_t n);

#endif
