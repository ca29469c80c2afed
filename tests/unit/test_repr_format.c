/* Pure formatting behind object reprs: Python's float repr, str/bytes
 * quoting, big-int decimal conversion, UTF-8, the bounded builder. */
#include "analyze/objects/format.h"
#include "testlib.h"

#include <math.h>
#include <stdlib.h>

static char fbuf[64];
static const char *f(double v) {
    pyspy_fmt_float(v, fbuf, sizeof fbuf);
    return fbuf;
}

TEST(float_repr) {
    CHECK_STR(f(0.1), "0.1");
    CHECK_STR(f(1.5), "1.5");
    CHECK_STR(f(0.0), "0.0");
    CHECK_STR(f(-0.0), "-0.0");
    CHECK_STR(f(1.0), "1.0");
    CHECK_STR(f(-2.0), "-2.0");
    CHECK_STR(f(1e16), "1e+16");
    CHECK_STR(f(1e15), "1000000000000000.0");
    CHECK_STR(f(123456789012345678.0), "1.2345678901234568e+17");
    CHECK_STR(f(0.0001), "0.0001");
    CHECK_STR(f(0.00001), "1e-05");
    CHECK_STR(f(1.5e-7), "1.5e-07");
    CHECK_STR(f(1e100), "1e+100");
    CHECK_STR(f(1.0 / 3), "0.3333333333333333");
    CHECK_STR(f(0.1 + 0.2), "0.30000000000000004");
    CHECK_STR(f(2.5e-308), "2.5e-308");
    CHECK_STR(f(5e-324), "5e-324");
    CHECK_STR(f(1.7976931348623157e308), "1.7976931348623157e+308");
    CHECK_STR(f(123.456), "123.456");
    CHECK_STR(f(INFINITY), "inf");
    CHECK_STR(f(-INFINITY), "-inf");
    CHECK_STR(f(NAN), "nan");
}

static char *q(const char *utf8, pyspy_quote_style style, bool cut) {
    uint32_t cps[256];
    size_t n = pyspy_utf8_decode((const uint8_t *)utf8, strlen(utf8), cps, 256);
    pyspy_sbuf b;
    pyspy_sbuf_init(&b, 1000);
    pyspy_fmt_quoted(&b, cps, n, cut, style);
    return pyspy_sbuf_take(&b);
}

static char *qcp(const uint32_t *cps, size_t n, pyspy_quote_style style) {
    pyspy_sbuf b;
    pyspy_sbuf_init(&b, 1000);
    pyspy_fmt_quoted(&b, cps, n, false, style);
    return pyspy_sbuf_take(&b);
}

#define CHECK_Q(expr, want)                                                    \
    do {                                                                       \
        char *s_ = (expr);                                                     \
        CHECK_STR(s_, want);                                                   \
        free(s_);                                                              \
    } while (0)

TEST(str_quoting) {
    CHECK_Q(q("", PYSPY_QUOTE_STR3, false), "''");
    /* py-spy's locals: "", an apostrophe as \", a newline as \n, a cut
     * marked inside the quotes */
    CHECK_Q(q("zzz", PYSPY_QUOTE_PYSPY, false), "\"zzz\"");
    CHECK_Q(q("it's", PYSPY_QUOTE_PYSPY, false), "\"it\\\"s\"");
    CHECK_Q(q("a\"b\nc\\", PYSPY_QUOTE_PYSPY, false), "\"a\"b\\nc\\\"");
    CHECK_Q(q("\x1b[2J", PYSPY_QUOTE_PYSPY, false), "\"\\x1b[2J\"");
    CHECK_Q(q("caf\xc3\xa9", PYSPY_QUOTE_PYSPY, true), "\"caf\xc3\xa9...\"");
    CHECK_Q(q("ascii", PYSPY_QUOTE_STR3, false), "'ascii'");
    CHECK_Q(q("it's", PYSPY_QUOTE_STR3, false), "\"it's\"");
    CHECK_Q(q("'\"", PYSPY_QUOTE_STR3, false), "'\\'\"'");
    CHECK_Q(q("a\\b", PYSPY_QUOTE_STR3, false), "'a\\\\b'");
    CHECK_Q(q("\n\t\r\x01\x7f", PYSPY_QUOTE_STR3, false),
            "'\\n\\t\\r\\x01\\x7f'");
    CHECK_Q(q("latin-1 \xc3\xa9", PYSPY_QUOTE_STR3, false),
            "'latin-1 \xc3\xa9'");
    CHECK_Q(q("UCS-2 \xd0\x96", PYSPY_QUOTE_STR3, false), "'UCS-2 \xd0\x96'");
    CHECK_Q(q("UCS-4 \xf0\x9f\x98\x80", PYSPY_QUOTE_STR3, false),
            "'UCS-4 \xf0\x9f\x98\x80'");
    /* Non-printable non-ASCII: NBSP, soft hyphen, LINE SEPARATOR. */
    CHECK_Q(q("\xc2\xa0\xc2\xad\xe2\x80\xa8", PYSPY_QUOTE_STR3, false),
            "'\\xa0\\xad\\u2028'");
    uint32_t lone[] = {0xd800, 0xe0001};
    CHECK_Q(qcp(lone, 2, PYSPY_QUOTE_STR3), "'\\ud800\\U000e0001'");
    CHECK_Q(q("abc", PYSPY_QUOTE_STR3, true), "'abc...'");
}

TEST(py2_and_bytes_quoting) {
    CHECK_Q(
        q("caf\xc3\xa9 \xd0\x96 \xf0\x9f\x98\x80", PYSPY_QUOTE_UNICODE2, false),
        "u'caf\\xe9 \\u0416 \\U0001f600'");
    uint32_t bytes[] = {'b', 'y', 't', 'e', 's', 0, 0xff, '\''};
    CHECK_Q(qcp(bytes, 8, PYSPY_QUOTE_BYTES3), "b\"bytes\\x00\\xff'\"");
    CHECK_Q(qcp(bytes, 7, PYSPY_QUOTE_STR2), "'bytes\\x00\\xff'");
    CHECK_Q(qcp(bytes, 0, PYSPY_QUOTE_BYTES3), "b''");
}

static char *dec(const uint32_t *d, size_t n, bool neg) {
    return pyspy_fmt_digits_decimal(d, n, 30, neg);
}

TEST(bigint_decimal) {
    CHECK_Q(dec(NULL, 0, false), "0");
    uint32_t five[] = {5};
    CHECK_Q(dec(five, 1, true), "-5");
    /* 2**100 = digits (base 2**30) 0, 0, 0, 1<<10 */
    uint32_t p100[] = {0, 0, 0, 1u << 10};
    CHECK_Q(dec(p100, 4, false), "1267650600228229401496703205376");
    /* -(2**70) */
    uint32_t p70[] = {0, 0, 1u << 10};
    CHECK_Q(dec(p70, 3, true), "-1180591620717411303424");
    /* 2**64 - 1 = 0x3fffffff, 0x3fffffff, 0xf */
    uint32_t u64[] = {0x3fffffff, 0x3fffffff, 0xf};
    CHECK_Q(dec(u64, 3, false), "18446744073709551615");
    /* 10**9 exactly: chunk boundary with zero padding */
    uint32_t e9[] = {1000000000u & 0x3fffffff, 1000000000u >> 30};
    CHECK_Q(dec(e9, 2, false), "1000000000");
    /* leading zero digits are ignored */
    uint32_t z[] = {7, 0, 0};
    CHECK_Q(dec(z, 3, false), "7");
    /* 15-bit digits too */
    uint32_t d15[] = {0, 1};
    CHECK_Q(pyspy_fmt_digits_decimal(d15, 2, 15, false), "32768");
    /* 2**300: 91 decimal digits */
    uint32_t p300[11] = {0};
    p300[10] = 1;
    char *s = dec(p300, 11, false);
    CHECK(s && strlen(s) == 91);
    CHECK(s && strncmp(s,
                       "2037035976334486086268445688409378161051468393665936"
                       "250636140449354381299763336706183397376",
                       91) == 0);
    free(s);
}

TEST(utf8_roundtrip_and_invalid) {
    uint32_t cps[8];
    size_t n =
        pyspy_utf8_decode((const uint8_t *)"a\xc3\xa9\xff\xe2\x82", 6, cps, 8);
    CHECK(n == 4);
    CHECK(cps[0] == 'a' && cps[1] == 0xe9 && cps[2] == 0xfffd &&
          cps[3] == 0xfffd);
    char u[4];
    CHECK(pyspy_utf8_put(0x1f600, u) == 4 && (uint8_t)u[0] == 0xf0);
    CHECK(pyspy_utf8_put(0xd800, u) == 3 && (uint8_t)u[0] == 0xef);
}

TEST(sbuf_bounds) {
    pyspy_sbuf b;
    pyspy_sbuf_init(&b, 5);
    pyspy_sbuf_puts(&b, "abc");
    CHECK(!b.truncated);
    pyspy_sbuf_puts(&b, "defg");
    CHECK(b.truncated);
    char *s = pyspy_sbuf_take(&b);
    CHECK_STR(s, "abcde");
    free(s);
}

TEST_MAIN(T(float_repr), T(str_quoting), T(py2_and_bytes_quoting),
          T(bigint_decimal), T(utf8_roundtrip_and_invalid), T(sbuf_bounds))
