/* Picks the writer for record's --format; the JSON string helper. */
#include "formats/record_formats.h"

#include <stdlib.h>

int pyspy_write_record(FILE *out, pyspy_format fmt, const pyspy_agg *a,
                       const char *title, pyspy_error *err) {
    switch (fmt) {
    case PYSPY_FORMAT_FLAMEGRAPH:
        return pyspy_write_flamegraph(out, a, title, err);
    case PYSPY_FORMAT_RAW:
        return pyspy_write_raw(out, a, err);
    case PYSPY_FORMAT_SPEEDSCOPE:
        return pyspy_write_speedscope(out, a, err);
    case PYSPY_FORMAT_CHROMETRACE:
        return pyspy_write_chrometrace(out, a, err);
    case PYSPY_FORMAT_PPROF:
        return pyspy_write_pprof(out, a, err);
    case PYSPY_FORMAT_AGGREGATE:
        return pyspy_write_aggregate(out, a, err);
    default:
        return pyspy_error_set(err, PYSPY_E_USAGE, "no output format");
    }
}

int pyspy_json_put_clean(FILE *out, const char *s) {
    char *c = pyspy_text_clean(s ? s : "");
    if (!c)
        return -1;
    fputc('"', out);
    for (const char *p = c; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', out);
        fputc(*p, out);
    }
    fputc('"', out);
    free(c);
    return 0;
}
