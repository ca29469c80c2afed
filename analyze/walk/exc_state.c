/* Whether a thread is handling an exception, found as sys.exc_info()
 * finds it: the innermost level of the thread's exception stack whose
 * exc_value is set and not None (a running generator, or a frame outside
 * any except block, leaves its level empty). */
#include "analyze/objects/object_layout.h"
#include "analyze/walk/internal.h"

/* Levels nest with generators and coroutines; a deeper stack than this
 * is hostile or broken. */
#define MAX_EXC_LEVELS 1024

/* 1 an exception, 0 none (NULL or None), -1 unreadable. */
static int exception_at(pyspy_memsrc *src, const pyspy_python *py,
                        uint64_t addr) {
    uint64_t v = 0;
    if (pyspy_memsrc_read(src, addr, &v, sizeof v, NULL) < 0)
        return -1;
    if (!v)
        return 0;
    pyspy_py_type t;
    if (pyspy_py_type_of(src, py, v, &t, NULL) < 0)
        return -1;
    return t.kind != PYSPY_OBJ_NONE;
}

bool pyspy_tstate_handling_exception(pyspy_memsrc *src, const pyspy_python *py,
                                     uint64_t tstate) {
    const pyspy_py_layout *l = &py->layout;
    if (l->tstate_exc_value >= 0)
        return exception_at(src, py, tstate + (uint64_t)l->tstate_exc_value) ==
               1;
    if (l->tstate_exc_info < 0 || l->stackitem_exc_value < 0 ||
        l->stackitem_previous < 0)
        return false;
    uint64_t item = 0;
    if (pyspy_memsrc_read(src, tstate + (uint64_t)l->tstate_exc_info, &item,
                          sizeof item, NULL) < 0)
        return false;
    for (size_t k = 0; item && k < MAX_EXC_LEVELS; k++) {
        int r = exception_at(src, py, item + (uint64_t)l->stackitem_exc_value);
        if (r != 0)
            return r == 1;
        if (pyspy_memsrc_read(src, item + (uint64_t)l->stackitem_previous,
                              &item, sizeof item, NULL) < 0)
            return false;
    }
    return false;
}
