/* Code objects as the walker needs them (name, filename, first line, line
 * table), each read once per walk: a deep recursion repeats one code
 * object a thousand times. */
#include "analyze/py_objects.h"
#include "analyze/py_objlayout.h"
#include "analyze/walk_internal.h"

#include <stdlib.h>
#include <string.h>

/* Names and paths longer than this are cut (py-spy has no limit, but a
 * hostile length must not become a huge allocation). */
#define MAX_NAME_BYTES 4096
#define MAX_LINETABLE_BYTES (4u << 20)
#define MAX_CACHED 65536

static size_t slot_of(uint64_t addr, size_t cap) {
    uint64_t h = addr * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (cap - 1);
}

static void info_free(pyspy_code_info *c) {
    free(c->name);
    free(c->filename);
    free(c->linetable);
    memset(c, 0, sizeof *c);
}

static int grow(pyspy_code_cache *cache) {
    size_t ncap = cache->cap ? cache->cap * 2 : 256;
    pyspy_code_info *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i < cache->cap; i++) {
        pyspy_code_info *c = &cache->slots[i];
        if (!c->addr)
            continue;
        size_t j = slot_of(c->addr, ncap);
        while (ns[j].addr)
            j = (j + 1) & (ncap - 1);
        ns[j] = *c;
    }
    free(cache->slots);
    cache->slots = ns;
    cache->cap = ncap;
    return 0;
}

static void read_code(pyspy_memsrc *src, const pyspy_python *py,
                      pyspy_code_info *c) {
    const pyspy_py_layout *l = &py->layout;
    pyspy_py_type t;
    if (pyspy_py_type_of(src, py, c->addr, &t, NULL) < 0 ||
        strcmp(t.name, "code") != 0)
        return;
    uint64_t name = 0, filename = 0, table = 0;
    int32_t first = 0;
    if (pyspy_py_read_u64(src, c->addr + (uint64_t)l->code_name, &name, NULL) <
            0 ||
        pyspy_py_read_u64(src, c->addr + (uint64_t)l->code_filename, &filename,
                          NULL) < 0 ||
        pyspy_memsrc_read(src, c->addr + (uint64_t)l->code_firstlineno, &first,
                          sizeof first, NULL) < 0)
        return;
    c->name = pyspy_py_str(src, py, name, MAX_NAME_BYTES, NULL);
    c->filename = pyspy_py_str(src, py, filename, MAX_NAME_BYTES, NULL);
    if (!c->name || !c->filename) {
        free(c->name);
        free(c->filename);
        c->name = c->filename = NULL;
        return;
    }
    c->firstlineno = first;
    /* A missing line table only costs the line number. */
    if (l->code_linetable >= 0 &&
        pyspy_py_read_u64(src, c->addr + (uint64_t)l->code_linetable, &table,
                          NULL) == 0 &&
        table) {
        if (pyspy_py_bytes(src, py, table, &c->linetable, &c->linetable_len,
                           MAX_LINETABLE_BYTES, NULL) < 0) {
            c->linetable = NULL;
            c->linetable_len = 0;
        }
    }
    c->valid = true;
}

const pyspy_code_info *pyspy_code_get(pyspy_code_cache *cache,
                                      pyspy_memsrc *src, const pyspy_python *py,
                                      uint64_t addr) {
    static const pyspy_code_info invalid = {0};
    if (!addr)
        return &invalid;
    if (cache->used * 2 >= cache->cap) {
        if (cache->used >= MAX_CACHED) {
            /* Bound memory on a pathological target: start over. */
            pyspy_code_cache_free(cache);
        }
        if (grow(cache) < 0)
            return NULL;
    }
    size_t i = slot_of(addr, cache->cap);
    while (cache->slots[i].addr) {
        if (cache->slots[i].addr == addr)
            return &cache->slots[i];
        i = (i + 1) & (cache->cap - 1);
    }
    pyspy_code_info *c = &cache->slots[i];
    c->addr = addr;
    read_code(src, py, c);
    cache->used++;
    return c;
}

void pyspy_code_cache_free(pyspy_code_cache *cache) {
    for (size_t i = 0; i < cache->cap; i++)
        if (cache->slots[i].addr)
            info_free(&cache->slots[i]);
    free(cache->slots);
    cache->slots = NULL;
    cache->cap = cache->used = 0;
}
