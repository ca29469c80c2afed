/* int objects: 3.x int (digits with the sign in ob_size, or in lv_tag
 * from 3.12), 2.7 int (a C long) and long, bool. Big values are
 * converted to decimal here, exactly. */
#include "analyze/objects/format.h"
#include "analyze/objects/objects.h"
#include "analyze/objects/object_layout.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ~37,000 decimal digits: far past anything a repr shows. */
#define LONG_MAX_DIGITS 4096

/* Sign (-1, 0, 1) and digit count of a multi-digit int. */
static int long_header(pyspy_memsrc *src, const pyspy_python *py, uint64_t addr,
                       int *sign, uint64_t *ndigits, pyspy_error *err) {
    const pyspy_py_layout *l = &py->layout;
    if (l->long_lv_tag >= 0) {
        uint64_t tag;
        if (pyspy_py_read_u64(src, addr + (uint64_t)l->long_lv_tag, &tag, err) <
            0)
            return -1;
        if (l->long_tag_ndigits_shift < 0 || l->long_tag_ndigits_shift > 8 ||
            l->long_tag_sign_mask < 0)
            return pyspy_error_set(err, PYSPY_E_UNSUPPORTED,
                                   "lv_tag format unknown for %d.%d", py->major,
                                   py->minor);
        uint64_t s = tag & (uint64_t)l->long_tag_sign_mask;
        if (s == (uint64_t)l->long_tag_sign_zero)
            *sign = 0;
        else if (s == (uint64_t)l->long_tag_sign_negative)
            *sign = -1;
        else if (s == 0)
            *sign = 1;
        else
            return pyspy_error_set(err, PYSPY_E_FORMAT,
                                   "int at 0x%" PRIx64 ": bad lv_tag", addr);
        *ndigits = tag >> l->long_tag_ndigits_shift;
        if (*sign == 0)
            *ndigits = 0;
    } else {
        int64_t size;
        if (pyspy_py_read_i64(src, addr + (uint64_t)l->var_ob_size, &size,
                              err) < 0)
            return -1;
        *sign = size > 0 ? 1 : size < 0 ? -1 : 0;
        *ndigits = size < 0 ? (uint64_t)0 - (uint64_t)size : (uint64_t)size;
    }
    if (*ndigits > LONG_MAX_DIGITS)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "int at 0x%" PRIx64 ": %" PRIu64
                               " digits is too many",
                               addr, *ndigits);
    return 0;
}

/* The digits, widened to uint32 whatever the build's digit size. */
static int read_digits(pyspy_memsrc *src, const pyspy_python *py, uint64_t addr,
                       uint64_t nd, uint32_t **digits, pyspy_error *err) {
    const pyspy_py_layout *l = &py->layout;
    size_t width = (size_t)l->long_digit_size;
    if ((width != 2 && width != 4) || l->long_digit_bits < 1 ||
        (size_t)l->long_digit_bits > width * 8 - 1)
        return pyspy_error_set(err, PYSPY_E_UNSUPPORTED,
                               "int digits of %d bits in %d bytes",
                               l->long_digit_bits, l->long_digit_size);
    *digits = malloc((nd ? nd : 1) * sizeof **digits);
    if (!*digits)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    if (nd && pyspy_memsrc_read(src, addr + (uint64_t)l->long_digits, *digits,
                                nd * width, err) < 0) {
        free(*digits);
        *digits = NULL;
        return -1;
    }
    if (width == 2) /* in place, from the end: each uint16 to a uint32 */
        for (uint64_t i = nd; i-- > 0;) {
            uint16_t d;
            memcpy(&d, (uint8_t *)*digits + i * 2, 2);
            (*digits)[i] = d;
        }
    return 0;
}

int pyspy_py_int_value(pyspy_memsrc *src, const pyspy_python *py, uint64_t addr,
                       int64_t *out, pyspy_error *err) {
    pyspy_py_type t;
    if (pyspy_py_type_of(src, py, addr, &t, err) < 0)
        return -1;
    if (t.kind == PYSPY_OBJ_PY2INT ||
        (t.kind == PYSPY_OBJ_BOOL && py->layout.builtins == PYSPY_BUILTINS_PY2))
        return pyspy_py_read_i64(src, addr + (uint64_t)py->layout.py2_int_ival,
                                 out, err);
    if (t.kind != PYSPY_OBJ_INT && t.kind != PYSPY_OBJ_BOOL)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "object at 0x%" PRIx64 " is a %s, not an int",
                               addr, t.name);
    int sign;
    uint64_t nd;
    if (long_header(src, py, addr, &sign, &nd, err) < 0)
        return -1;
    if ((uint64_t)py->layout.long_digit_bits * nd > 63)
        return pyspy_error_set(err, PYSPY_E_FORMAT, "int too large");
    uint32_t *d;
    if (read_digits(src, py, addr, nd, &d, err) < 0)
        return -1;
    uint64_t v = 0;
    for (uint64_t i = nd; i-- > 0;)
        v = (v << py->layout.long_digit_bits) |
            (d[i] & ((1u << py->layout.long_digit_bits) - 1));
    free(d);
    *out = sign < 0 ? -(int64_t)v : (int64_t)v;
    return 0;
}

char *pyspy_py_int_text(pyspy_memsrc *src, const pyspy_python *py,
                        uint64_t addr, pyspy_error *err) {
    pyspy_py_type t;
    if (pyspy_py_type_of(src, py, addr, &t, err) < 0)
        return NULL;
    bool py2 = py->layout.builtins == PYSPY_BUILTINS_PY2;
    if (t.kind == PYSPY_OBJ_PY2INT || (t.kind == PYSPY_OBJ_BOOL && py2)) {
        int64_t v;
        if (pyspy_py_read_i64(src, addr + (uint64_t)py->layout.py2_int_ival, &v,
                              err) < 0)
            return NULL;
        if (t.kind == PYSPY_OBJ_BOOL)
            return strdup(v ? "True" : "False");
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRId64, v);
        return strdup(buf);
    }
    if (t.kind != PYSPY_OBJ_INT && t.kind != PYSPY_OBJ_BOOL) {
        pyspy_error_set(err, PYSPY_E_FORMAT,
                        "object at 0x%" PRIx64 " is a %s, not an int", addr,
                        t.name);
        return NULL;
    }
    int sign;
    uint64_t nd;
    uint32_t *d;
    if (long_header(src, py, addr, &sign, &nd, err) < 0 ||
        read_digits(src, py, addr, nd, &d, err) < 0)
        return NULL;
    char *dec = pyspy_fmt_digits_decimal(d, (size_t)nd,
                                         py->layout.long_digit_bits, sign < 0);
    free(d);
    if (!dec) {
        pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        return NULL;
    }
    if (t.kind == PYSPY_OBJ_BOOL) {
        bool v = strcmp(dec, "0") != 0;
        free(dec);
        return strdup(v ? "True" : "False");
    }
    if (py2) { /* 2.7 long's repr ends in L */
        size_t n = strlen(dec);
        char *s = realloc(dec, n + 2);
        if (!s) {
            free(dec);
            return NULL;
        }
        s[n] = 'L';
        s[n + 1] = '\0';
        return s;
    }
    return dec;
}
