/* Growable arrays: the one way the tree makes room in a realloc'd array,
 * with every size checked for overflow (a hostile count must fail, not
 * wrap into a small allocation). (capture/base/array.c) */
#ifndef PYSPY_CAPTURE_BASE_ARRAY_H
#define PYSPY_CAPTURE_BASE_ARRAY_H

#include <stddef.h>

/* Room for at least need elements of elem bytes in v, whose capacity is
 * *cap: returns v itself when it has room, else v reallocated to a
 * capacity doubled from max(*cap, first) until it holds need, and sets
 * *cap to it. NULL when out of memory or the size would overflow; v is
 * then unchanged and still owned by the caller. */
void *pyspy_array_grow(void *v, size_t *cap, size_t need, size_t elem,
                       size_t first);

#endif
