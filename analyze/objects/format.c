/* Pure formatting helpers for object reprs; see analyze/objects/format.h. */
#include "analyze/objects/format.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pyspy_sbuf_init(pyspy_sbuf *b, size_t limit) {
    memset(b, 0, sizeof *b);
    b->limit = limit;
}

static bool sbuf_grow(pyspy_sbuf *b, size_t need) {
    if (need + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s)
        return false;
    b->s = s;
    b->cap = cap;
    return true;
}

void pyspy_sbuf_put(pyspy_sbuf *b, const char *s, size_t n) {
    if (b->truncated)
        return;
    size_t fit = 0, chars = b->chars;
    for (; fit < n; fit++) {
        bool lead = ((uint8_t)s[fit] & 0xc0) != 0x80;
        if (lead && chars == b->limit) {
            b->truncated = true;
            break;
        }
        chars += lead;
    }
    n = fit;
    b->chars = chars;
    if (!sbuf_grow(b, b->len + n)) {
        b->truncated = true;
        return;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void pyspy_sbuf_puts(pyspy_sbuf *b, const char *s) {
    pyspy_sbuf_put(b, s, strlen(s));
}

void pyspy_sbuf_printf(pyspy_sbuf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    pyspy_sbuf_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

char *pyspy_sbuf_take(pyspy_sbuf *b) {
    char *s = b->s;
    if (!s)
        s = calloc(1, 1);
    b->s = NULL;
    b->len = b->cap = b->chars = 0;
    return s;
}

size_t pyspy_utf8_put(uint32_t cp, char out[4]) {
    if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        cp = 0xfffd;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

size_t pyspy_utf8_decode(const uint8_t *s, size_t n, uint32_t *cps,
                         size_t max) {
    size_t i = 0, k = 0;
    while (i < n && k < max) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            cps[k++] = c;
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            cps[k++] = 0xfffd;
            i++;
            continue;
        }
        size_t j = 1;
        for (; j < len && i + j < n && (s[i + j] & 0xc0) == 0x80; j++)
            cp = (cp << 6) | (s[i + j] & 0x3f);
        if (j < len || cp < min || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff)) {
            cps[k++] = 0xfffd;
            i += j;
            continue;
        }
        cps[k++] = cp;
        i += len;
    }
    return k;
}

/* Whether the digits in e read back as v held in a float of that width.
 * A half has 10 stored mantissa bits and no exponent below -14, so its
 * spacing at v is 2^(max(E, -14) - 10) for v in [2^E, 2^(E+1)). */
static bool reads_back(const char *e, double v, int bits) {
    if (bits == 32)
        return strtof(e, NULL) == (float)v;
    double r = strtod(e, NULL);
    if (bits == 16) {
        int ex;
        frexp(v, &ex);
        double ulp = ldexp(1, (ex - 1 < -14 ? -14 : ex - 1) - 10);
        return fabs(r - v) < ulp / 2;
    }
    return r == v;
}

void pyspy_fmt_float(double v, char *out, size_t outsz) {
    pyspy_fmt_float_bits(v, 64, out, outsz);
}

void pyspy_fmt_float_bits(double v, int bits, char *out, size_t outsz) {
    if (isnan(v)) {
        snprintf(out, outsz, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(out, outsz, v > 0 ? "inf" : "-inf");
        return;
    }
    /* Fewest significant digits that read back as the same double. */
    char e[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, v);
        if (reads_back(e, v, bits))
            break;
    }
    /* e is "[-]d[.ddd]e[+-]xx" */
    const char *s = e;
    bool neg = *s == '-';
    if (neg)
        s++;
    char digits[24];
    size_t nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9' && nd < sizeof digits - 1)
            digits[nd++] = *s;
    int exp = *s == 'e' ? atoi(s + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';

    char buf[64];
    size_t o = 0;
    if (neg)
        buf[o++] = '-';
    if (exp < -4 || exp >= 16) {
        buf[o++] = digits[0];
        if (nd > 1) {
            buf[o++] = '.';
            memcpy(buf + o, digits + 1, nd - 1);
            o += nd - 1;
        }
        snprintf(buf + o, sizeof buf - o, "e%c%02d", exp < 0 ? '-' : '+',
                 exp < 0 ? -exp : exp);
    } else {
        int decpt = exp + 1;
        if (decpt <= 0) {
            buf[o++] = '0';
            buf[o++] = '.';
            for (int i = 0; i < -decpt; i++)
                buf[o++] = '0';
            memcpy(buf + o, digits, nd);
            o += nd;
        } else if ((size_t)decpt >= nd) {
            memcpy(buf + o, digits, nd);
            o += nd;
            for (size_t i = nd; i < (size_t)decpt; i++)
                buf[o++] = '0';
            buf[o++] = '.';
            buf[o++] = '0';
        } else {
            memcpy(buf + o, digits, (size_t)decpt);
            o += (size_t)decpt;
            buf[o++] = '.';
            memcpy(buf + o, digits + decpt, nd - (size_t)decpt);
            o += nd - (size_t)decpt;
        }
        buf[o] = '\0';
    }
    snprintf(out, outsz, "%s", buf);
}

bool pyspy_unicode_printable(uint32_t cp) {
    /* Categories Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs other than space are
     * not printable; the common ranges of each. */
    static const uint32_t ranges[][2] = {
        {0x0000, 0x001f},   {0x007f, 0x00a0},   {0x00ad, 0x00ad},
        {0x0378, 0x0379},   {0x0600, 0x0605},   {0x061c, 0x061c},
        {0x06dd, 0x06dd},   {0x070f, 0x070f},   {0x1680, 0x1680},
        {0x180e, 0x180e},   {0x2000, 0x200f},   {0x2028, 0x202f},
        {0x205f, 0x206f},   {0x3000, 0x3000},   {0xd800, 0xf8ff},
        {0xfdd0, 0xfdef},   {0xfeff, 0xfeff},   {0xfff0, 0xfffb},
        {0xfffe, 0xffff},   {0x110bd, 0x110bd}, {0x1bca0, 0x1bca3},
        {0x1d173, 0x1d17a}, {0xe0000, 0xe0fff}, {0xf0000, 0x10ffff},
    };
    if (cp > 0x10ffff)
        return false;
    if ((cp & 0xfffe) == 0xfffe)
        return false;
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (cp >= ranges[i][0] && cp <= ranges[i][1])
            return false;
    return true;
}

/* py-spy replaces each ' by \" and each newline by \n, leaving " and \
 * alone, and marks a cut inside the quotes. */
static void quoted_pyspy(pyspy_sbuf *b, const uint32_t *cps, size_t n,
                         bool truncated) {
    pyspy_sbuf_puts(b, "\"");
    for (size_t i = 0; i < n && !b->truncated; i++) {
        uint32_t c = cps[i];
        if (c == '\'') {
            pyspy_sbuf_puts(b, "\\\"");
        } else if (c == '\n') {
            pyspy_sbuf_puts(b, "\\n");
        } else if (c < ' ' || c == 0x7f || (c >= 0x80 && c < 0xa0)) {
            pyspy_sbuf_printf(b, "\\x%02x", c);
        } else if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
            pyspy_sbuf_printf(b, "\\U%08x", c);
        } else {
            char u[4];
            pyspy_sbuf_put(b, u, pyspy_utf8_put(c, u));
        }
    }
    if (truncated)
        pyspy_sbuf_puts(b, "...");
    pyspy_sbuf_puts(b, "\"");
}

void pyspy_fmt_quoted(pyspy_sbuf *b, const uint32_t *cps, size_t n,
                      bool truncated, pyspy_quote_style style) {
    if (style == PYSPY_QUOTE_PYSPY) {
        quoted_pyspy(b, cps, n, truncated);
        return;
    }
    bool has_sq = false, has_dq = false;
    for (size_t i = 0; i < n; i++) {
        has_sq |= cps[i] == '\'';
        has_dq |= cps[i] == '"';
    }
    char q = has_sq && !has_dq ? '"' : '\'';
    if (style == PYSPY_QUOTE_UNICODE2)
        pyspy_sbuf_puts(b, "u");
    else if (style == PYSPY_QUOTE_BYTES3)
        pyspy_sbuf_puts(b, "b");
    pyspy_sbuf_put(b, &q, 1);
    bool keep_printable = style == PYSPY_QUOTE_STR3;
    for (size_t i = 0; i < n && !b->truncated; i++) {
        uint32_t c = cps[i];
        if (c == (uint32_t)q || c == '\\') {
            char e[2] = {'\\', (char)c};
            pyspy_sbuf_put(b, e, 2);
        } else if (c == '\t') {
            pyspy_sbuf_puts(b, "\\t");
        } else if (c == '\n') {
            pyspy_sbuf_puts(b, "\\n");
        } else if (c == '\r') {
            pyspy_sbuf_puts(b, "\\r");
        } else if (c < ' ' || c == 0x7f) {
            pyspy_sbuf_printf(b, "\\x%02x", c);
        } else if (c < 0x7f) {
            char ch = (char)c;
            pyspy_sbuf_put(b, &ch, 1);
        } else if (keep_printable && pyspy_unicode_printable(c)) {
            char u[4];
            pyspy_sbuf_put(b, u, pyspy_utf8_put(c, u));
        } else if (c <= 0xff) {
            pyspy_sbuf_printf(b, "\\x%02x", c);
        } else if (c <= 0xffff) {
            pyspy_sbuf_printf(b, "\\u%04x", c);
        } else {
            pyspy_sbuf_printf(b, "\\U%08x", c);
        }
    }
    if (truncated)
        pyspy_sbuf_puts(b, "...");
    pyspy_sbuf_put(b, &q, 1);
}

char *pyspy_fmt_digits_decimal(const uint32_t *digits, size_t ndigits, int bits,
                               bool negative) {
    if (bits < 1 || bits > 31)
        return NULL;
    while (ndigits > 0 && digits[ndigits - 1] == 0)
        ndigits--;
    if (ndigits == 0)
        return strdup("0");
    uint32_t *work = malloc(ndigits * sizeof *work);
    /* Each base-2^bits digit adds at most bits*log10(2) < 10 decimal
     * digits; chunks are base 10^9. */
    size_t maxchunks = ndigits * (size_t)bits / 29 + 2;
    uint32_t *chunks = malloc(maxchunks * sizeof *chunks);
    if (!work || !chunks) {
        free(work);
        free(chunks);
        return NULL;
    }
    memcpy(work, digits, ndigits * sizeof *work);
    size_t n = ndigits, nchunks = 0;
    uint32_t mask = (uint32_t)((1UL << bits) - 1);
    while (n > 0 && nchunks < maxchunks) {
        uint64_t rem = 0;
        for (size_t i = n; i-- > 0;) {
            uint64_t cur = (rem << bits) | (work[i] & mask);
            work[i] = (uint32_t)(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        chunks[nchunks++] = (uint32_t)rem;
        while (n > 0 && work[n - 1] == 0)
            n--;
    }
    char *out = malloc(nchunks * 9 + 2);
    if (out) {
        size_t o = 0;
        if (negative)
            out[o++] = '-';
        o += (size_t)sprintf(out + o, "%u", chunks[nchunks - 1]);
        for (size_t i = nchunks - 1; i-- > 0;)
            o += (size_t)sprintf(out + o, "%09u", chunks[i]);
    }
    free(work);
    free(chunks);
    return out;
}
