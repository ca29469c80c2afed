/* The one hash map of the tree: 64-bit keys to 32-bit values, open
 * addressing with linear probing, never more than half full, its growth
 * checked for overflow. A key is either the 64-bit value itself (an
 * address) or, for keys of bytes or several fields, their hash: the
 * caller keeps the keys (usually in the array the values index) and
 * tells equal ones apart with a callback. Zero-initialised is empty.
 * (capture/base/map.c) */
#ifndef PYSPY_CAPTURE_BASE_MAP_H
#define PYSPY_CAPTURE_BASE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pyspy_map_slot {
    uint64_t key;  /* the key, or a hashed key's hash */
    uint32_t used; /* 0: empty */
    uint32_t value;
} pyspy_map_slot;

typedef struct pyspy_map {
    pyspy_map_slot *slots;
    size_t cap; /* a power of two, or 0 */
    size_t n;   /* keys held */
    unsigned shift;
} pyspy_map;

/* Whether the entry the value v names has the key a lookup is for. */
typedef bool (*pyspy_map_eq)(const void *ctx, uint32_t v);

/* The value of key: true when present, with *value set. */
bool pyspy_map_find(const pyspy_map *m, uint64_t key, uint32_t *value);
/* Adds key with *value unless key is present, in which case *value
 * becomes its value; *added says which. -1 when out of memory or the
 * table would overflow (m unchanged). */
int pyspy_map_add(pyspy_map *m, uint64_t key, uint32_t *value, bool *added);

/* The same for a key known by its hash: entries of equal hash are told
 * apart with eq(ctx, value). */
bool pyspy_map_find_hashed(const pyspy_map *m, uint64_t hash, pyspy_map_eq eq,
                           const void *ctx, uint32_t *value);
int pyspy_map_add_hashed(pyspy_map *m, uint64_t hash, pyspy_map_eq eq,
                         const void *ctx, uint32_t *value, bool *added);

/* Room for n keys without growing: for a table built in one pass. -1
 * when out of memory or too large. */
int pyspy_map_reserve(pyspy_map *m, size_t n);
/* Empties m, keeping its table. */
void pyspy_map_clear(pyspy_map *m);
void pyspy_map_free(pyspy_map *m);

/* The hash of n bytes for hashed keys (XXH3 from libxxhash). */
uint64_t pyspy_hash_bytes(const void *p, size_t n);

#endif
