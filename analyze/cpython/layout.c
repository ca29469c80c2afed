/* pyspy_py_layout_builtin over the generated tables
 * (analyze/cpython/layouts_gen.c). Every supported family, 3.14, 3.15 and the
 * free-threaded ones included, is measured from real headers by
 * tools/gen-layouts, so there are no hand-written tables. */
#include "analyze/cpython/layout_tables.h"

size_t pyspy_py_layout_count(void) {
    return pyspy_py_layouts_gen_count;
}

const pyspy_py_layout *pyspy_py_layout_at(size_t i) {
    return i < pyspy_py_layouts_gen_count ? &pyspy_py_layouts_gen[i] : NULL;
}

const pyspy_py_layout *pyspy_py_layout_builtin(int major, int minor,
                                               bool free_threaded) {
    for (size_t i = 0; i < pyspy_py_layouts_gen_count; i++) {
        const pyspy_py_layout *l = &pyspy_py_layouts_gen[i];
        if (l->major == major && l->minor == minor &&
            l->free_threaded == free_threaded)
            return l;
    }
    return NULL;
}
