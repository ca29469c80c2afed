/* str objects to UTF-8: PEP 393 (compact ASCII, compact latin-1/UCS-2/
 * UCS-4, non-compact) and 2.7's str and unicode (Py_UNICODE is 2 or 4
 * bytes depending on the build). */
#include "analyze/objects/format.h"
#include "analyze/objects/objects.h"
#include "analyze/objects/object_layout.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Larger strings are cut: nothing the analyzer shows needs more. */
#define STR_HARD_MAX (1u << 20)

static int read_units(pyspy_memsrc *src, uint64_t data, int width, size_t count,
                      uint32_t *cps, pyspy_error *err) {
    size_t bytes = count * (size_t)width;
    uint8_t *raw = malloc(bytes ? bytes : 1);
    if (!raw)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    if (bytes && pyspy_memsrc_read(src, data, raw, bytes, err) < 0) {
        free(raw);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        if (width == 1) {
            cps[i] = raw[i];
        } else if (width == 2) {
            uint16_t u;
            memcpy(&u, raw + 2 * i, 2);
            cps[i] = u;
        } else {
            uint32_t u;
            memcpy(&u, raw + 4 * i, 4);
            cps[i] = u;
        }
    }
    free(raw);
    return 0;
}

/* 2.7's Py_UNICODE width (python_find reads it from the exported API's
 * name). */
static int py2_unicode_width(const pyspy_python *py) {
    return py->layout.py2_unicode_size == 2 ? 2 : 4;
}

/* Narrow 2.7 builds store non-BMP characters as surrogate pairs. */
static size_t join_surrogates(uint32_t *cps, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cps[i];
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && cps[i + 1] >= 0xdc00 &&
            cps[i + 1] <= 0xdfff) {
            c = 0x10000 + ((c - 0xd800) << 10) + (cps[i + 1] - 0xdc00);
            i++;
        }
        cps[o++] = c;
    }
    return o;
}

static int pep393(pyspy_memsrc *src, const pyspy_python *py, uint64_t addr,
                  size_t max_chars, uint32_t **cps, size_t *n, size_t *total,
                  pyspy_error *err) {
    const pyspy_py_layout *l = &py->layout;
    int64_t length;
    uint32_t state;
    if (pyspy_py_read_i64(src, addr + (uint64_t)l->unicode_length, &length,
                          err) < 0 ||
        pyspy_memsrc_read(src, addr + (uint64_t)l->unicode_state, &state,
                          sizeof state, err) < 0)
        return -1;
    unsigned kind = (state >> l->unicode_state_kind_shift) & 7;
    bool compact = (state >> l->unicode_state_compact_shift) & 1;
    bool ascii = (state >> l->unicode_state_ascii_shift) & 1;
    if (length < 0 || length > (int64_t)1 << 40)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "str at 0x%" PRIx64 ": bad length %" PRId64,
                               addr, length);
    if (kind != 1 && kind != 2 && kind != 4)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "str at 0x%" PRIx64 ": kind %u not readable",
                               addr, kind);
    uint64_t data;
    if (compact)
        data = addr + (uint64_t)(ascii ? l->unicode_ascii_data
                                       : l->unicode_compact_data);
    else if (pyspy_py_read_u64(src, addr + (uint64_t)l->unicode_nonstate_data,
                               &data, err) < 0)
        return -1;
    size_t count = (size_t)length < max_chars ? (size_t)length : max_chars;
    *cps = malloc((count ? count : 1) * sizeof **cps);
    if (!*cps)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    if (read_units(src, data, (int)kind, count, *cps, err) < 0) {
        free(*cps);
        *cps = NULL;
        return -1;
    }
    *n = count;
    *total = (size_t)length;
    return 0;
}

static int py2_unicode(pyspy_memsrc *src, const pyspy_python *py, uint64_t addr,
                       size_t max_chars, uint32_t **cps, size_t *n,
                       size_t *total, pyspy_error *err) {
    const pyspy_py_layout *l = &py->layout;
    int64_t length;
    uint64_t data;
    if (pyspy_py_read_i64(src, addr + (uint64_t)l->py2_unicode_length, &length,
                          err) < 0 ||
        pyspy_py_read_u64(src, addr + (uint64_t)l->py2_unicode_str, &data,
                          err) < 0)
        return -1;
    if (length < 0 || length > (int64_t)1 << 40)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "unicode at 0x%" PRIx64 ": bad length", addr);
    int width = py2_unicode_width(py);
    /* One more unit so a pair cut at the bound still joins. */
    size_t count =
        (size_t)length < max_chars + 1 ? (size_t)length : max_chars + 1;
    *cps = malloc((count ? count : 1) * sizeof **cps);
    if (!*cps)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    if (read_units(src, data, width, count, *cps, err) < 0) {
        free(*cps);
        *cps = NULL;
        return -1;
    }
    size_t got = width == 2 ? join_surrogates(*cps, count) : count;
    *n = got < max_chars ? got : max_chars;
    *total = width == 2 && got < count ? (size_t)length - (count - got)
                                       : (size_t)length;
    return 0;
}

static int py2_str(pyspy_memsrc *src, const pyspy_python *py, uint64_t addr,
                   size_t max_chars, uint32_t **cps, size_t *n, size_t *total,
                   pyspy_error *err) {
    uint8_t *bytes;
    size_t len;
    /* Up to 4 bytes a character. */
    size_t max_bytes = max_chars < STR_HARD_MAX ? max_chars * 4 : STR_HARD_MAX;
    if (pyspy_py_bytes(src, py, addr, &bytes, &len, max_bytes, err) < 0)
        return -1;
    *cps = malloc((len ? len : 1) * sizeof **cps);
    if (!*cps) {
        free(bytes);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    size_t got = pyspy_utf8_decode(bytes, len, *cps, len);
    free(bytes);
    *n = got < max_chars ? got : max_chars;
    *total = got; /* best effort: characters seen */
    int64_t size;
    if (pyspy_py_read_i64(src, addr + (uint64_t)py->layout.var_ob_size, &size,
                          NULL) == 0 &&
        size > (int64_t)len)
        *total = got + (size_t)(size - (int64_t)len);
    return 0;
}

int pyspy_py_str_codepoints(pyspy_memsrc *src, const pyspy_python *py,
                            uint64_t addr, size_t max_chars, uint32_t **cps,
                            size_t *n, size_t *total, pyspy_error *err) {
    *cps = NULL;
    *n = *total = 0;
    if (max_chars > STR_HARD_MAX)
        max_chars = STR_HARD_MAX;
    pyspy_py_type t;
    if (pyspy_py_type_of(src, py, addr, &t, err) < 0)
        return -1;
    /* Subclasses share the layout (and are how non-compact strings
     * come about), so the fast-subclass flag is enough here. */
    bool is_str = t.kind == PYSPY_OBJ_STR ||
                  (t.flags & py->layout.tpflags_unicode_subclass);
    if (is_str && py->layout.str == PYSPY_STR_PY2)
        return py2_unicode(src, py, addr, max_chars, cps, n, total, err);
    if (is_str)
        return pep393(src, py, addr, max_chars, cps, n, total, err);
    if (t.kind == PYSPY_OBJ_BYTES && py->layout.str == PYSPY_STR_PY2)
        return py2_str(src, py, addr, max_chars, cps, n, total, err);
    return pyspy_error_set(err, PYSPY_E_FORMAT,
                           "object at 0x%" PRIx64 " is a %s, not a str", addr,
                           t.name);
}

char *pyspy_py_str(pyspy_memsrc *src, const pyspy_python *py, uint64_t addr,
                   size_t max_bytes, pyspy_error *err) {
    uint32_t *cps;
    size_t n, total;
    if (pyspy_py_str_codepoints(src, py, addr, max_bytes, &cps, &n, &total,
                                err) < 0)
        return NULL;
    pyspy_sbuf b;
    pyspy_sbuf_init(&b, max_bytes);
    for (size_t i = 0; i < n; i++) {
        char u[4];
        size_t k = pyspy_utf8_put(cps[i], u);
        if (b.len + k > max_bytes)
            break; /* never cut a character in half */
        pyspy_sbuf_put(&b, u, k);
    }
    free(cps);
    char *s = pyspy_sbuf_take(&b);
    if (!s)
        pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    return s;
}

int pyspy_py_str_equals(pyspy_memsrc *src, const pyspy_python *py,
                        uint64_t addr, const char *key) {
    size_t klen = strlen(key);
    char *s = pyspy_py_str(src, py, addr, klen + 1, NULL);
    int eq = s && strcmp(s, key) == 0;
    free(s);
    return eq;
}

void pyspy_str_matcher_init(pyspy_str_matcher *m, const char *key) {
    memset(m, 0, sizeof *m);
    m->key = key;
    m->key_bytes = strlen(key);
    for (size_t i = 0; i < m->key_bytes; i++)
        m->key_chars += ((uint8_t)key[i] & 0xc0) != 0x80;
}

int pyspy_str_matcher_equals(pyspy_memsrc *src, const pyspy_python *py,
                             pyspy_str_matcher *m, uint64_t addr) {
    const pyspy_py_layout *l = &py->layout;
    bool py2 = l->str == PYSPY_STR_PY2;
    /* 2.7 names are byte strings: their length is ob_size in bytes. */
    int32_t len_off = py2 ? l->var_ob_size : l->unicode_length;
    size_t want = py2 ? m->key_bytes : m->key_chars;
    if (!m->str_type) {
        pyspy_py_type t;
        if (pyspy_py_type_of(src, py, addr, &t, NULL) == 0 &&
            t.kind == (py2 ? PYSPY_OBJ_BYTES : PYSPY_OBJ_STR))
            m->str_type = t.addr;
    }
    if (m->str_type && len_off > l->ob_type && len_off < 256) {
        uint8_t hdr[256 + 8];
        size_t n = (size_t)len_off + 8;
        if (pyspy_memsrc_read(src, addr, hdr, n, NULL) == 0) {
            uint64_t type;
            int64_t len;
            memcpy(&type, hdr + l->ob_type, 8);
            memcpy(&len, hdr + len_off, 8);
            if (type == m->str_type && (len < 0 || (size_t)len != want))
                return 0;
        }
    }
    return pyspy_py_str_equals(src, py, addr, m->key);
}
