/* A table of distinct strings, each known by its index in the order
 * first seen: pprof's string table, the differential flamegraph's
 * labels. Zero-initialised is empty. (capture/base/strtab.c) */
#ifndef PYSPY_CAPTURE_BASE_STRTAB_H
#define PYSPY_CAPTURE_BASE_STRTAB_H

#include "capture/base/map.h"

#include <stddef.h>
#include <stdint.h>

typedef struct pyspy_strtab {
    char **s; /* owned copies, s[id] */
    size_t n, cap;
    pyspy_map index; /* hash of a string -> its id */
} pyspy_strtab;

/* The id of s, added when new. -1 when out of memory or the table holds
 * UINT32_MAX strings already. */
int pyspy_strtab_intern(pyspy_strtab *t, const char *s, uint32_t *id);
void pyspy_strtab_free(pyspy_strtab *t);

#endif
