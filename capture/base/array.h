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

/* The same in place, for the usual "room for one more" before an append:
 * pv is the address of the array pointer (a T **), which, with *cap, is
 * updated only on success. 0, or -1 with both unchanged. */
int pyspy_array_reserve(void *pv, size_t *cap, size_t need, size_t elem,
                        size_t first);

#endif
