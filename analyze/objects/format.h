/* Pure formatting used by the object reprs (analyze/objects/format.c): a
 * bounded string builder, UTF-8, Python's float repr, str/bytes quoting
 * and escaping, and int digits to decimal. No target memory here, so all
 * of it is unit-tested directly (tests/unit/test_repr_format.c). */
#ifndef PYSPY_ANALYZE_PY_FORMAT_H
#define PYSPY_ANALYZE_PY_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Appends stop at limit characters (UTF-8 sequences, never split; the
 * text is then marked truncated), since py-spy's bounds count characters;
 * an allocation failure also marks it. */
typedef struct pyspy_sbuf {
    char *s;
    size_t len, cap, limit;
    size_t chars; /* characters in s */
    bool truncated;
} pyspy_sbuf;

void pyspy_sbuf_init(pyspy_sbuf *b, size_t limit);
void pyspy_sbuf_put(pyspy_sbuf *b, const char *s, size_t n);
void pyspy_sbuf_puts(pyspy_sbuf *b, const char *s);
void pyspy_sbuf_printf(pyspy_sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Returns the malloc'd NUL-terminated text (never NULL unless out of
 * memory) and resets b. */
char *pyspy_sbuf_take(pyspy_sbuf *b);

/* UTF-8 of one code point (surrogates and out-of-range become U+FFFD);
 * returns the byte count (1-4). */
size_t pyspy_utf8_put(uint32_t cp, char out[4]);
/* Decodes UTF-8, invalid sequences as U+FFFD; returns code points
 * written (at most max). */
size_t pyspy_utf8_decode(const uint8_t *s, size_t n, uint32_t *cps, size_t max);

/* Python's repr(float): shortest round-trip digits, "inf", "nan",
 * exponent form below 1e-4 and from 1e16. out needs 32 bytes. */
void pyspy_fmt_float(double v, char *out, size_t outsz);
/* The same for a value held in a narrower float (bits 16 or 32, as numpy's
 * float16 and float32): the fewest digits that read back as that float,
 * as numpy's repr and py-spy show them (0.1, not 0.10000000149011612). */
void pyspy_fmt_float_bits(double v, int bits, char *out, size_t outsz);

/* unicodedata-free approximation of str.isprintable() for one char. */
bool pyspy_unicode_printable(uint32_t cp);

typedef enum {
    PYSPY_QUOTE_STR3 = 0, /* 3.x str: non-ASCII printable kept */
    PYSPY_QUOTE_UNICODE2, /* 2.7 unicode: u'', all non-ASCII escaped */
    PYSPY_QUOTE_BYTES3,   /* 3.x bytes: b'' */
    PYSPY_QUOTE_STR2,     /* 2.7 str: '' with bytes escaping */
    /* py-spy's locals: "", ' shown as \" and a newline as \n, other
     * text as it is except control characters, which are \xNN so that a
     * hostile string cannot drive the terminal */
    PYSPY_QUOTE_PYSPY
} pyspy_quote_style;

/* Appends a quoted literal of cps (values <= 0xff for the bytes styles);
 * truncated adds "..." before the closing quote (more text exists). */
void pyspy_fmt_quoted(pyspy_sbuf *b, const uint32_t *cps, size_t n,
                      bool truncated, pyspy_quote_style style);

/* Decimal text of a magnitude given as little-endian digits of `bits`
 * bits each (CPython's ob_digit), with '-' when negative. malloc'd. */
char *pyspy_fmt_digits_decimal(const uint32_t *digits, size_t ndigits, int bits,
                               bool negative);

#endif
