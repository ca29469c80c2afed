/* pyspy_map (capture/base/map.h). */
#include "capture/base/map.h"

#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define FIRST_CAP 16

/* Fibonacci hashing: the product's top bits, so keys that differ only in
 * their low bits (aligned addresses) or high bits still spread. */
static size_t home(const pyspy_map *m, uint64_t key) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> m->shift);
}

/* The slot of key (eq NULL: the key itself; else a hash, and eq picks),
 * or the empty slot where it would go. m has at least one empty slot. */
static pyspy_map_slot *probe(const pyspy_map *m, uint64_t key, pyspy_map_eq eq,
                             const void *ctx) {
    size_t mask = m->cap - 1;
    for (size_t i = home(m, key);; i = (i + 1) & mask) {
        pyspy_map_slot *s = &m->slots[i];
        if (!s->used || (s->key == key && (!eq || eq(ctx, s->value))))
            return s;
    }
}

static int resize(pyspy_map *m, size_t ncap) {
    if (ncap > SIZE_MAX / sizeof(pyspy_map_slot))
        return -1;
    pyspy_map_slot *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -1;
    unsigned shift = 64;
    for (size_t c = ncap; c > 1; c >>= 1)
        shift--;
    pyspy_map grown = {ns, ncap, m->n, shift};
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].used)
            *probe(&grown, m->slots[i].key, NULL, NULL) = m->slots[i];
    free(m->slots);
    *m = grown;
    return 0;
}

int pyspy_map_reserve(pyspy_map *m, size_t n) {
    if (n > SIZE_MAX / 2)
        return -1;
    size_t ncap = m->cap ? m->cap : FIRST_CAP;
    while (n > ncap / 2) {
        if (ncap > SIZE_MAX / 2)
            return -1;
        ncap *= 2;
    }
    return ncap == m->cap ? 0 : resize(m, ncap);
}

static bool find(const pyspy_map *m, uint64_t key, pyspy_map_eq eq,
                 const void *ctx, uint32_t *value) {
    if (!m->cap)
        return false;
    const pyspy_map_slot *s = probe(m, key, eq, ctx);
    if (!s->used)
        return false;
    *value = s->value;
    return true;
}

static int add(pyspy_map *m, uint64_t key, pyspy_map_eq eq, const void *ctx,
               uint32_t *value, bool *added) {
    /* Room is checked here first: nearly every add has it, and this runs
     * for every symbol of every module and every frame of a sample. */
    if (m->n + 1 > m->cap / 2 &&
        (m->n >= SIZE_MAX / 2 || pyspy_map_reserve(m, m->n + 1) != 0))
        return -1;
    pyspy_map_slot *s = probe(m, key, eq, ctx);
    *added = !s->used;
    if (s->used) {
        *value = s->value;
        return 0;
    }
    *s = (pyspy_map_slot){key, 1, *value};
    m->n++;
    return 0;
}

bool pyspy_map_find(const pyspy_map *m, uint64_t key, uint32_t *value) {
    return find(m, key, NULL, NULL, value);
}

int pyspy_map_add(pyspy_map *m, uint64_t key, uint32_t *value, bool *added) {
    return add(m, key, NULL, NULL, value, added);
}

bool pyspy_map_find_hashed(const pyspy_map *m, uint64_t hash, pyspy_map_eq eq,
                           const void *ctx, uint32_t *value) {
    return find(m, hash, eq, ctx, value);
}

int pyspy_map_add_hashed(pyspy_map *m, uint64_t hash, pyspy_map_eq eq,
                         const void *ctx, uint32_t *value, bool *added) {
    return add(m, hash, eq, ctx, value, added);
}

void pyspy_map_clear(pyspy_map *m) {
    if (m->slots)
        memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->n = 0;
}

void pyspy_map_free(pyspy_map *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

uint64_t pyspy_hash_bytes(const void *p, size_t n) {
    return XXH3_64bits(p, n);
}
