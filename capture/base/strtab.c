/* pyspy_strtab (capture/base/strtab.h). */
#include "capture/base/strtab.h"
#include "capture/base/array.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct key {
    const pyspy_strtab *t;
    const char *s;
} key;

static bool is(const void *ctx, uint32_t id) {
    const key *k = ctx;
    return strcmp(k->t->s[id], k->s) == 0;
}

int pyspy_strtab_intern(pyspy_strtab *t, const char *s, uint32_t *id) {
    key k = {t, s};
    uint64_t h = pyspy_hash_bytes(s, strlen(s));
    if (pyspy_map_find_hashed(&t->index, h, is, &k, id))
        return 0;
    if (t->n >= UINT32_MAX ||
        pyspy_array_reserve(&t->s, &t->cap, t->n + 1, sizeof *t->s, 256))
        return -1;
    char *copy = strdup(s);
    if (!copy)
        return -1;
    uint32_t v = (uint32_t)t->n;
    bool added;
    t->s[t->n] = copy;
    if (pyspy_map_add_hashed(&t->index, h, is, &k, &v, &added)) {
        free(copy);
        return -1;
    }
    t->n++;
    *id = v;
    return 0;
}

void pyspy_strtab_free(pyspy_strtab *t) {
    for (size_t i = 0; i < t->n; i++)
        free(t->s[i]);
    free(t->s);
    pyspy_map_free(&t->index);
    memset(t, 0, sizeof *t);
}
