/* Native stack unwinding with libdw through the memory-source seam, and
 * merging the native frames with a thread's Python frames as py-spy's
 * --native does. (analyze/native/unwind.c, analyze/native/merge.c) */
#ifndef PYSPY_ANALYZE_NATIVE_UNWIND_H
#define PYSPY_ANALYZE_NATIVE_UNWIND_H

#include <pyspy.h>
#include "analyze/cpython/python.h"

/* Bound on native frames per thread: remote stacks are hostile. */
#define PYSPY_MAX_NATIVE_FRAMES 1024

typedef struct pyspy_native_frame {
    uint64_t pc;  /* as unwound (a return address except innermost) */
    char *name;   /* symbol, or NULL when unknown */
    char *module; /* path of the mapped object, or NULL */
    /* The stack pointer in this frame (0 unknown): the frame's own C
     * stack runs from here up to the next outer frame's sp. */
    uint64_t sp;
} pyspy_native_frame;

/* Unwinds the OS thread tid of src (innermost first). Modules come from
 * this host's files when their build-id matches (via /proc/PID/root for
 * live sources); frames in modules with no file are unwound by frame
 * pointers and named from src->modules' symbols. An unwind that stops
 * early is not an error: *n holds what was found. */
int pyspy_native_unwind(pyspy_memsrc *src, int tid, pyspy_native_frame **out,
                        size_t *n, pyspy_error *err);
void pyspy_native_frames_free(pyspy_native_frame *f, size_t n);
/* The libdw session (modules, symbol and unwind tables) is kept between
 * calls and reused while the modules stay the same; this frees it. */
void pyspy_native_release(void);

/* Replaces trace->frames with the merged native + Python stack of the
 * trace's OS thread. When the unwind fails trace is left as it was. */
int pyspy_native_merge(pyspy_memsrc *src, const pyspy_python *py,
                       pyspy_trace *trace, pyspy_error *err);

#endif
