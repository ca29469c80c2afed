/* _Py_DebugOffsets (3.13+) from hostile memory. Input: u8 major, u8 minor,
 * u8 free-threaded, u8 pad, u32 offset of the interpreter within the
 * bytes, then the bytes, mapped writable at RUNTIME (seeds: the
 * _Py_DebugOffsets of each 3.13+ fixture, seedgen debug). The header
 * check, the cookie scan and the patching must hold whatever the bytes
 * say; a patched layout is walked over the same bytes, so an offset that
 * passes the checks but misleads a reader shows here. */
#include "analyze/cpython/find.h"
#include "analyze/walk/walker.h"
#include "tests/fuzz/fuzz_common.h"

#include <stdio.h>

#define RUNTIME 0x7f0000001000ull

static int read_mem(pyspy_memsrc *src, uint64_t addr, void *buf, size_t len,
                    pyspy_error *err);
static const pyspy_memsrc_ops ops = {.kind = "fuzz", .read = read_mem};

static const uint8_t *mem;
static size_t mem_len;

static int read_mem(pyspy_memsrc *src, uint64_t addr, void *buf, size_t len,
                    pyspy_error *err) {
    (void)src;
    if (addr < RUNTIME || addr - RUNTIME > mem_len ||
        len > mem_len - (addr - RUNTIME))
        return pyspy_error_set(err, PYSPY_E_UNREADABLE, "unmapped");
    memcpy(buf, mem + (addr - RUNTIME), len);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 8)
        return 0;
    int major = data[0], minor = data[1];
    bool ft = data[2] & 1;
    uint64_t interp = RUNTIME + pyspy_fuzz_le(data + 4, 4);
    mem = data + 8;
    mem_len = size - 8;
    pyspy_region region = {.start = RUNTIME,
                           .end = RUNTIME + mem_len,
                           .perms = PYSPY_PERM_R | PYSPY_PERM_W,
                           .present = true};
    pyspy_memsrc src = {.ops = &ops,
                        .regions = &region,
                        .nregions = mem_len ? 1 : 0,
                        .origin = "fuzz input"};
    uint64_t version;
    bool hdr_ft;
    (void)pyspy_debug_offsets_header(&src, RUNTIME, &version, &hdr_ft);
    (void)pyspy_debug_offsets_scan(&src, NULL);
    const pyspy_py_layout *builtin = pyspy_py_layout_builtin(major, minor, ft);
    if (!builtin)
        return 0;
    pyspy_python py;
    memset(&py, 0, sizeof py);
    py.major = major;
    py.minor = minor;
    snprintf(py.version, sizeof py.version, "%d.%d.0", major, minor);
    py.layout = *builtin;
    pyspy_error err = {0};
    if (pyspy_debug_offsets_apply(&src, RUNTIME, &py.layout, &err) != 0)
        return 0;
    py.debug_offsets = true;
    py.runtime_addr = RUNTIME;
    py.interp_head = interp;
    pyspy_walk_opts opts = {.lineno = PYSPY_LINENO_LAST_INSTRUCTION,
                            .locals = 1};
    pyspy_traces out;
    if (pyspy_stack_traces(&src, &py, &opts, &out, &err) == 0)
        pyspy_traces_free(&out);
    return 0;
}
