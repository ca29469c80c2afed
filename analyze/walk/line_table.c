/* Line-table decoders. Each follows the interpreter's own address-to-line
 * rule for its format (Objects/lnotab_notes.txt, Objects/locations.md), so
 * the line shown is the one the interpreter's f_lineno would give. */
#include "analyze/walk/line_table.h"

int pyspy_line_lnotab(const uint8_t *tab, size_t len, int firstlineno,
                      int64_t lasti, bool signed_deltas) {
    int64_t line = firstlineno;
    int64_t addr = 0;
    for (size_t i = 0; i + 1 < len; i += 2) {
        addr += tab[i];
        if (addr > lasti)
            break;
        line += signed_deltas ? (int64_t)(int8_t)tab[i + 1] : tab[i + 1];
    }
    if (line < 0 || line > INT32_MAX)
        return 0;
    return (int)line;
}

int pyspy_line_linetable310(const uint8_t *tab, size_t len, int firstlineno,
                            int64_t lasti) {
    int64_t computed = firstlineno;
    int64_t ar_start = -1, ar_end = 0, ar_line = -1;
    size_t pos = 0;
    /* Advance over ranges until one ends past lasti; empty ranges still
     * carry line deltas, so they are applied but never chosen. */
    while (ar_end <= lasti || ar_start == ar_end) {
        if (pos + 1 >= len)
            return 0;
        ar_start = ar_end;
        ar_end += tab[pos];
        int8_t ldelta = (int8_t)tab[pos + 1];
        pos += 2;
        if (ldelta == -128) {
            ar_line = -1;
        } else {
            computed += ldelta;
            ar_line = computed;
        }
    }
    if (ar_line <= 0 || ar_line > INT32_MAX)
        return 0;
    return (int)ar_line;
}

/* Varints of the location table: 6 bits a byte, bit 6 = more follows. */
static bool read_varint(const uint8_t *tab, size_t len, size_t *pos,
                        uint64_t *out) {
    uint64_t val = 0;
    unsigned shift = 0;
    for (;;) {
        if (*pos >= len || shift > 60)
            return false;
        uint8_t b = tab[(*pos)++];
        val |= (uint64_t)(b & 63) << shift;
        if (!(b & 64))
            break;
        shift += 6;
    }
    *out = val;
    return true;
}

static bool read_signed_varint(const uint8_t *tab, size_t len, size_t *pos,
                               int64_t *out) {
    uint64_t u;
    if (!read_varint(tab, len, pos, &u))
        return false;
    *out = (u & 1) ? -(int64_t)(u >> 1) : (int64_t)(u >> 1);
    return true;
}

enum {
    LOC_ONE_LINE0 = 10,
    LOC_ONE_LINE1 = 11,
    LOC_ONE_LINE2 = 12,
    LOC_NO_COLUMNS = 13,
    LOC_LONG = 14,
    LOC_NONE = 15
};

int pyspy_line_locations311(const uint8_t *tab, size_t len, int firstlineno,
                            int64_t lasti, int code_unit) {
    if (code_unit < 1)
        return 0;
    int64_t computed = firstlineno;
    int64_t ar_end = 0, ar_line = -1;
    size_t pos = 0;
    while (ar_end <= lasti) {
        if (pos >= len)
            return 0;
        uint8_t first = tab[pos];
        if (!(first & 0x80))
            return 0; /* not at an entry start: corrupt table */
        int code = (first >> 3) & 15;
        int64_t delta = 0;
        size_t p = pos + 1;
        switch (code) {
        case LOC_NO_COLUMNS:
        case LOC_LONG:
            if (!read_signed_varint(tab, len, &p, &delta))
                return 0;
            break;
        case LOC_ONE_LINE1:
            delta = 1;
            break;
        case LOC_ONE_LINE2:
            delta = 2;
            break;
        default:
            break;
        }
        /* Lines are C ints in the interpreter: a step or a running
         * line outside that range is a corrupt table, and stopping there
         * keeps the sum from overflowing. */
        if (delta > INT32_MAX || delta < -(int64_t)INT32_MAX)
            return 0;
        computed += delta;
        if (computed > INT32_MAX || computed < -(int64_t)INT32_MAX)
            return 0;
        ar_line = code == LOC_NONE ? -1 : computed;
        ar_end += (int64_t)((first & 7) + 1) * code_unit;
        pos++;
        while (pos < len && !(tab[pos] & 0x80))
            pos++;
    }
    if (ar_line <= 0 || ar_line > INT32_MAX)
        return 0;
    return (int)ar_line;
}

int pyspy_line_for(pyspy_lines_kind kind, bool lnotab_unsigned, int code_unit,
                   const uint8_t *tab, size_t len, int firstlineno,
                   int64_t lasti) {
    if (lasti < 0)
        return firstlineno > 0 ? firstlineno : 0;
    switch (kind) {
    case PYSPY_LINES_LNOTAB:
        return pyspy_line_lnotab(tab, len, firstlineno, lasti,
                                 !lnotab_unsigned);
    case PYSPY_LINES_LINETABLE310:
        return pyspy_line_linetable310(tab, len, firstlineno, lasti);
    case PYSPY_LINES_LOCATIONS311:
        return pyspy_line_locations311(tab, len, firstlineno, lasti, code_unit);
    }
    return 0;
}
