/* Line tables of every kind: co_lnotab with signed (3.6-3.9) and unsigned
 * (2.7) deltas, 3.10's co_linetable and 3.11+'s location table. Input:
 * u8 kind (low two bits), i32 firstlineno, i64 lasti, then the table
 * (seeds: every code object's table the walks of the fixtures read,
 * seedgen lines). Each decoder must stay inside the table and give no
 * negative line; the walker's memoised lookup must answer as the decoder
 * does for every instruction offset swept. */
#include "analyze/walk/internal.h"
#include "analyze/walk/line_table.h"
#include "tests/fuzz/fuzz_common.h"

#include <stdio.h>

#define SWEEP 8

static const struct {
    pyspy_lines_kind kind;
    bool unsigned_deltas;
} kinds[4] = {{PYSPY_LINES_LNOTAB, false},
              {PYSPY_LINES_LNOTAB, true},
              {PYSPY_LINES_LINETABLE310, false},
              {PYSPY_LINES_LOCATIONS311, false}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 13)
        return 0;
    int k = data[0] & 3;
    int first = (int)(int32_t)pyspy_fuzz_le(data + 1, 4);
    int64_t lasti = (int64_t)pyspy_fuzz_le(data + 5, 8);
    const uint8_t *tab = data + 13;
    size_t len = size - 13;
    int line = pyspy_line_for(kinds[k].kind, kinds[k].unsigned_deltas, 2, tab,
                              len, first, lasti);
    if (line < 0)
        abort();
    if (lasti < 0 && line != (first > 0 ? first : 0))
        abort();
    pyspy_python py;
    memset(&py, 0, sizeof py);
    py.layout.lines = kinds[k].kind;
    py.layout.lnotab_unsigned_deltas = kinds[k].unsigned_deltas;
    py.layout.code_unit_size = 2;
    pyspy_code_info c = {.valid = true,
                         .firstlineno = first,
                         .linetable = (uint8_t *)tab,
                         .linetable_len = len};
    /* Offsets past the table's reach all answer alike: sweep up to a
     * little beyond what len entries can cover, twice so the memo both
     * hits and evicts. */
    int64_t reach = (int64_t)len * 16 + 16;
    int64_t step = reach / SWEEP + 1;
    for (int round = 0; round < 2; round++)
        for (int64_t at = -2; at <= reach; at += step)
            for (int again = 0; again < 2; again++) {
                int want =
                    pyspy_line_for(kinds[k].kind, kinds[k].unsigned_deltas, 2,
                                   tab, len, first, at);
                if (want < 0 || pyspy_code_line(&py, &c, at) != want)
                    abort();
            }
    return 0;
}
