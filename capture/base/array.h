/* Growable arrays: the one way the tree makes room in a realloc'd array,
 * with every size checked for overflow (a hostile count must fail, not
 * wrap into a small allocation). (capture/base/array.c) */
#ifndef PYSPY_CAPTURE_BASE_ARRAY_H
#define PYSPY_CAPTURE_BASE_ARRAY_H

#include <stddef.h>
#include <string.h>

/* The growth itself, for the two below when there is no room. */
void *pyspy_array_grow_to(void *v, size_t *cap, size_t need, size_t elem,
                          size_t first);

/* Room for at least need elements of elem bytes in v, whose capacity is
 * *cap: returns v itself when it has room, else v reallocated to a
 * capacity doubled from max(*cap, first) until it holds need, and sets
 * *cap to it. NULL when out of memory or the size would overflow; v is
 * then unchanged and still owned by the caller. Inline: the walk and
 * the aggregator ask for room once per frame of every sample, and the
 * answer is nearly always "there is". */
static inline void *pyspy_array_grow(void *v, size_t *cap, size_t need,
                                     size_t elem, size_t first) {
    if (need <= *cap && v)
        return v;
    return pyspy_array_grow_to(v, cap, need, elem, first);
}

/* The same in place, for the usual "room for one more" before an append:
 * pv is the address of the array pointer (a T **), which, with *cap, is
 * updated only on success. 0, or -1 with both unchanged. */
static inline int pyspy_array_reserve(void *pv, size_t *cap, size_t need,
                                      size_t elem, size_t first) {
    /* The pointer is copied, not read through a void **, which would
     * access a T * as another type. */
    void *v;
    memcpy(&v, pv, sizeof v);
    if (need <= *cap && v)
        return 0;
    void *nv = pyspy_array_grow_to(v, cap, need, elem, first);
    if (!nv)
        return -1;
    memcpy(pv, &nv, sizeof nv);
    return 0;
}

#endif
