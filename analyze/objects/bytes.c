/* bytes (3.x) and 2.7 str contents. */
#include "analyze/objects/objects.h"
#include "analyze/objects/object_layout.h"

#include <inttypes.h>
#include <stdlib.h>

int pyspy_py_bytes(pyspy_memsrc *src, const pyspy_python *py, uint64_t addr,
                   uint8_t **out, size_t *len, size_t max_len,
                   pyspy_error *err) {
    *out = NULL;
    *len = 0;
    pyspy_py_type t;
    if (pyspy_py_type_of(src, py, addr, &t, err) < 0)
        return -1;
    if (t.kind != PYSPY_OBJ_BYTES)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "object at 0x%" PRIx64 " is a %s, not bytes",
                               addr, t.name);
    const pyspy_py_layout *l = &py->layout;
    int64_t size;
    if (pyspy_py_read_i64(src, addr + (uint64_t)l->var_ob_size, &size, err) < 0)
        return -1;
    if (size < 0 || size > (int64_t)1 << 40)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "bytes at 0x%" PRIx64 ": bad size %" PRId64,
                               addr, size);
    int32_t sval = l->str == PYSPY_STR_PY2 ? l->py2_str_sval : l->bytes_sval;
    size_t n = (size_t)size < max_len ? (size_t)size : max_len;
    uint8_t *buf = malloc(n + 1);
    if (!buf)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    if (n && pyspy_memsrc_read(src, addr + (uint64_t)sval, buf, n, err) < 0) {
        free(buf);
        return -1;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}
