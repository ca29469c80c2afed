/* Line-table decoders against tables compiled by the real interpreters
 * (3.8, 3.10, 3.11, 3.12) from one function whose lines go backwards, with
 * the lines those interpreters' own co_lines()/dis reported per offset. */
#include "analyze/walk/line_table.h"
#include "testlib.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* def f(a):                      line 2
 *     x = (a +                   3
 *          1)                    4
 *     y = [i                     5
 *          for i in range(3)]    6
 *     return g(                  7
 *         x,                     8
 *         y)                     9 */
static const uint8_t lnotab38[] = {0, 1,   2, 1, 2, 255, 4, 2, 6, 1,
                                   6, 255, 6, 2, 2, 1,   2, 1, 2, 254};

TEST(lnotab_signed_deltas) {
    /* offset -> line, from dis.findlinestarts on 3.8.18 */
    static const int want[][2] = {{0, 3},  {2, 4},  {4, 3},  {6, 3},
                                  {8, 5},  {14, 6}, {20, 5}, {26, 7},
                                  {28, 8}, {30, 9}, {32, 7}, {34, 7}};
    for (size_t i = 0; i < N(want); i++)
        CHECK(pyspy_line_lnotab(lnotab38, sizeof lnotab38, 2, want[i][0],
                                true) == want[i][1]);
}

TEST(lnotab_unsigned_deltas_27) {
    /* 2.7: a 200-line jump is one unsigned byte, not -56. */
    static const uint8_t tab[] = {0, 1, 6, 200, 4, 255, 0, 10};
    CHECK(pyspy_line_lnotab(tab, sizeof tab, 10, 0, false) == 11);
    CHECK(pyspy_line_lnotab(tab, sizeof tab, 10, 6, false) == 211);
    CHECK(pyspy_line_lnotab(tab, sizeof tab, 10, 10, false) == 476);
    CHECK(pyspy_line_lnotab(tab, sizeof tab, 100, 6, true) == 101 - 56);
}

TEST(lnotab_odd_and_empty) {
    static const uint8_t tab[] = {0, 1, 4};
    CHECK(pyspy_line_lnotab(tab, sizeof tab, 5, 100, true) == 6);
    CHECK(pyspy_line_lnotab(NULL, 0, 5, 100, true) == 5);
}

static const uint8_t linetable310[] = {2, 1,   2, 1, 4, 255, 6, 2, 6, 1,
                                       6, 255, 2, 2, 2, 1,   2, 1, 4, 254};

TEST(linetable_310) {
    /* co_lines() on 3.10.13, every code unit */
    static const int want[] = {3, 4, 3, 3, 5, 5, 5, 6, 6,
                               6, 5, 5, 5, 7, 8, 9, 7, 7};
    for (size_t i = 0; i < N(want); i++)
        CHECK(pyspy_line_linetable310(linetable310, sizeof linetable310, 2,
                                      (int64_t)i * 2) == want[i]);
    /* past the table: no line */
    CHECK(pyspy_line_linetable310(linetable310, sizeof linetable310, 2, 36) ==
          0);
}

TEST(linetable_310_no_line_and_empty_ranges) {
    /* an empty range with a line delta, then a "no line" range */
    static const uint8_t tab[] = {0, 3, 4, 1, 2, (uint8_t)-128, 2, 1};
    CHECK(pyspy_line_linetable310(tab, sizeof tab, 10, 0) == 14);
    CHECK(pyspy_line_linetable310(tab, sizeof tab, 10, 2) == 14);
    CHECK(pyspy_line_linetable310(tab, sizeof tab, 10, 4) == 0);
    CHECK(pyspy_line_linetable310(tab, sizeof tab, 10, 6) == 15);
}

static const uint8_t locations311[] = {
    128, 0,  216, 9,  10,  216, 9,   10, 241, 3,   1,   10, 11,  128, 65,
    240, 4,  1,   9,  28,  240, 0,   1,  9,   28,  221, 18, 23,  152, 1,
    145, 40, 148, 40, 240, 3,   1,   9,  28,  241, 0,   1,  9,   28,  244,
    0,   1,  9,   28, 128, 65,  229, 11, 12,  216, 8,   9,  216, 8,   9,
    241, 5,  2,   12, 11,  244, 0,   2,  12,  11,  240, 0,  2,   5,   11};

TEST(locations_311) {
    /* co_lines() on 3.11.2, every code unit (offset / 2) */
    static const int want[] = {2, 3, 4, 3, 3, 3, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6,
                               6, 6, 6, 6, 6, 6, 5, 5, 5, 5, 5, 5, 5, 5, 5, 7,
                               7, 7, 7, 7, 7, 8, 9, 7, 7, 7, 7, 7, 7, 7, 7};
    for (size_t i = 0; i < N(want); i++)
        CHECK(pyspy_line_locations311(locations311, sizeof locations311, 2,
                                      (int64_t)i * 2, 2) == want[i]);
    CHECK(pyspy_line_locations311(locations311, sizeof locations311, 2, 1000,
                                  2) == 0);
}

static const uint8_t locations312[] = {
    128, 0,  216, 9,   10,  216, 9,  10,  241, 3,   1,   10, 11,  128, 65,
    244, 6,  0,   19,  24,  152, 1,  147, 40,  246, 3,   1,  9,   28,  216,
    13,  14, 242, 3,   0,   10,  11, 240, 0,   1,   9,   28, 128, 65,  240,
    0,   1,  9,   28,  228, 11,  12, 216, 8,   9,   216, 8,  9,   243, 5,
    2,   12, 11,  240, 0,   2,   5,  11,  249, 242, 5,   1,  9,   28};

TEST(locations_312_with_no_location_entry) {
    /* co_lines() on 3.12.1; -1 marks the "no location" range (84-87) */
    static const int want[] = {2, 3, 4, 3, 3, 3, 6, 6, 6, 6, 6,  6,  6, 6, 6, 6,
                               5, 5, 5, 5, 5, 5, 5, 6, 5, 5, 5,  5,  5, 5, 7, 7,
                               7, 7, 7, 8, 9, 7, 7, 7, 7, 7, -1, -1, 5, 5, 5};
    for (size_t i = 0; i < N(want); i++)
        CHECK(pyspy_line_locations311(locations312, sizeof locations312, 2,
                                      (int64_t)i * 2,
                                      2) == (want[i] < 0 ? 0 : want[i]));
}

TEST(locations_hostile) {
    /* a continuation byte where an entry should start */
    static const uint8_t bad[] = {0x05, 0x01};
    CHECK(pyspy_line_locations311(bad, sizeof bad, 7, 0, 2) == 0);
    /* a varint that runs off the end */
    static const uint8_t cut[] = {0x80 | (13 << 3), 0x7f};
    CHECK(pyspy_line_locations311(cut, sizeof cut, 7, 0, 2) == 0);
    /* an endless varint */
    uint8_t endless[64];
    endless[0] = 0x80 | (13 << 3);
    for (size_t i = 1; i < sizeof endless; i++)
        endless[i] = 0x7f;
    CHECK(pyspy_line_locations311(endless, sizeof endless, 7, 0, 2) == 0);
    /* signed varint: line delta -3 (u = 7) */
    static const uint8_t neg[] = {0x80 | (13 << 3), 7};
    CHECK(pyspy_line_locations311(neg, sizeof neg, 10, 0, 2) == 7);
    /* Deltas near 2^62 (found by tests/fuzz/fuzz_line_table): no line,
     * and no overflow of the running line. */
    uint8_t huge[2 * 12];
    for (size_t e = 0; e < 2; e++) {
        uint8_t *p = huge + e * 12;
        p[0] = 0x80 | (13 << 3);
        for (size_t i = 1; i < 11; i++)
            p[i] = 0x7f;
        p[11] = 0x3e;
    }
    CHECK(pyspy_line_locations311(huge, sizeof huge, 7, 4, 2) == 0);
}

TEST(dispatch_negative_lasti_is_first_line) {
    CHECK(pyspy_line_for(PYSPY_LINES_LOCATIONS311, false, 2, locations311,
                         sizeof locations311, 2, -2) == 2);
    CHECK(pyspy_line_for(PYSPY_LINES_LNOTAB, false, 2, lnotab38,
                         sizeof lnotab38, 2, 32) == 7);
    CHECK(pyspy_line_for(PYSPY_LINES_LNOTAB, true, 2, lnotab38, sizeof lnotab38,
                         2, 32) ==
          2 + 1 + 1 + 255 + 2 + 1 + 255 + 2 + 1 + 1 + 254);
    CHECK(pyspy_line_for(PYSPY_LINES_LINETABLE310, false, 2, linetable310,
                         sizeof linetable310, 2, 30) == 9);
}

TEST_MAIN(T(lnotab_signed_deltas), T(lnotab_unsigned_deltas_27),
          T(lnotab_odd_and_empty), T(linetable_310),
          T(linetable_310_no_line_and_empty_ranges), T(locations_311),
          T(locations_312_with_no_location_entry), T(locations_hostile),
          T(dispatch_negative_lasti_is_first_line))
