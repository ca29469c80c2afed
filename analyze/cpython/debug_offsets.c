/* 3.13+: the target publishes its own struct offsets in _Py_DebugOffsets,
 * the first member of _PyRuntime (cookie "xdebugpy", then the version
 * as PY_VERSION_HEX and a free-threaded flag, then one section per
 * struct). The struct's shape differs between minor versions; where each
 * value sits is generated per version (pyspy_py_debug_maps). Patching
 * from the target makes patch releases and unusual builds read right
 * even when their layout drifted from the built-in table. */
#include "analyze/cpython/layout_tables.h"
#include "analyze/cpython/find.h"

#include <stdlib.h>
#include <string.h>

#define COOKIE "xdebugpy"
/* Every _Py_DebugOffsets so far: cookie at 0, version at 8, free_threaded
 * at 16. */
#define OFF_VERSION 8
#define OFF_FREE_THREADED 16
#define MAX_STRUCT_OFFSET (1u << 22) /* 4 MiB: larger is not an offset */

/* A version as one comparable number. */
static int family(int major, int minor) {
    return major * 100 + minor;
}

/* Whether a version can have a _Py_DebugOffsets at all: the oldest family
 * the generator measured one for bounds it, newer ones may add their own. */
static bool publishes_offsets(const pyspy_pyver *v) {
    for (size_t i = 0; i < pyspy_py_debug_maps_count; i++) {
        const pyspy_py_debug_map *d = &pyspy_py_debug_maps[i];
        if (d->major == v->major &&
            family(v->major, v->minor) >= family(d->major, d->minor))
            return true;
    }
    return false;
}

static bool plausible_header(const uint8_t *h, uint64_t *version, bool *ft) {
    uint64_t ver, flag;
    memcpy(&ver, h + OFF_VERSION, 8);
    memcpy(&flag, h + OFF_FREE_THREADED, 8);
    pyspy_pyver v;
    if (memcmp(h, COOKIE, 8) != 0 || pyspy_pyver_from_hex(ver, &v) < 0 ||
        !publishes_offsets(&v) || flag > 1)
        return false;
    *version = ver;
    *ft = flag != 0;
    return true;
}

int pyspy_debug_offsets_header(pyspy_memsrc *src, uint64_t runtime,
                               uint64_t *version, bool *free_threaded) {
    uint8_t h[24];
    pyspy_error e = {0};
    if (pyspy_memsrc_read(src, runtime, h, sizeof h, &e) < 0)
        return -1;
    return plausible_header(h, version, free_threaded) ? 0 : -1;
}

static const pyspy_py_debug_map *map_for(int major, int minor, bool ft) {
    for (size_t i = 0; i < pyspy_py_debug_maps_count; i++) {
        const pyspy_py_debug_map *d = &pyspy_py_debug_maps[i];
        if (d->major == major && d->minor == minor && d->free_threaded == ft)
            return d;
    }
    return NULL;
}

static int32_t *field(pyspy_py_layout *l, uint16_t off) {
    return (int32_t *)(void *)((char *)l + off);
}

/* The patched table must still describe structs its readers can walk:
 * every field inside the struct it belongs to. */
static bool consistent(const pyspy_py_layout *l) {
    const int32_t ts = l->tstate_size, is = l->interp_size;
    return ts > 0 && is > 0 && l->tstate_next + 8 <= ts &&
           l->tstate_interp + 8 <= ts && l->tstate_frame + 8 <= ts &&
           l->tstate_thread_id + 8 <= ts &&
           l->tstate_native_thread_id + 8 <= ts && l->interp_next + 8 <= is &&
           l->interp_tstate_head + 8 <= is && l->interp_modules + 8 <= is &&
           l->interp_gil_ptr + 8 <= is &&
           l->iframe_previous + 8 <= l->frame_size &&
           l->iframe_code + 8 <= l->frame_size &&
           l->iframe_instr_ptr + 8 <= l->frame_size &&
           l->iframe_owner < l->frame_size &&
           l->iframe_localsplus == l->frame_size &&
           l->code_filename + 8 <= l->code_size &&
           l->code_name + 8 <= l->code_size &&
           l->code_linetable + 8 <= l->code_size && l->ob_type > 0 &&
           l->ob_type + 8 <= l->pyobject_size;
}

int pyspy_debug_offsets_apply(pyspy_memsrc *src, uint64_t runtime,
                              pyspy_py_layout *l, pyspy_error *err) {
    const pyspy_py_debug_map *d = map_for(l->major, l->minor, l->free_threaded);
    if (!d)
        return pyspy_error_set(err, PYSPY_E_UNSUPPORTED,
                               "no _Py_DebugOffsets shape known for %d.%d%s",
                               l->major, l->minor, l->free_threaded ? "t" : "");
    if (d->size <= 0 || d->size > 65536)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "bad debug map");
    uint8_t *buf = malloc((size_t)d->size);
    if (!buf)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    if (pyspy_memsrc_read(src, runtime, buf, (size_t)d->size, err) < 0) {
        free(buf);
        return pyspy_error_prefix(err, "_Py_DebugOffsets");
    }
    uint64_t version;
    bool ft;
    pyspy_pyver v;
    if (!plausible_header(buf, &version, &ft) ||
        pyspy_pyver_from_hex(version, &v) < 0 || v.major != l->major ||
        v.minor != l->minor || ft != l->free_threaded) {
        free(buf);
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "_Py_DebugOffsets at 0x%llx do not match "
                               "Python %d.%d",
                               (unsigned long long)runtime, l->major, l->minor);
    }
    pyspy_py_layout patched = *l;
    const char *bad = NULL;
    for (size_t i = 0; i < PYSPY_DEBUG_MAP_MAX && d->fields[i].layout_off;
         i++) {
        const pyspy_py_debug_field *f = &d->fields[i];
        uint64_t val;
        if (f->debug_off + 8u > (unsigned)d->size ||
            f->layout_off + sizeof(int32_t) > sizeof patched) {
            bad = "map";
            break;
        }
        memcpy(&val, buf + f->debug_off, 8);
        if (val >= MAX_STRUCT_OFFSET) {
            bad = "offset";
            break;
        }
        *field(&patched, f->layout_off) = (int32_t)val;
    }
    if (!bad && d->gil_base >= 0) {
        uint64_t base, locked, holder;
        memcpy(&base, buf + d->gil_base, 8);
        memcpy(&locked, buf + d->gil_locked, 8);
        memcpy(&holder, buf + d->gil_holder, 8);
        /* Relative to the interpreter; the layout wants them relative to
         * the _gil_runtime_state that interp->ceval.gil points at. */
        if (locked < base || holder < base || locked - base > 4096 ||
            holder - base > 4096)
            bad = "gil";
        else {
            patched.gil_locked = (int32_t)(locked - base);
            patched.gil_last_holder = (int32_t)(holder - base);
        }
    }
    if (!bad && d->tlbc_index >= 0) {
        uint64_t val;
        memcpy(&val, buf + d->tlbc_index, 8);
        if (val >= (uint64_t)patched.frame_size)
            bad = "tlbc_index";
        else
            patched.iframe_tlbc_index = (int32_t)val;
    }
    if (!bad && d->gc_base >= 0 && d->gc_collecting >= 0) {
        uint64_t base, collecting, frame = 0;
        memcpy(&base, buf + d->gc_base, 8);
        memcpy(&collecting, buf + d->gc_collecting, 8);
        if (d->gc_frame >= 0)
            memcpy(&frame, buf + d->gc_frame, 8);
        /* The layout wants them relative to the interpreter. The GC
         * state never starts the interpreter: 0 is a section left
         * unfilled, and the built-in offsets stay. */
        if (base == 0)
            ;
        else if (base >= MAX_STRUCT_OFFSET || collecting > 4096 ||
                 frame > 4096 ||
                 base + collecting + 4 > (uint64_t)patched.interp_size ||
                 base + frame + 8 > (uint64_t)patched.interp_size)
            bad = "gc";
        else {
            patched.interp_gc_collecting = (int32_t)(base + collecting);
            if (d->gc_frame >= 0)
                patched.interp_gc_frame = (int32_t)(base + frame);
        }
    }
    free(buf);
    if (!bad && !consistent(&patched))
        bad = "consistency";
    if (bad)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "_Py_DebugOffsets at 0x%llx are implausible "
                               "(%s); using the built-in %d.%d table",
                               (unsigned long long)runtime, bad, l->major,
                               l->minor);
    *l = patched;
    return 0;
}

typedef struct {
    uint64_t found;
} cookie_scan;

static int cookie_fn(void *ctx, uint64_t addr, const uint8_t *buf, size_t len) {
    cookie_scan *c = ctx;
    size_t i = (size_t)((8 - (addr & 7)) & 7);
    for (; i + 24 <= len; i += 8) {
        if (buf[i] != 'x' || memcmp(buf + i, COOKIE, 8) != 0)
            continue;
        uint64_t version;
        bool ft;
        if (plausible_header(buf + i, &version, &ft)) {
            c->found = addr + i;
            return 1;
        }
    }
    return 0;
}

uint64_t pyspy_debug_offsets_scan(pyspy_memsrc *src, const pyspy_module *m) {
    cookie_scan c = {0};
    pyspy_scan_module(src, m, PYSPY_PERM_R | PYSPY_PERM_W, 0, 24,
                      (uint64_t)256 << 20, cookie_fn, &c);
    return c.found;
}
