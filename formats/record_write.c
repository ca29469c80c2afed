/* Picks the writer for record's --format; writes the JSON ones. */
#include "formats/record_formats.h"

#include <cjson/cJSON.h>
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
    default:
        return pyspy_error_set(err, PYSPY_E_USAGE, "no output format");
    }
}

int pyspy_write_json(FILE *out, const struct cJSON *doc, pyspy_error *err) {
    char *text = cJSON_PrintUnformatted(doc);
    if (!text)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    int rc = fprintf(out, "%s\n", text) < 0
                 ? pyspy_error_set(err, PYSPY_E_IO, "write failed")
                 : 0;
    free(text);
    return rc;
}
