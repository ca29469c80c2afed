/* Aggregate files (record -f aggregate) as pyspy merge reads them: any
 * bytes are read by pyspy_read_aggregate without a crash; what it
 * accepts is written back to a file that reads back and writes to the
 * same bytes, merges into an empty aggregate to the same bytes, and can
 * be written in every other format. An input that does not start with
 * the file's magic is taken as a payload and given a valid header, so
 * that mutations reach the payload's parser past the checksum. Seeds:
 * recordings of the fixtures' snapshots (tests/fuzz/corpus/aggregate). */
#include "analyze/sample/aggregate.h"
#include "capture/snapshot/format.h"
#include "formats/record_formats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *frame(const uint8_t *data, size_t size, size_t *len) {
    pyspy_buf b = {0};
    pyspy_buf_put(&b, "PYSPYAGG", 8);
    pyspy_buf_u32(&b, 1);
    pyspy_buf_u32(&b, 0);
    pyspy_buf_u64(&b, size);
    pyspy_buf_u64(&b, pyspy_xxh64(data, size, 0));
    pyspy_buf_put(&b, data, size);
    if (b.oom)
        abort();
    *len = b.len;
    return b.data;
}

static char *write_to_memory(const pyspy_agg *a, pyspy_format fmt,
                             size_t *len) {
    char *buf = NULL;
    pyspy_error err = {0};
    FILE *out = open_memstream(&buf, len);
    if (!out)
        abort();
    if (pyspy_write_record(out, fmt, a, "fuzz", &err))
        abort(); /* an accepted aggregate is one every writer takes */
    fclose(out);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *framed = NULL;
    size_t len = size;
    if (size < 8 || memcmp(data, "PYSPYAGG", 8) != 0)
        data = framed = frame(data, size, &len);
    pyspy_agg *a = NULL;
    pyspy_error err = {0};
    int rc = pyspy_read_aggregate(data, len, "input", &a, &err);
    free(framed);
    if (rc) {
        if (!err.msg[0] || a)
            abort(); /* an error says what it is and leaves nothing */
        return 0;
    }
    size_t n1, n2, n3;
    char *once = write_to_memory(a, PYSPY_FORMAT_AGGREGATE, &n1);
    pyspy_agg *b = NULL;
    if (pyspy_read_aggregate(once, n1, "again", &b, &err))
        abort();
    char *twice = write_to_memory(b, PYSPY_FORMAT_AGGREGATE, &n2);
    if (n1 != n2 || memcmp(once, twice, n1) != 0)
        abort();
    pyspy_agg *m = pyspy_agg_new(&a->opts, &err);
    if (!m || pyspy_agg_merge(m, a, &err))
        abort();
    char *merged = write_to_memory(m, PYSPY_FORMAT_AGGREGATE, &n3);
    if (n1 != n3 || memcmp(once, merged, n1) != 0)
        abort();
    free(once);
    free(twice);
    free(merged);
    static const pyspy_format others[] = {
        PYSPY_FORMAT_FLAMEGRAPH, PYSPY_FORMAT_RAW, PYSPY_FORMAT_SPEEDSCOPE,
        PYSPY_FORMAT_CHROMETRACE, PYSPY_FORMAT_PPROF};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        size_t n;
        free(write_to_memory(a, others[i], &n));
    }
    pyspy_agg_free(m);
    pyspy_agg_free(b);
    pyspy_agg_free(a);
    return 0;
}
