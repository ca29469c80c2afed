/* dict iteration and lookup by str key: 2.7's open table, 3.6-3.10's
 * compact dict (combined or split), 3.11+'s keys with dk_kind
 * (general or unicode entries, split values). Everything is bounded by
 * the table sizes read, which are themselves checked. */
#include "analyze/objects/objects.h"
#include "analyze/objects/object_layout.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* More slots than this is not a dict we want to walk. */
#define DICT_MAX_SLOTS ((uint64_t)1 << 24)
#define CHUNK 256
/* Entries are three pointers at most in every version so far. */
#define MAX_ENTRY_BYTES 32

int pyspy_py_dict_len(pyspy_memsrc *src, const pyspy_python *py, uint64_t dict,
                      uint64_t *n, pyspy_error *err) {
    int64_t used;
    if (pyspy_py_read_i64(src, dict + (uint64_t)py->layout.dict_ma_used, &used,
                          err) < 0)
        return -1;
    if (used < 0 || (uint64_t)used > DICT_MAX_SLOTS)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "dict at 0x%" PRIx64 ": bad size", dict);
    *n = (uint64_t)used;
    return 0;
}

/* Walks n entries of entry_size bytes at table; key/value/hash offsets
 * inside an entry; values (optional) gives value i from an array. */
typedef struct {
    uint64_t table, n;
    size_t entry_size, key_off, value_off;
    uint64_t values; /* 0 = value in the entry */
} entries;

static int walk_entries(pyspy_memsrc *src, const entries *e, size_t max,
                        pyspy_py_dict_fn fn, void *ctx, pyspy_error *err) {
    uint8_t buf[CHUNK * MAX_ENTRY_BYTES];
    uint64_t vals[CHUNK];
    size_t seen = 0;
    if (e->entry_size < 8 || e->entry_size > MAX_ENTRY_BYTES ||
        e->key_off > e->entry_size - 8 || e->value_off > e->entry_size - 8)
        return pyspy_error_set(err, PYSPY_E_UNSUPPORTED,
                               "dict entries of %zu bytes", e->entry_size);
    for (uint64_t i = 0; i < e->n && seen < max;) {
        size_t k = e->n - i < CHUNK ? (size_t)(e->n - i) : CHUNK;
        if (pyspy_memsrc_read(src, e->table + i * e->entry_size, buf,
                              k * e->entry_size, err) < 0)
            return -1;
        if (e->values &&
            pyspy_memsrc_read(src, e->values + i * 8, vals, k * 8, err) < 0)
            return -1;
        for (size_t j = 0; j < k && seen < max; j++) {
            uint64_t key, value;
            memcpy(&key, buf + j * e->entry_size + e->key_off, 8);
            if (e->values)
                value = vals[j];
            else
                memcpy(&value, buf + j * e->entry_size + e->value_off, 8);
            if (!key || !value)
                continue;
            seen++;
            if (fn(ctx, key, value))
                return 0;
        }
        i += k;
    }
    return 0;
}

static size_t index_width(uint64_t size) {
    return size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffff ? 4 : 8;
}

int pyspy_py_dictkeys_each(pyspy_memsrc *src, const pyspy_python *py,
                           uint64_t keys, uint64_t values, size_t values_cap,
                           size_t max, pyspy_py_dict_fn fn, void *ctx,
                           pyspy_error *err) {
    const pyspy_py_layout *l = &py->layout;
    int64_t nentries;
    if (pyspy_py_read_i64(src, keys + (uint64_t)l->dictkeys_nentries, &nentries,
                          err) < 0)
        return -1;
    uint64_t size;
    entries e = {.entry_size = (size_t)l->dictentry_size,
                 .key_off = (size_t)l->dictentry_key,
                 .value_off = (size_t)l->dictentry_value};
    if (l->dict == PYSPY_DICT_PY311) {
        uint8_t log2size, kind;
        if (pyspy_memsrc_read(src, keys + (uint64_t)l->dictkeys_size, &log2size,
                              1, err) < 0 ||
            pyspy_memsrc_read(src, keys + (uint64_t)l->dictkeys_kind, &kind, 1,
                              err) < 0)
            return -1;
        if (log2size > 30 ||
            (kind != l->dictkeys_general && kind != l->dictkeys_unicode &&
             kind != l->dictkeys_split))
            return pyspy_error_set(err, PYSPY_E_FORMAT,
                                   "dict keys at 0x%" PRIx64 ": bad header",
                                   keys);
        size = (uint64_t)1 << log2size;
        if (kind != l->dictkeys_general) /* str keys: entries without hash */
            e = (entries){.entry_size = (size_t)l->dictuentry_size,
                          .key_off = (size_t)l->dictuentry_key,
                          .value_off = (size_t)l->dictuentry_value};
    } else {
        int64_t dk_size;
        if (pyspy_py_read_i64(src, keys + (uint64_t)l->dictkeys_size, &dk_size,
                              err) < 0)
            return -1;
        if (dk_size <= 0 || (uint64_t)dk_size > DICT_MAX_SLOTS ||
            (dk_size & (dk_size - 1)))
            return pyspy_error_set(err, PYSPY_E_FORMAT,
                                   "dict keys at 0x%" PRIx64 ": bad size",
                                   keys);
        size = (uint64_t)dk_size;
    }
    if (size > DICT_MAX_SLOTS || nentries < 0 || (uint64_t)nentries > size)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "dict keys at 0x%" PRIx64 ": bad entry count",
                               keys);
    e.table = keys + (uint64_t)l->dictkeys_indices + size * index_width(size);
    e.n = (uint64_t)nentries;
    if (values) {
        e.values = values + (uint64_t)l->dictvalues_values;
        if (values_cap && values_cap < e.n)
            e.n = values_cap;
    }
    return walk_entries(src, &e, max, fn, ctx, err);
}

int pyspy_py_dict_each(pyspy_memsrc *src, const pyspy_python *py, uint64_t dict,
                       size_t max, pyspy_py_dict_fn fn, void *ctx,
                       pyspy_error *err) {
    const pyspy_py_layout *l = &py->layout;
    uint64_t keys;
    if (pyspy_py_read_u64(src, dict + (uint64_t)l->dict_ma_keys, &keys, err) <
        0)
        return -1;
    if (!keys)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "dict at 0x%" PRIx64 " has no table", dict);
    if (l->dict == PYSPY_DICT_PY2) {
        int64_t mask;
        if (pyspy_py_read_i64(src, dict + (uint64_t)l->dict_py2_ma_mask, &mask,
                              err) < 0)
            return -1;
        if (mask < 0 || (uint64_t)mask >= DICT_MAX_SLOTS || ((mask + 1) & mask))
            return pyspy_error_set(err, PYSPY_E_FORMAT,
                                   "dict at 0x%" PRIx64 ": bad mask", dict);
        /* Deleted entries keep a dummy key with a NULL value, which
         * walk_entries skips. */
        entries e = {.table = keys,
                     .n = (uint64_t)mask + 1,
                     .entry_size = (size_t)l->dictentry_size,
                     .key_off = (size_t)l->dictentry_key,
                     .value_off = (size_t)l->dictentry_value};
        return walk_entries(src, &e, max, fn, ctx, err);
    }
    uint64_t values = 0;
    if (l->dict_ma_values >= 0 &&
        pyspy_py_read_u64(src, dict + (uint64_t)l->dict_ma_values, &values,
                          err) < 0)
        return -1;
    return pyspy_py_dictkeys_each(src, py, keys, values, 0, max, fn, ctx, err);
}

typedef struct {
    pyspy_memsrc *src;
    const pyspy_python *py;
    pyspy_str_matcher m;
    uint64_t value;
} lookup;

static int lookup_fn(void *ctx, uint64_t key, uint64_t value) {
    lookup *lk = ctx;
    if (pyspy_str_matcher_equals(lk->src, lk->py, &lk->m, key)) {
        lk->value = value;
        return 1;
    }
    return 0;
}

int pyspy_py_dict_get_str(pyspy_memsrc *src, const pyspy_python *py,
                          uint64_t dict, const char *key, uint64_t *value,
                          pyspy_error *err) {
    lookup lk = {.src = src, .py = py};
    pyspy_str_matcher_init(&lk.m, key);
    *value = 0;
    if (pyspy_py_dict_each(src, py, dict, (size_t)DICT_MAX_SLOTS, lookup_fn,
                           &lk, err) < 0)
        return -1;
    *value = lk.value;
    return 0;
}
