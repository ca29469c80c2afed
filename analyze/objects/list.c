/* list and tuple items. */
#include "analyze/objects/objects.h"
#include "analyze/objects/object_layout.h"

#include <inttypes.h>
#include <stdlib.h>

#define SEQ_MAX_ITEMS ((int64_t)1 << 28)

int pyspy_py_seq_items(pyspy_memsrc *src, const pyspy_python *py, uint64_t obj,
                       uint64_t **items, size_t *n, size_t max,
                       pyspy_error *err) {
    *items = NULL;
    *n = 0;
    const pyspy_py_layout *l = &py->layout;
    pyspy_py_type t;
    if (pyspy_py_type_of(src, py, obj, &t, err) < 0)
        return -1;
    if (t.kind != PYSPY_OBJ_LIST && t.kind != PYSPY_OBJ_TUPLE)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "object at 0x%" PRIx64
                               " is a %s, not a list or tuple",
                               obj, t.name);
    int64_t size;
    if (pyspy_py_read_i64(src, obj + (uint64_t)l->var_ob_size, &size, err) < 0)
        return -1;
    if (size < 0 || size > SEQ_MAX_ITEMS)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s at 0x%" PRIx64 ": bad size %" PRId64, t.name,
                               obj, size);
    uint64_t base;
    if (t.kind == PYSPY_OBJ_TUPLE) {
        base = obj + (uint64_t)l->tuple_item; /* items inline */
    } else if (pyspy_py_read_u64(src, obj + (uint64_t)l->list_item, &base,
                                 err) < 0) {
        return -1;
    }
    size_t count = (size_t)size < max ? (size_t)size : max;
    *items = malloc((count ? count : 1) * sizeof **items);
    if (!*items)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    if (count && pyspy_memsrc_read(src, base, *items, count * 8, err) < 0) {
        free(*items);
        *items = NULL;
        return -1;
    }
    *n = count;
    return 0;
}
