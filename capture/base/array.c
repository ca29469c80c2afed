/* pyspy_array_grow and pyspy_array_reserve (capture/base/array.h). */
#include "capture/base/array.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *pyspy_array_grow(void *v, size_t *cap, size_t need, size_t elem,
                       size_t first) {
    if (need <= *cap && v)
        return v;
    if (elem == 0)
        return NULL;
    size_t nc = *cap > first ? *cap : (first ? first : 1);
    while (nc < need) {
        if (nc > SIZE_MAX / 2)
            return NULL;
        nc *= 2;
    }
    if (nc > SIZE_MAX / elem)
        return NULL;
    void *nv = realloc(v, nc * elem);
    if (!nv)
        return NULL;
    *cap = nc;
    return nv;
}

int pyspy_array_reserve(void *pv, size_t *cap, size_t need, size_t elem,
                        size_t first) {
    /* The pointer is copied, not read through a void **, which would
     * access a T * as another type. */
    void *v;
    memcpy(&v, pv, sizeof v);
    void *nv = pyspy_array_grow(v, cap, need, elem, first);
    if (!nv)
        return -1;
    memcpy(pv, &nv, sizeof nv);
    return 0;
}
