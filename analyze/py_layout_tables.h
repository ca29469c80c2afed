/* The built-in layout tables behind pyspy_py_layout_builtin: generated
 * ones (analyze/py_layouts_gen.c, tools/gen-layouts) and hand-written
 * ones for versions whose headers this machine lacks
 * (analyze/py_layout.c). */
#ifndef PYSPY_ANALYZE_PY_LAYOUT_TABLES_H
#define PYSPY_ANALYZE_PY_LAYOUT_TABLES_H

#include <stddef.h>

#include "analyze/py_layout.h"

extern const pyspy_py_layout pyspy_py_layouts_gen[];
extern const size_t pyspy_py_layouts_gen_count;

/* Every built-in table, generated first: for tests that check them all. */
size_t pyspy_py_layout_count(void);
const pyspy_py_layout *pyspy_py_layout_at(size_t i);

#endif
