/* What type an object is: its type's tp_name and flags, classified as a
 * builtin only for static types with the builtin's name and, where it has
 * one, its fast-subclass flag; plus the bounded read helpers. The flag bits
 * and which builtins exist come from the layout. */
#include "analyze/objects/format.h"
#include "analyze/objects/object_layout.h"

#include <inttypes.h>
#include <stddef.h>
#include <string.h>

int pyspy_py_read_u64(pyspy_memsrc *src, uint64_t addr, uint64_t *out,
                      pyspy_error *err) {
    return pyspy_memsrc_read(src, addr, out, sizeof *out, err);
}

int pyspy_py_read_i64(pyspy_memsrc *src, uint64_t addr, int64_t *out,
                      pyspy_error *err) {
    return pyspy_memsrc_read(src, addr, out, sizeof *out, err);
}

/* A builtin type by name; flag is where its fast-subclass bit sits in the
 * layout (0: it has none; offset 0 is the major version, never a flag). */
#define FLAG(f) offsetof(pyspy_py_layout, f)
typedef struct {
    const char *name;
    pyspy_obj_kind kind;
    size_t flag;
    int builtins; /* a pyspy_builtins_kind it exists in, -1 = every one */
} builtin;

static const builtin builtins[] = {
    {"NoneType", PYSPY_OBJ_NONE, 0, -1},
    {"bool", PYSPY_OBJ_BOOL, FLAG(tpflags_long_subclass), PYSPY_BUILTINS_PY3},
    {"bool", PYSPY_OBJ_BOOL, FLAG(tpflags_int_subclass), PYSPY_BUILTINS_PY2},
    {"int", PYSPY_OBJ_INT, FLAG(tpflags_long_subclass), PYSPY_BUILTINS_PY3},
    {"int", PYSPY_OBJ_PY2INT, FLAG(tpflags_int_subclass), PYSPY_BUILTINS_PY2},
    {"long", PYSPY_OBJ_INT, FLAG(tpflags_long_subclass), PYSPY_BUILTINS_PY2},
    {"float", PYSPY_OBJ_FLOAT, 0, -1},
    {"str", PYSPY_OBJ_STR, FLAG(tpflags_unicode_subclass), PYSPY_BUILTINS_PY3},
    {"str", PYSPY_OBJ_BYTES, FLAG(tpflags_bytes_subclass), PYSPY_BUILTINS_PY2},
    {"unicode", PYSPY_OBJ_STR, FLAG(tpflags_unicode_subclass),
     PYSPY_BUILTINS_PY2},
    {"bytes", PYSPY_OBJ_BYTES, FLAG(tpflags_bytes_subclass),
     PYSPY_BUILTINS_PY3},
    {"list", PYSPY_OBJ_LIST, FLAG(tpflags_list_subclass), -1},
    {"tuple", PYSPY_OBJ_TUPLE, FLAG(tpflags_tuple_subclass), -1},
    {"dict", PYSPY_OBJ_DICT, FLAG(tpflags_dict_subclass), -1},
    {"set", PYSPY_OBJ_SET, 0, -1},
    {"frozenset", PYSPY_OBJ_FROZENSET, 0, -1},
    {"cell", PYSPY_OBJ_CELL, 0, -1},
};

static uint64_t flag_of(const pyspy_py_layout *l, size_t off) {
    uint64_t f;
    memcpy(&f, (const char *)l + off, sizeof f);
    return f;
}

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
    if (t->flags & l->tpflags_heaptype)
        return 0;
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
        const builtin *b = &builtins[i];
        if ((b->builtins >= 0 && b->builtins != (int)l->builtins) ||
            strcmp(b->name, t->name) != 0)
            continue;
        uint64_t flag = b->flag ? flag_of(l, b->flag) : 0;
        if (flag && !(t->flags & flag))
            continue;
        t->kind = b->kind;
        break;
    }
    return 0;
}
