/* For tests over every built-in layout table: EACH(l) loops over them and
 * NEED(l, cond) checks cond, naming the table that fails it. */
#ifndef PYSPY_TESTS_LAYOUT_EACH_H
#define PYSPY_TESTS_LAYOUT_EACH_H

#include "analyze/cpython/layout_tables.h"
#include "tests/unit/testlib.h"

#define EACH(l)                                                                \
    for (size_t i_ = 0; i_ < pyspy_py_layout_count(); i_++)                    \
        for (const pyspy_py_layout *l = pyspy_py_layout_at(i_); l; l = NULL)

static inline void layout_report(const pyspy_py_layout *l, const char *what) {
    fprintf(stderr, "  table %d.%d%s: %s\n", l->major, l->minor,
            l->free_threaded ? "t" : "", what);
}

#define NEED(l, cond)                                                          \
    do {                                                                       \
        if (!(cond))                                                           \
            layout_report(l, #cond);                                           \
        CHECK(cond);                                                           \
    } while (0)

#endif
