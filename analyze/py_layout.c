/* pyspy_py_layout_builtin: the generated tables (analyze/py_layouts_gen.c)
 * first, then hand-written ones for families whose headers the generating
 * machine lacked. */
#include "analyze/py_layout_tables.h"

#include <stddef.h>

static const pyspy_py_layout *hand_tables = NULL;
static const size_t hand_count = 0;

size_t pyspy_py_layout_count(void) {
    return pyspy_py_layouts_gen_count + hand_count;
}

const pyspy_py_layout *pyspy_py_layout_at(size_t i) {
    if (i < pyspy_py_layouts_gen_count)
        return &pyspy_py_layouts_gen[i];
    i -= pyspy_py_layouts_gen_count;
    return i < hand_count ? &hand_tables[i] : NULL;
}

const pyspy_py_layout *pyspy_py_layout_builtin(int major, int minor,
                                               bool free_threaded) {
    for (size_t i = 0; i < pyspy_py_layout_count(); i++) {
        const pyspy_py_layout *l = pyspy_py_layout_at(i);
        if (l->major == major && l->minor == minor &&
            l->free_threaded == free_threaded)
            return l;
    }
    return NULL;
}
