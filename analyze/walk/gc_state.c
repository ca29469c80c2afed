/* Whether the cyclic garbage collector is running, from its own state
 * (gc.collecting), and which thread runs it. The state does not name the
 * thread before 3.15, whose gc.frame is the frame that was running when
 * the collection started; before that the collecting thread is the one
 * holding the GIL (a collection runs under it), or the interpreter's
 * only thread. When a finalizer called by the collector has released the
 * GIL (sleeps, waits on a lock) and other threads exist, no thread can be
 * named: the process still says a collection runs. */
#include "analyze/walk/internal.h"

int pyspy_gc_collecting(pyspy_memsrc *src, const pyspy_python *py,
                        uint64_t interp, uint64_t *start_frame) {
    const pyspy_py_layout *l = &py->layout;
    *start_frame = 0;
    uint64_t at;
    if (l->interp_gc_collecting >= 0)
        at = interp + (uint64_t)l->interp_gc_collecting;
    else if (l->runtime_gc_collecting >= 0 && py->runtime_addr)
        at = py->runtime_addr + (uint64_t)l->runtime_gc_collecting;
    else
        return -1;
    int32_t collecting;
    if (pyspy_memsrc_read(src, at, &collecting, sizeof collecting, NULL) < 0)
        return -1;
    if (!collecting)
        return 0;
    if (l->interp_gc_frame >= 0)
        pyspy_memsrc_read(src, interp + (uint64_t)l->interp_gc_frame,
                          start_frame, sizeof *start_frame, NULL);
    return 1;
}

bool pyspy_gc_frame_on_thread(pyspy_memsrc *src, const pyspy_python *py,
                              uint64_t tstate, uint64_t frame) {
    const pyspy_py_layout *l = &py->layout;
    if (l->threads != PYSPY_THREADS_CURRENT_FRAME || l->tstate_frame < 0 ||
        l->iframe_previous < 0 || !frame)
        return false;
    uint64_t f = 0;
    if (pyspy_memsrc_read(src, tstate + (uint64_t)l->tstate_frame, &f, sizeof f,
                          NULL) < 0)
        return false;
    /* Bounded rather than cycle-checked: a cycle only repeats frames
     * already compared. */
    for (size_t k = 0; f && k < PYSPY_MAX_FRAMES; k++) {
        if (f == frame)
            return true;
        if (pyspy_memsrc_read(src, f + (uint64_t)l->iframe_previous, &f,
                              sizeof f, NULL) < 0)
            return false;
    }
    return false;
}
