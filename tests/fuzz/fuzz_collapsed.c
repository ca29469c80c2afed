/* Collapsed-stack (raw) files as pyspy diff reads them: any bytes are
 * read by pyspy_read_raw without a crash; what it accepts, written back
 * by pyspy_write_raw, reads back to the same total; and the differential
 * flamegraph of a recording against itself shows no change in any box.
 * Seeds: raw files recorded from the fixtures' programs and edge cases
 * (tests/fuzz/corpus/collapsed). */
#include "analyze/sample/aggregate.h"
#include "formats/record_formats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pyspy_agg *read_mem(const char *data, size_t size) {
    pyspy_agg_opts o = {.show_line_numbers = true, .counts_only = true};
    pyspy_error err = {0};
    pyspy_agg *a = pyspy_agg_new(&o, &err);
    FILE *f = a ? fmemopen((void *)data, size, "r") : NULL;
    if (!f) {
        pyspy_agg_free(a);
        return NULL;
    }
    int rc = pyspy_read_raw(f, "input", a, &err);
    fclose(f);
    if (rc) {
        if (!err.msg[0])
            abort(); /* an error always says what it is */
        pyspy_agg_free(a);
        return NULL;
    }
    return a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    pyspy_agg *a = read_mem((const char *)data, size);
    if (!a)
        return 0;
    pyspy_error err = {0};
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out)
        abort();
    if (pyspy_write_raw(out, a, &err))
        abort();
    fclose(out);
    pyspy_agg *b = len ? read_mem(buf, len) : NULL;
    if (len && (!b || b->total != a->total))
        abort();
    free(buf);
    buf = NULL;
    len = 0;
    if (a->total) {
        out = open_memstream(&buf, &len);
        if (!out || pyspy_write_flamegraph_diff(out, a, a, "fuzz", &err))
            abort();
        fclose(out);
        /* A label cannot hold "</title>" ('<' is escaped), so this is
         * the end of a box's hover text. */
        for (const char *p = buf; (p = strstr(p, " points)</title>")); p++)
            if (p - buf < 5 || memcmp(p - 5, "+0.00", 5) != 0)
                abort();
        free(buf);
    }
    pyspy_agg_free(b);
    pyspy_agg_free(a);
    return 0;
}
