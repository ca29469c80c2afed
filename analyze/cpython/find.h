/* Internals of interpreter discovery shared by analyze/cpython/find.c,
 * analyze/cpython/version.c, analyze/cpython/scan.c and
 * analyze/cpython/debug_offsets.c. */
#ifndef PYSPY_ANALYZE_PYTHON_FIND_H
#define PYSPY_ANALYZE_PYTHON_FIND_H

#include <pyspy.h>
#include "analyze/cpython/layout.h"

/* What is known about the target's version and where it came from. */
typedef struct pyspy_pyver {
    int major, minor, micro; /* micro -1: unknown (file name only) */
    char version[32];        /* as platform.python_version() prints it */
    bool free_threaded;
    bool ft_known;      /* free_threaded came from the target, not a guess */
    const char *source; /* "Py_Version", "_Py_DebugOffsets", ... */
} pyspy_pyver;

/* Fills v from a PY_VERSION_HEX value; -1 if it is not a plausible one. */
int pyspy_pyver_from_hex(uint64_t hex, pyspy_pyver *v);
/* Parses "3.11.2", "3.15.0a2", "2.7.18+" at the start of s; the text
 * must be followed by one of the bytes in `after` (e.g. " " or "\0").
 * Returns the number of bytes parsed, 0 if s is not a version. */
size_t pyspy_pyver_parse(const char *s, size_t len, pyspy_pyver *v);
/* major.minor (and "t") from a file name such as libpython3.9.so.1.0,
 * python3.13t or python2.7; -1 when the name says nothing. */
int pyspy_pyver_from_name(const char *path, pyspy_pyver *v);

/* The exact version of the interpreter in module m: Py_Version, then the
 * _Py_DebugOffsets at runtime (0 = unknown), then the version string in
 * the module's data (the buffer Py_GetVersion fills at start-up, as in
 * sys.version), then read-only data, then the file name. */
int pyspy_python_version(pyspy_memsrc *src, pyspy_module *m, uint64_t runtime,
                         pyspy_pyver *v, pyspy_error *err);

/* Regions belonging to module m: its file mappings plus the anonymous
 * mapping right after them (.bss). Calls fn on the readable bytes of each
 * present region with the given permissions, in chunks of at most
 * 1 MiB overlapping by `overlap` bytes; at most max_bytes in all. fn
 * returns nonzero to stop (that value is returned). */
typedef int (*pyspy_scan_fn)(void *ctx, uint64_t addr, const uint8_t *buf,
                             size_t len);
int pyspy_scan_module(pyspy_memsrc *src, const pyspy_module *m,
                      uint32_t need_perms, uint32_t refuse_perms,
                      size_t overlap, uint64_t max_bytes, pyspy_scan_fn fn,
                      void *ctx);

/* "xdebugpy" at runtime: the version (PY_VERSION_HEX) and free-threaded
 * flag it carries. -1 if the cookie is not there. */
int pyspy_debug_offsets_header(pyspy_memsrc *src, uint64_t runtime,
                               uint64_t *version, bool *free_threaded);
/* Patches l with the offsets the target publishes in _Py_DebugOffsets at
 * runtime (3.13+). Values that are implausible leave the built-in table
 * untouched and fail. */
int pyspy_debug_offsets_apply(pyspy_memsrc *src, uint64_t runtime,
                              pyspy_py_layout *l, pyspy_error *err);
/* Without symbols: the first 8-aligned "xdebugpy" cookie in the writable
 * data of m (any writable region when m is NULL) whose version field is
 * a plausible 3.13+ version. 0 if none. */
uint64_t pyspy_debug_offsets_scan(pyspy_memsrc *src, const pyspy_module *m);

/* Symbol lookup in one module (exact name); 0 if absent. */
uint64_t pyspy_module_symbol(pyspy_module *m, const char *name, uint64_t *size);
/* The same for a name of Python's C API, which every build exports: a
 * live module's .symtab is not read for it (a miss is common: probes
 * for other versions or build kinds). */
uint64_t pyspy_module_api_symbol(pyspy_module *m, const char *name,
                                 uint64_t *size);

#endif
