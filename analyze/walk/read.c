/* The library's one call from a memory source to the stack-trace model:
 * the interpreter found, a live target stopped as its lock mode says for
 * the walk, and released. */
#include "analyze/cpython/python.h"
#include "analyze/walk/walker.h"

#include <string.h>

pyspy_trace_opts pyspy_trace_opts_default(void) {
    return (pyspy_trace_opts){.lineno = PYSPY_LINENO_LAST_INSTRUCTION};
}

int pyspy_traces_read(pyspy_memsrc *src, const pyspy_trace_opts *opts,
                      pyspy_traces *out, pyspy_error *err) {
    memset(out, 0, sizeof *out);
    pyspy_trace_opts o = opts ? *opts : pyspy_trace_opts_default();
    pyspy_python py;
    memset(&py, 0, sizeof py);
    if (pyspy_python_find(src, &py, err) < 0)
        return -1;
    pyspy_walk_opts wo = {.lineno = o.lineno,
                          .locals = o.locals,
                          .full_filenames = o.full_filenames,
                          .native = o.native};
    int rc = 0;
    if (pyspy_memsrc_refresh(src, err) < 0)
        rc = -1;
    if (rc == 0 && pyspy_memsrc_suspend(src, err) < 0)
        rc = -1;
    if (rc == 0) {
        rc = pyspy_stack_traces(src, &py, &wo, out, err);
        pyspy_memsrc_resume(src);
    }
    pyspy_python_free(&py);
    if (rc < 0) {
        pyspy_traces_free(out);
        return -1;
    }
    return 0;
}
