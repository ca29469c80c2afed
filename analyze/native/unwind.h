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

/* A libdw session: the modules of a source reported to libdw, with
 * their symbol and unwind tables. Sessions are kept between calls, one
 * per set of modules (each module's build-id, or where it has none the
 * file it was read from, path and inode; its addresses; and
 * pyspy_memsrc_file_root): a target's next sample, or
 * the next snapshot of the same program, finds its own again. A session
 * is the caller's alone until given back, and callers on other threads
 * get sessions of their own, so they unwind side by side. */
typedef struct pyspy_native_session pyspy_native_session;

/* The session for src's modules, opened when none is free. NULL with err
 * when libdw cannot start one. */
pyspy_native_session *pyspy_native_get(pyspy_memsrc *src, pyspy_error *err);
/* Gives a session back (s may be NULL). */
void pyspy_native_put(pyspy_native_session *s);

/* Unwinds the OS thread tid of src (innermost first) in *s, which is got
 * for src on first need when NULL (give it back with pyspy_native_put).
 * Modules come from this host's files when their build-id matches
 * (looked for under pyspy_memsrc_file_root, so a live target's are its
 * own even in another mount namespace); frames in modules with no file
 * are unwound from the module's image in memory and named from
 * src->modules' symbols. An unwind that stops early is not an error: *n
 * holds what was found. */
int pyspy_native_unwind_in(pyspy_native_session **s, pyspy_memsrc *src, int tid,
                           pyspy_native_frame **out, size_t *n,
                           pyspy_error *err);
/* The same with a session got and given back for this call. */
int pyspy_native_unwind(pyspy_memsrc *src, int tid, pyspy_native_frame **out,
                        size_t *n, pyspy_error *err);
void pyspy_native_frames_free(pyspy_native_frame *f, size_t n);
/* Frees every session not in use. */
void pyspy_native_release(void);

/* Replaces trace->frames with the merged native + Python stack of the
 * trace's OS thread, unwound in *s as pyspy_native_unwind_in does. When
 * the unwind fails trace is left as it was. */
int pyspy_native_merge(pyspy_native_session **s, pyspy_memsrc *src,
                       const pyspy_python *py, pyspy_trace *trace,
                       pyspy_error *err);

#endif
