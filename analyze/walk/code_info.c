/* Code objects as the walker needs them (name, filename, first line, line
 * table), each read once per walk (a deep recursion repeats one code
 * object a thousand times) and, in a sampler's cache, re-checked rather
 * than re-read on later walks. */
#include "analyze/objects/objects.h"
#include "analyze/objects/object_layout.h"
#include "analyze/walk/line_table.h"
#include "analyze/walk/internal.h"
#include "capture/base/array.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Names and paths longer than this are cut (py-spy has no limit, but a
 * hostile length must not become a huge allocation). */
#define MAX_NAME_BYTES 4096
#define MAX_LINETABLE_BYTES (4u << 20)
#define MAX_CACHED 65536

static void info_free(pyspy_code_info *c) {
    free(c->name);
    free(c->filename);
    free(c->linetable);
    memset(c, 0, sizeof *c);
}

/* The fields an entry depends on; -1 when unreadable. They sit in the
 * object's first hundred-odd bytes, so one read takes them all: the
 * re-check runs for every frame of every sample. */
#define MAX_SIG_SPAN 512

static int read_sig(pyspy_memsrc *src, const pyspy_python *py, uint64_t addr,
                    pyspy_code_info *s) {
    const pyspy_py_layout *l = &py->layout;
    const int32_t offs[] = {l->ob_type, l->code_name, l->code_filename,
                            l->code_firstlineno, l->code_linetable};
    const size_t widths[] = {8, 8, 8, 4, 8};
    size_t lo = SIZE_MAX, hi = 0;
    for (size_t i = 0; i < 5; i++) {
        if (offs[i] < 0) {
            if (i < 4)
                return -1;
            continue;
        }
        if ((size_t)offs[i] < lo)
            lo = (size_t)offs[i];
        if ((size_t)offs[i] + widths[i] > hi)
            hi = (size_t)offs[i] + widths[i];
    }
    uint8_t buf[MAX_SIG_SPAN];
    if (hi - lo > sizeof buf ||
        pyspy_memsrc_read(src, addr + lo, buf, hi - lo, NULL) < 0)
        return -1;
    memcpy(&s->sig_type, buf + (size_t)l->ob_type - lo, 8);
    memcpy(&s->sig_name, buf + (size_t)l->code_name - lo, 8);
    memcpy(&s->sig_filename, buf + (size_t)l->code_filename - lo, 8);
    memcpy(&s->sig_first, buf + (size_t)l->code_firstlineno - lo, 4);
    s->sig_table = 0;
    if (l->code_linetable >= 0)
        memcpy(&s->sig_table, buf + (size_t)l->code_linetable - lo, 8);
    return 0;
}

static bool sig_same(const pyspy_code_info *a, const pyspy_code_info *b) {
    return a->sig_type == b->sig_type && a->sig_name == b->sig_name &&
           a->sig_filename == b->sig_filename && a->sig_table == b->sig_table &&
           a->sig_first == b->sig_first;
}

static void read_code_fields(pyspy_memsrc *src, const pyspy_python *py,
                             pyspy_code_info *c) {
    pyspy_py_type t;
    if (read_sig(src, py, c->addr, c) < 0 ||
        pyspy_py_type_of(src, py, c->addr, &t, NULL) < 0) {
        c->unreadable = true;
        return;
    }
    if (strcmp(t.name, "code") != 0)
        return;
    uint64_t name = c->sig_name, filename = c->sig_filename,
             table = c->sig_table;
    int32_t first = c->sig_first;
    c->name = pyspy_py_str(src, py, name, MAX_NAME_BYTES, NULL);
    c->filename = pyspy_py_str(src, py, filename, MAX_NAME_BYTES, NULL);
    if (!c->name || !c->filename) {
        free(c->name);
        free(c->filename);
        c->name = c->filename = NULL;
        c->unreadable = true;
        return;
    }
    c->firstlineno = first;
    /* A missing line table only costs the line number. */
    if (table) {
        if (pyspy_py_bytes(src, py, table, &c->linetable, &c->linetable_len,
                           MAX_LINETABLE_BYTES, NULL) < 0) {
            c->linetable = NULL;
            c->linetable_len = 0;
        }
    }
    c->valid = true;
}

static void read_code(pyspy_memsrc *src, const pyspy_python *py,
                      pyspy_code_info *c) {
    uint64_t d0 = src->damaged_reads;
    read_code_fields(src, py, c);
    c->damaged = src->damaged_reads != d0;
}

pyspy_code_info *pyspy_code_get(pyspy_code_cache *cache, pyspy_memsrc *src,
                                const pyspy_python *py, uint64_t addr) {
    if (!addr) {
        memset(&cache->none, 0, sizeof cache->none);
        return &cache->none;
    }
    if (cache->n >= MAX_CACHED) {
        /* Bound memory on a pathological target: start over. */
        pyspy_code_cache_free(cache);
    }
    /* Room for a new entry first, so that adding to the index is the
     * last step that can fail. */
    pyspy_code_info *grown = pyspy_array_grow(cache->entries, &cache->cap,
                                              cache->n + 1, sizeof *grown, 256);
    if (!grown)
        return NULL;
    cache->entries = grown;
    uint32_t i = (uint32_t)cache->n;
    bool added;
    if (pyspy_map_add(&cache->index, addr, &i, &added) != 0)
        return NULL;
    pyspy_code_info *c = &cache->entries[i];
    if (!added) {
        if (c->gen == cache->gen)
            return c;
        pyspy_code_info now;
        uint64_t d0 = src->damaged_reads;
        if (c->valid && read_sig(src, py, addr, &now) == 0 &&
            sig_same(c, &now)) {
            c->damaged |= src->damaged_reads != d0;
            c->gen = cache->gen;
            return c;
        }
        /* Freed and reused, or unreadable before: read afresh. */
        info_free(c);
    } else {
        memset(c, 0, sizeof *c);
        cache->n++;
    }
    c->addr = addr;
    c->gen = cache->gen;
    read_code(src, py, c);
    return c;
}

void pyspy_code_cache_next_walk(pyspy_code_cache *cache) {
    cache->gen++;
}

void pyspy_code_cache_free(pyspy_code_cache *cache) {
    for (size_t i = 0; i < cache->n; i++)
        info_free(&cache->entries[i]);
    free(cache->entries);
    cache->entries = NULL;
    cache->n = cache->cap = 0;
    pyspy_map_free(&cache->index);
    cache->gen++;
}

int pyspy_code_line(const pyspy_python *py, pyspy_code_info *c, int64_t lasti) {
    for (uint8_t i = 0; i < c->memo_n; i++)
        if (c->memo_lasti[i] == lasti)
            return c->memo_line[i];
    int line =
        pyspy_line_for(py->layout.lines, py->layout.lnotab_unsigned_deltas,
                       py->layout.code_unit_size, c->linetable,
                       c->linetable_len, c->firstlineno, lasti);
    uint8_t at = c->memo_next;
    c->memo_next = (uint8_t)((at + 1) % PYSPY_LINE_MEMO);
    if (c->memo_n < PYSPY_LINE_MEMO)
        c->memo_n++;
    c->memo_lasti[at] = lasti;
    c->memo_line[at] = line;
    return line;
}

const char *pyspy_code_short_filename(pyspy_code_info *c,
                                      const pyspy_sys_path *sp) {
    uint64_t gen = sp ? sp->gen : 0;
    if (!gen || c->short_gen != gen) {
        c->short_off =
            (size_t)(pyspy_short_filename(sp, c->filename) - c->filename);
        c->short_gen = gen;
    }
    return c->filename + c->short_off;
}
