/* Object-reader internals shared by the files of analyze/objects/: type
 * classification by tp_name and fast-subclass flags (analyze/objects/type.c)
 * and small bounded read helpers. Every per-version fact they use (offsets,
 * entry shapes, flag bits, attribute names) is a field of the generated
 * layout, analyze/cpython/layout.h. */
#ifndef PYSPY_ANALYZE_PY_OBJLAYOUT_H
#define PYSPY_ANALYZE_PY_OBJLAYOUT_H

#include <pyspy.h>
#include "analyze/cpython/python.h"

typedef enum {
    PYSPY_OBJ_OTHER = 0,
    PYSPY_OBJ_NONE,
    PYSPY_OBJ_BOOL,
    PYSPY_OBJ_INT,    /* 3.x int, 2.7 long */
    PYSPY_OBJ_PY2INT, /* 2.7 int */
    PYSPY_OBJ_FLOAT,
    PYSPY_OBJ_STR,   /* 3.x str, 2.7 unicode */
    PYSPY_OBJ_BYTES, /* 3.x bytes, 2.7 str */
    PYSPY_OBJ_LIST,
    PYSPY_OBJ_TUPLE,
    PYSPY_OBJ_DICT,
    PYSPY_OBJ_SET,
    PYSPY_OBJ_FROZENSET,
    PYSPY_OBJ_CELL
} pyspy_obj_kind;

typedef struct pyspy_py_type {
    uint64_t addr;
    uint64_t flags;
    char name[128];
    pyspy_obj_kind kind;
} pyspy_py_type;

/* Reads the type of obj and classifies it: a builtin kind only when the
 * type is a static (non-heap) type with the builtin's tp_name and, where
 * the builtin has one, its fast-subclass flag. */
int pyspy_py_type_of(pyspy_memsrc *src, const pyspy_python *py, uint64_t obj,
                     pyspy_py_type *t, pyspy_error *err);

int pyspy_py_read_u64(pyspy_memsrc *src, uint64_t addr, uint64_t *out,
                      pyspy_error *err);
int pyspy_py_read_i64(pyspy_memsrc *src, uint64_t addr, int64_t *out,
                      pyspy_error *err);

/* Generic dict iteration: calls fn for each live (key, value) pair in
 * table order, at most max pairs; fn returns nonzero to stop. */
typedef int (*pyspy_py_dict_fn)(void *ctx, uint64_t key, uint64_t value);
int pyspy_py_dict_each(pyspy_memsrc *src, const pyspy_python *py, uint64_t dict,
                       size_t max, pyspy_py_dict_fn fn, void *ctx,
                       pyspy_error *err);
/* The same over a keys object directly (3.6+), with a split table's
 * values array (0 = values in the entries); values_cap bounds how many
 * slots the values array has (0 = unknown: nentries). */
int pyspy_py_dictkeys_each(pyspy_memsrc *src, const pyspy_python *py,
                           uint64_t keys, uint64_t values, size_t values_cap,
                           size_t max, pyspy_py_dict_fn fn, void *ctx,
                           pyspy_error *err);
/* Number of items (ma_used). */
int pyspy_py_dict_len(pyspy_memsrc *src, const pyspy_python *py, uint64_t dict,
                      uint64_t *n, pyspy_error *err);

/* The __dict__ of an instance (0 when it has none) or, for a 3.11+
 * instance whose attributes live in a values array, the attribute found
 * by name directly. */
int pyspy_py_object_getattr_str(pyspy_memsrc *src, const pyspy_python *py,
                                uint64_t obj, const char *name, uint64_t *value,
                                pyspy_error *err);

/* Characters of a str (3.x), unicode (2.7) or, decoded as UTF-8, a 2.7
 * str: at most max_chars into *cps (malloc'd); *total is the full
 * length so callers can tell the text was cut. */
int pyspy_py_str_codepoints(pyspy_memsrc *src, const pyspy_python *py,
                            uint64_t addr, size_t max_chars, uint32_t **cps,
                            size_t *n, size_t *total, pyspy_error *err);

/* Compares the str object at addr with a UTF-8 key; 1 equal, 0 not. */
int pyspy_py_str_equals(pyspy_memsrc *src, const pyspy_python *py,
                        uint64_t addr, const char *key);

/* The same for many candidates against one key (dict lookups): rejects
 * on the length read with the type pointer, one read per candidate once
 * the str type's address is known. */
typedef struct pyspy_str_matcher {
    const char *key;
    size_t key_bytes, key_chars;
    uint64_t str_type; /* the target's exact str type, 0 until seen */
} pyspy_str_matcher;
void pyspy_str_matcher_init(pyspy_str_matcher *m, const char *key);
int pyspy_str_matcher_equals(pyspy_memsrc *src, const pyspy_python *py,
                             pyspy_str_matcher *m, uint64_t addr);

/* Integer value of an int/long/bool if it fits in int64. */
int pyspy_py_int_value(pyspy_memsrc *src, const pyspy_python *py, uint64_t addr,
                       int64_t *out, pyspy_error *err);

/* Decimal text of an int/long/bool object as repr() shows it (2.7 long
 * gets its "L"; bool is True/False). malloc'd. */
char *pyspy_py_int_text(pyspy_memsrc *src, const pyspy_python *py,
                        uint64_t addr, pyspy_error *err);

#endif
