/* pyspy_array_grow_to (capture/base/array.h). */
#include "capture/base/array.h"

#include <stdint.h>
#include <stdlib.h>

void *pyspy_array_grow_to(void *v, size_t *cap, size_t need, size_t elem,
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
