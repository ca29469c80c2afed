/* Finding the interpreter in a memory source: which ELF object holds it,
 * its exact version, its layout, and the addresses the walker starts from.
 * (analyze/cpython/find.c, analyze/cpython/version.c,
 * analyze/cpython/debug_offsets.c) */
#ifndef PYSPY_ANALYZE_PYTHON_H
#define PYSPY_ANALYZE_PYTHON_H

#include <pyspy.h>
#include "analyze/cpython/layout.h"

typedef struct pyspy_python {
    int major, minor, micro;
    char version[32];       /* "3.11.2" (with a suffix such as "rc1") */
    pyspy_py_layout layout; /* built-in table, patched by _Py_DebugOffsets */
    uint64_t runtime_addr;  /* _PyRuntime; 0 for 2.7/3.6 */
    uint64_t interp_head;   /* first PyInterpreterState */
    uint64_t tstate_current_addr; /* 2.7/3.6: &_PyThreadState_Current */
    /* The object holding the interpreter: valid while the source's
     * module table stays as it was found (a live source reloads it when
     * the target maps new files); module_path stays. */
    const pyspy_module *module;
    char *module_path;
    char *executable; /* path shown as "Python vX (path)" */
    /* Where the version came from (static text): "Py_Version",
     * "_Py_DebugOffsets", "version string" (data), "read-only data" or
     * "file name" (then micro is -1 and version is "X.Y"). */
    const char *version_source;
    /* 3.13+: the layout was patched from the target's _Py_DebugOffsets
     * (false: they were absent or implausible; built-in table used). */
    bool debug_offsets;
} pyspy_python;

int pyspy_python_find(pyspy_memsrc *src, pyspy_python *py, pyspy_error *err);
void pyspy_python_free(pyspy_python *py);

#endif
