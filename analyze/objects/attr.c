/* Instance attributes by name, through the instance's __dict__ or, on
 * 3.11+, the values array that stands in for it until a dict is made.
 * Where the dict lives is in the layout (pyspy_idict_kind). */
#include "analyze/objects/objects.h"
#include "analyze/objects/object_layout.h"

#include <inttypes.h>

typedef struct {
    pyspy_memsrc *src;
    const pyspy_python *py;
    const char *name;
    uint64_t value;
} find;

static int find_fn(void *ctx, uint64_t key, uint64_t value) {
    find *f = ctx;
    if (pyspy_py_str_equals(f->src, f->py, key, f->name)) {
        f->value = value;
        return 1;
    }
    return 0;
}

/* Attributes kept in a values array are named by the type's shared
 * keys (ht_cached_keys). */
static int from_values(pyspy_memsrc *src, const pyspy_python *py, uint64_t type,
                       uint64_t values, size_t cap, const char *name,
                       uint64_t *value, pyspy_error *err) {
    const pyspy_py_layout *l = &py->layout;
    if (l->heaptype_cached_keys < 0 || l->dictkeys_kind < 0)
        return pyspy_error_set(err, PYSPY_E_UNSUPPORTED,
                               "shared keys offset unknown for %d.%d",
                               py->major, py->minor);
    uint64_t keys;
    if (pyspy_py_read_u64(src, type + (uint64_t)l->heaptype_cached_keys, &keys,
                          err) < 0)
        return -1;
    if (!keys)
        return 0;
    /* Only split keys go with a values array: anything else means the
     * offset or the type is not what we think. */
    uint8_t kind;
    if (pyspy_memsrc_read(src, keys + (uint64_t)l->dictkeys_kind, &kind, 1,
                          err) < 0)
        return -1;
    if (kind != l->dictkeys_split)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "type at 0x%" PRIx64 ": cached keys not split",
                               type);
    find f = {src, py, name, 0};
    if (pyspy_py_dictkeys_each(src, py, keys, values, cap, 1u << 16, find_fn,
                               &f, err) < 0)
        return -1;
    *value = f.value;
    return 0;
}

static int from_dict(pyspy_memsrc *src, const pyspy_python *py, uint64_t dict,
                     const char *name, uint64_t *value, pyspy_error *err) {
    if (!dict)
        return 0;
    return pyspy_py_dict_get_str(src, py, dict, name, value, err);
}

int pyspy_py_object_getattr_str(pyspy_memsrc *src, const pyspy_python *py,
                                uint64_t obj, const char *name, uint64_t *value,
                                pyspy_error *err) {
    *value = 0;
    const pyspy_py_layout *l = &py->layout;
    pyspy_py_type t;
    if (pyspy_py_type_of(src, py, obj, &t, err) < 0)
        return -1;
    bool managed = l->idict != PYSPY_IDICT_DICTOFFSET &&
                   (t.flags & l->tpflags_managed_dict);
    if (!managed) {
        int64_t off;
        if (pyspy_py_read_i64(src, t.addr + (uint64_t)l->type_tp_dictoffset,
                              &off, err) < 0)
            return -1;
        /* Negative offsets (from the end of a var-sized object) are not
         * followed: no object we look up attributes of uses them. */
        if (off <= 0 || off > (1 << 20))
            return 0;
        uint64_t dict;
        if (pyspy_py_read_u64(src, obj + (uint64_t)off, &dict, err) < 0)
            return -1;
        return from_dict(src, py, dict, name, value, err);
    }
    uint64_t slot;
    if (pyspy_py_read_u64(src, obj + (uint64_t)(int64_t)l->managed_dict_off,
                          &slot, err) < 0)
        return -1;
    switch (l->idict) {
    case PYSPY_IDICT_MANAGED311: {
        if (slot)
            return from_dict(src, py, slot, name, value, err);
        uint64_t values;
        if (pyspy_py_read_u64(src,
                              obj + (uint64_t)(int64_t)l->managed_values_off,
                              &values, err) < 0)
            return -1;
        return values
                   ? from_values(src, py, t.addr, values, 0, name, value, err)
                   : 0;
    }
    case PYSPY_IDICT_MANAGED312:
        /* An odd pointer is the values array minus one. */
        if (slot & 1)
            return from_values(src, py, t.addr, slot + 1, 0, name, value, err);
        return from_dict(src, py, slot, name, value, err);
    case PYSPY_IDICT_MANAGED313: {
        if (slot)
            return from_dict(src, py, slot, name, value, err);
        if (!(t.flags & l->tpflags_inline_values))
            return 0;
        int64_t basicsize;
        if (pyspy_py_read_i64(src, t.addr + (uint64_t)l->type_tp_basicsize,
                              &basicsize, err) < 0)
            return -1;
        if (basicsize <= 0 || basicsize > (1 << 20))
            return pyspy_error_set(err, PYSPY_E_FORMAT,
                                   "type at 0x%" PRIx64 ": bad tp_basicsize",
                                   t.addr);
        uint64_t values = obj + (uint64_t)basicsize;
        /* One read for the header's capacity and valid bytes. */
        int32_t cap_at = l->dictvalues_capacity, valid_at = l->dictvalues_valid;
        uint8_t hdr[16];
        if (cap_at < 0 || valid_at < 0 || cap_at >= (int32_t)sizeof hdr ||
            valid_at >= (int32_t)sizeof hdr)
            return pyspy_error_set(err, PYSPY_E_UNSUPPORTED,
                                   "inline values unknown for %d.%d", py->major,
                                   py->minor);
        size_t span = (size_t)(cap_at > valid_at ? cap_at : valid_at) + 1;
        if (pyspy_memsrc_read(src, values, hdr, span, err) < 0)
            return -1;
        if (!hdr[valid_at])
            return 0;
        return from_values(src, py, t.addr, values, hdr[cap_at], name, value,
                           err);
    }
    default:
        return 0;
    }
}
