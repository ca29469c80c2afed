/* Line numbers from a code object's line table, one decoder per table
 * format (analyze/walk/line_table.c). Pure functions over bytes already copied
 * out of the target, so every format is unit-tested directly
 * (tests/unit/test_line_table.c). Tables are hostile input: every decoder
 * stays inside [tab, tab + len). */
#ifndef PYSPY_ANALYZE_LINE_TABLE_H
#define PYSPY_ANALYZE_LINE_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analyze/cpython/layout.h"

/* co_lnotab (2.7-3.9): (byte offset delta, line delta) pairs. 3.6+ line
 * deltas are signed; 2.7's are not. lasti is a byte offset. */
int pyspy_line_lnotab(const uint8_t *tab, size_t len, int firstlineno,
                      int64_t lasti, bool signed_deltas);

/* co_linetable (3.10): (byte range length, signed line delta) pairs, -128
 * meaning "no line". lasti is a byte offset. Returns 0 for no line. */
int pyspy_line_linetable310(const uint8_t *tab, size_t len, int firstlineno,
                            int64_t lasti);

/* Location table (3.11+). lasti is a byte offset; entries count code
 * units of code_unit bytes (the layout's code_unit_size). Returns 0 for no
 * line. */
int pyspy_line_locations311(const uint8_t *tab, size_t len, int firstlineno,
                            int64_t lasti, int code_unit);

/* Dispatch by table kind; a negative lasti (frame not started) gives the
 * first line. */
int pyspy_line_for(pyspy_lines_kind kind, bool lnotab_unsigned, int code_unit,
                   const uint8_t *tab, size_t len, int firstlineno,
                   int64_t lasti);

#endif
