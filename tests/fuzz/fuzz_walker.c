/* The stack walker over hostile memory: the input is a memory image
 * (tests/fuzz/fuzz_common.h) read with a real built-in layout, patched
 * from the image's _Py_DebugOffsets when it asks to be, as
 * pyspy_python_find would. Seeds are the bytes the walks of the fixture
 * snapshots read (seedgen walker). A walk may fail or mark frames; it
 * must not crash, hang, leak or read outside what the source gives. */
#include "analyze/cpython/find.h"
#include "analyze/walk/cache.h"
#include "analyze/walk/walker.h"
#include "tests/fuzz/fuzz_common.h"

#include <stdio.h>

static pyspy_fuzz_image im;

static void walk(pyspy_python *py, const pyspy_walk_opts *opts) {
    pyspy_traces out;
    pyspy_error err = {0};
    if (pyspy_stack_traces(&im.src, py, opts, &out, &err) == 0)
        pyspy_traces_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (pyspy_fuzz_image_parse(&im, data, size) != 0)
        return 0;
    bool ft = im.flags & PYSPY_FUZZ_FREE_THREADED;
    const pyspy_py_layout *l = pyspy_py_layout_builtin(im.major, im.minor, ft);
    if (!l)
        return 0;
    pyspy_python py;
    memset(&py, 0, sizeof py);
    py.major = im.major;
    py.minor = im.minor;
    snprintf(py.version, sizeof py.version, "%d.%d.0", im.major, im.minor);
    py.layout = *l;
    py.runtime_addr = im.runtime;
    py.interp_head = im.interp_head;
    py.tstate_current_addr = im.tstate_current;
    if ((im.flags & PYSPY_FUZZ_DEBUG_OFFSETS) && im.runtime &&
        l->runtime_debug_offsets >= 0) {
        pyspy_error e = {0};
        py.debug_offsets =
            pyspy_debug_offsets_apply(
                &im.src, im.runtime + (uint64_t)l->runtime_debug_offsets,
                &py.layout, &e) == 0;
    }
    pyspy_walk_opts opts = {
        .lineno = (pyspy_lineno)(PYSPY_FUZZ_LINENO(im.flags) % 3),
        .locals = !(im.flags & PYSPY_FUZZ_LOCALS)    ? 0
                  : im.flags & PYSPY_FUZZ_LONG_REPRS ? 2
                                                     : 1,
        .skip_thread_names = !(im.flags & PYSPY_FUZZ_NAMES),
    };
    if (im.flags & PYSPY_FUZZ_TWICE) {
        /* A sampler's cache: the second walk re-checks what the first
         * one read instead of reading it again. */
        opts.cache = pyspy_walk_cache_new(1000000, 1000000);
        walk(&py, &opts);
    }
    walk(&py, &opts);
    pyspy_walk_cache_free(opts.cache);
    return 0;
}
