/* The exact version of the interpreter in a target, read from the target
 * itself; the file name is only the last resort (and gives no micro). */
#include "analyze/cpython/find.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

int pyspy_pyver_from_hex(uint64_t hex, pyspy_pyver *v) {
    int major = (int)((hex >> 24) & 0xff), minor = (int)((hex >> 16) & 0xff);
    int micro = (int)((hex >> 8) & 0xff), level = (int)((hex >> 4) & 0xf);
    int serial = (int)(hex & 0xf);
    if (hex >> 32 || major < 2 || major > 3 || minor > 99 || micro > 99)
        return -1;
    const char *tag = level == 0xa   ? "a"
                      : level == 0xb ? "b"
                      : level == 0xc ? "rc"
                      : level == 0xf ? ""
                                     : NULL;
    if (!tag)
        return -1;
    v->major = major;
    v->minor = minor;
    v->micro = micro;
    if (*tag)
        snprintf(v->version, sizeof v->version, "%d.%d.%d%s%d", major, minor,
                 micro, tag, serial);
    else
        snprintf(v->version, sizeof v->version, "%d.%d.%d", major, minor,
                 micro);
    return 0;
}

static size_t digits(const char *s, size_t len, int *out) {
    size_t i = 0;
    int n = 0;
    while (i < len && i < 3 && isdigit((unsigned char)s[i]))
        n = n * 10 + (s[i++] - '0');
    if (i == 0 || (i < len && isdigit((unsigned char)s[i])))
        return 0;
    *out = n;
    return i;
}

size_t pyspy_pyver_parse(const char *s, size_t len, pyspy_pyver *v) {
    int nums[3];
    size_t i = 0;
    for (int k = 0; k < 3; k++) {
        if (k > 0) {
            if (i >= len || s[i] != '.')
                return 0;
            i++;
        }
        size_t d = digits(s + i, len - i, &nums[k]);
        if (!d)
            return 0;
        i += d;
    }
    if (nums[0] < 2 || nums[0] > 3)
        return 0;
    size_t start_suffix = i;
    if (i < len && (s[i] == 'a' || s[i] == 'b'))
        i++;
    else if (i + 1 < len && s[i] == 'r' && s[i + 1] == 'c')
        i += 2;
    if (i > start_suffix) {
        int serial;
        size_t d = digits(s + i, len - i, &serial);
        if (!d)
            return 0;
        i += d;
    }
    if (i < len && s[i] == '+') /* Debian's "2.7.18+" development marker */
        i++;
    if (i >= sizeof v->version)
        return 0;
    v->major = nums[0];
    v->minor = nums[1];
    v->micro = nums[2];
    memcpy(v->version, s, i);
    v->version[i] = 0;
    /* platform.python_version() drops the '+'. */
    if (i > 0 && v->version[i - 1] == '+')
        v->version[i - 1] = 0;
    return i;
}

int pyspy_pyver_from_name(const char *path, pyspy_pyver *v) {
    if (!path)
        return -1;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *p = strstr(base, "python");
    if (!p)
        return -1;
    p += 6;
    int major, minor;
    size_t d = digits(p, strlen(p), &major);
    if (!d || p[d] != '.' || (major != 2 && major != 3))
        return -1;
    p += d + 1;
    d = digits(p, strlen(p), &minor);
    if (!d)
        return -1;
    p += d;
    bool ft = *p == 't';
    if (ft)
        p++;
    if (*p == 'm' || *p == 'd' || *p == 'u') /* 3.6m, debug, 2.7 wide */
        p++;
    if (*p && *p != '.' && *p != '-' && *p != '_')
        return -1;
    v->major = major;
    v->minor = minor;
    v->micro = -1;
    v->free_threaded = ft;
    snprintf(v->version, sizeof v->version, "%d.%d", major, minor);
    return 0;
}

typedef struct {
    pyspy_pyver *v;
    int want_major, want_minor; /* -1: any */
    bool rodata;                /* NUL version NUL, else the Py_GetVersion
                                   buffer: version " (" */
    bool found;
} str_scan;

static bool plausible(const str_scan *c, const pyspy_pyver *v) {
    if (c->want_major >= 0)
        return v->major == c->want_major && v->minor == c->want_minor;
    return (v->major == 2 && v->minor == 7) ||
           (v->major == 3 && v->minor >= 6 && v->minor <= 30);
}

static int scan_fn(void *ctx, uint64_t addr, const uint8_t *buf, size_t len) {
    str_scan *c = ctx;
    (void)addr;
    const char *s = (const char *)buf;
    for (size_t i = 0; i + 8 < len; i++) {
        if ((s[i] != '2' && s[i] != '3') || s[i + 1] != '.' ||
            (i > 0 && s[i - 1] != 0))
            continue;
        pyspy_pyver v = *c->v;
        size_t n = pyspy_pyver_parse(s + i, len - i, &v);
        if (!n || i + n + 2 > len)
            continue;
        bool ok =
            c->rodata ? s[i + n] == 0 : s[i + n] == ' ' && s[i + n + 1] == '(';
        if (!ok || !plausible(c, &v))
            continue;
        if (!c->rodata) {
            /* sys.version of free-threaded builds says so. */
            const char *rest = s + i + n;
            size_t rlen = strnlen(rest, len - i - n);
            if (memmem(rest, rlen, "free-threading", 14)) {
                v.free_threaded = true;
                v.ft_known = true;
            }
        }
        *c->v = v;
        c->found = true;
        return 1;
    }
    return 0;
}

int pyspy_python_version(pyspy_memsrc *src, pyspy_module *m, uint64_t runtime,
                         pyspy_pyver *v, pyspy_error *err) {
    memset(v, 0, sizeof *v);
    pyspy_pyver hint;
    memset(&hint, 0, sizeof hint);
    bool have_hint = m && pyspy_pyver_from_name(m->path, &hint) == 0;

    uint64_t dbg_version = 0;
    bool dbg_ft = false;
    bool have_dbg = runtime && pyspy_debug_offsets_header(
                                   src, runtime, &dbg_version, &dbg_ft) == 0;

    uint64_t addr = pyspy_module_api_symbol(m, "Py_Version", NULL);
    uint64_t hex = 0;
    pyspy_error e = {0};
    if (addr && pyspy_memsrc_read(src, addr, &hex, sizeof hex, &e) == 0 &&
        pyspy_pyver_from_hex(hex, v) == 0) {
        v->source = "Py_Version";
    } else if (have_dbg && pyspy_pyver_from_hex(dbg_version, v) == 0) {
        v->source = "_Py_DebugOffsets";
    } else {
        str_scan c = {v, have_hint ? hint.major : -1,
                      have_hint ? hint.minor : -1, false, false};
        pyspy_scan_module(src, m, PYSPY_PERM_R | PYSPY_PERM_W, 0, 64,
                          (uint64_t)64 << 20, scan_fn, &c);
        if (c.found) {
            v->source = "version string";
        } else {
            c.rodata = true;
            pyspy_scan_module(src, m, PYSPY_PERM_R, PYSPY_PERM_W | PYSPY_PERM_X,
                              64, (uint64_t)64 << 20, scan_fn, &c);
            if (c.found)
                v->source = "read-only data";
        }
        if (!c.found) {
            if (!have_hint)
                return pyspy_error_set(err, PYSPY_E_NOPYTHON,
                                       "no Python version found in %s",
                                       m && m->path ? m->path : "the target");
            *v = hint;
            v->source = "file name";
        }
    }
    if (have_dbg) {
        v->free_threaded = dbg_ft;
        v->ft_known = true;
    } else if (!v->ft_known && have_hint && hint.major == v->major &&
               hint.minor == v->minor) {
        v->free_threaded = hint.free_threaded;
    }
    return 0;
}
