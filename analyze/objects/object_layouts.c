/* Object facts per CPython version that analyze/cpython/layout.h does not
 * carry: cells, modules, instance dicts (managed dicts and inline
 * values), set entries and int digits. Values for 64-bit default
 * (non-debug, GIL) builds, checked with offsetof against each version's
 * installed headers (Include/cpython/object.h, internal/pycore_object.h,
 * internal/pycore_dict.h). */
#include "analyze/objects/format.h"
#include "analyze/objects/object_layout.h"

#include <inttypes.h>
#include <string.h>

#define W 8 /* sizeof(PyObject *) */

/* Fields every version shares. */
#define COMMON                                                                 \
    .cell_ob_ref = 16, .module_md_dict = 16, .type_tp_basicsize = 32,          \
    .long_digit_bits = 30

#define PY3_THREAD .thread_name_attr = "_name", .thread_ident_attr = "_ident"

/* <= 3.10: instance dicts through tp_dictoffset, split values plain. */
#define PY3_OLD(mi)                                                            \
    {                                                                          \
        .major = 3, .minor = mi, COMMON, .heaptype_cached_keys = -1,           \
        .dictvalues_values = 0, .set_entry_key = 0, .set_entry_size = 16,      \
        .idict = PYSPY_IDICT_DICTOFFSET, PY3_THREAD                            \
    }

/* 3.13+: PyDictValues starts with capacity/size/embedded/valid bytes;
 * values live inline after the object. */
#define PY3_INLINE(mi, cached_keys)                                            \
    {                                                                          \
        .major = 3, .minor = mi, COMMON, .heaptype_cached_keys = cached_keys,  \
        .dictvalues_values = 8, .set_entry_key = 0, .set_entry_size = 16,      \
        .idict = PYSPY_IDICT_MANAGED313, .managed_dict_off = -3 * W,           \
        .tpflags_managed_dict = 1UL << 4, .tpflags_inline_values = 1UL << 2,   \
        .long_tag_ndigits_shift = 3, PY3_THREAD                                \
    }

static const pyspy_py_objlayout tables[] = {
    /* 2.7: setentry is {long hash; PyObject *key}; Thread's private
     * attributes are name-mangled. */
    {.major = 2,
     .minor = 7,
     COMMON,
     .heaptype_cached_keys = -1,
     .dictvalues_values = 0,
     .set_entry_key = 8,
     .set_entry_size = 16,
     .idict = PYSPY_IDICT_DICTOFFSET,
     .py2 = true,
     .thread_name_attr = "_Thread__name",
     .thread_ident_attr = "_Thread__ident"},
    PY3_OLD(6),
    PY3_OLD(7),
    PY3_OLD(8),
    PY3_OLD(9),
    PY3_OLD(10),
    {.major = 3,
     .minor = 11,
     COMMON,
     .heaptype_cached_keys = 872,
     .dictvalues_values = 0,
     .set_entry_key = 0,
     .set_entry_size = 16,
     .idict = PYSPY_IDICT_MANAGED311,
     .managed_dict_off = -3 * W,
     .managed_values_off = -4 * W,
     .tpflags_managed_dict = 1UL << 4,
     PY3_THREAD},
    {.major = 3,
     .minor = 12,
     COMMON,
     .heaptype_cached_keys = 880,
     .dictvalues_values = 0,
     .set_entry_key = 0,
     .set_entry_size = 16,
     .idict = PYSPY_IDICT_MANAGED312,
     .managed_dict_off = -3 * W,
     .tpflags_managed_dict = 1UL << 4,
     .long_tag_ndigits_shift = 3,
     PY3_THREAD},
    PY3_INLINE(13, 880),
    /* 3.14 and 3.15 measured against sid's headers (3.15's
     * PyTypeObject gained a pointer). */
    PY3_INLINE(14, 880),
    PY3_INLINE(15, 888),
};

/* Free-threaded (Py_GIL_DISABLED) builds: a 32-byte object header and
 * the managed dict pointer just before the object. Measured against a
 * 3.13t build's headers. */
#define PY3_FT(mi, cached_keys)                                                \
    {                                                                          \
        .major = 3, .minor = mi, .cell_ob_ref = 32, .module_md_dict = 32,      \
        .type_tp_basicsize = 48, .long_digit_bits = 30,                        \
        .heaptype_cached_keys = cached_keys, .dictvalues_values = 8,           \
        .set_entry_key = 0, .set_entry_size = 16,                              \
        .idict = PYSPY_IDICT_MANAGED313, .managed_dict_off = -1 * W,           \
        .tpflags_managed_dict = 1UL << 4, .tpflags_inline_values = 1UL << 2,   \
        .long_tag_ndigits_shift = 3, PY3_THREAD                                \
    }

static const pyspy_py_objlayout tables_ft[] = {
    PY3_FT(13, 896),
    /* 3.14t/3.15t: no headers at hand; the object header is the only
     * difference before ht_cached_keys, as measured on 3.13 (+16). */
    PY3_FT(14, 896),
    PY3_FT(15, 904),
};

const pyspy_py_objlayout *pyspy_py_objlayout_get(const pyspy_python *py) {
    if (!py)
        return NULL;
    const pyspy_py_objlayout *t = tables;
    size_t n = sizeof tables / sizeof tables[0];
    if (py->layout.free_threaded) {
        t = tables_ft;
        n = sizeof tables_ft / sizeof tables_ft[0];
    }
    for (size_t i = 0; i < n; i++)
        if (t[i].major == py->major && t[i].minor == py->minor)
            return &t[i];
    return NULL;
}

int pyspy_py_read_u64(pyspy_memsrc *src, uint64_t addr, uint64_t *out,
                      pyspy_error *err) {
    return pyspy_memsrc_read(src, addr, out, sizeof *out, err);
}

int pyspy_py_read_i64(pyspy_memsrc *src, uint64_t addr, int64_t *out,
                      pyspy_error *err) {
    return pyspy_memsrc_read(src, addr, out, sizeof *out, err);
}

typedef struct {
    const char *name;
    pyspy_obj_kind kind;
    uint64_t flag; /* required fast-subclass flag, 0 = none */
    int py;        /* 2 or 3 = only for that major, 0 = both */
} builtin;

static const builtin builtins[] = {
    {"NoneType", PYSPY_OBJ_NONE, 0, 0},
    {"bool", PYSPY_OBJ_BOOL, PYSPY_TPFLAGS_LONG_SUBCLASS, 3},
    {"bool", PYSPY_OBJ_BOOL, PYSPY_TPFLAGS_INT_SUBCLASS, 2},
    {"int", PYSPY_OBJ_INT, PYSPY_TPFLAGS_LONG_SUBCLASS, 3},
    {"int", PYSPY_OBJ_PY2INT, PYSPY_TPFLAGS_INT_SUBCLASS, 2},
    {"long", PYSPY_OBJ_INT, PYSPY_TPFLAGS_LONG_SUBCLASS, 2},
    {"float", PYSPY_OBJ_FLOAT, 0, 0},
    {"str", PYSPY_OBJ_STR, PYSPY_TPFLAGS_UNICODE_SUBCLASS, 3},
    {"str", PYSPY_OBJ_BYTES, PYSPY_TPFLAGS_BYTES_SUBCLASS, 2},
    {"unicode", PYSPY_OBJ_STR, PYSPY_TPFLAGS_UNICODE_SUBCLASS, 2},
    {"bytes", PYSPY_OBJ_BYTES, PYSPY_TPFLAGS_BYTES_SUBCLASS, 3},
    {"list", PYSPY_OBJ_LIST, PYSPY_TPFLAGS_LIST_SUBCLASS, 0},
    {"tuple", PYSPY_OBJ_TUPLE, PYSPY_TPFLAGS_TUPLE_SUBCLASS, 0},
    {"dict", PYSPY_OBJ_DICT, PYSPY_TPFLAGS_DICT_SUBCLASS, 0},
    {"set", PYSPY_OBJ_SET, 0, 0},
    {"frozenset", PYSPY_OBJ_FROZENSET, 0, 0},
    {"cell", PYSPY_OBJ_CELL, 0, 0},
};

/* tp_name ends up in text and JSON: keep it printable UTF-8. */
static void sanitize_name(char *s) {
    size_t n = strlen(s);
    uint32_t cps[128];
    size_t k = pyspy_utf8_decode((const uint8_t *)s, n, cps, 128);
    bool valid = true;
    for (size_t i = 0; i < k; i++)
        valid &= cps[i] != 0xfffd;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c < 0x20 || c == 0x7f || (c >= 0x80 && !valid))
            s[i] = '?';
    }
}

int pyspy_py_type_of(pyspy_memsrc *src, const pyspy_python *py, uint64_t obj,
                     pyspy_py_type *t, pyspy_error *err) {
    const pyspy_py_layout *l = &py->layout;
    memset(t, 0, sizeof *t);
    if (!obj)
        return pyspy_error_set(err, PYSPY_E_UNREADABLE, "NULL object");
    if (pyspy_py_read_u64(src, obj + (uint64_t)l->ob_type, &t->addr, err) < 0)
        return -1;
    if (!t->addr)
        return pyspy_error_set(err, PYSPY_E_UNREADABLE,
                               "object at 0x%" PRIx64 " has no type", obj);
    uint64_t name_ptr;
    if (pyspy_py_read_u64(src, t->addr + (uint64_t)l->type_tp_name, &name_ptr,
                          err) < 0 ||
        pyspy_py_read_u64(src, t->addr + (uint64_t)l->type_tp_flags, &t->flags,
                          err) < 0 ||
        pyspy_memsrc_read_cstr(src, name_ptr, t->name, sizeof t->name, err) < 0)
        return -1;
    sanitize_name(t->name);
    if (t->flags & PYSPY_TPFLAGS_HEAPTYPE)
        return 0;
    int major = py->major == 2 ? 2 : 3;
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
        const builtin *b = &builtins[i];
        if ((b->py && b->py != major) || strcmp(b->name, t->name) != 0)
            continue;
        if (b->flag && !(t->flags & b->flag))
            continue;
        t->kind = b->kind;
        break;
    }
    return 0;
}

const pyspy_py_objlayout *pyspy_py_objlayout_need(const pyspy_python *py,
                                                  pyspy_error *err) {
    const pyspy_py_objlayout *ol = pyspy_py_objlayout_get(py);
    if (!ol)
        pyspy_error_set(err, PYSPY_E_UNSUPPORTED,
                        "no object layout for Python %d.%d", py ? py->major : 0,
                        py ? py->minor : 0);
    return ol;
}
