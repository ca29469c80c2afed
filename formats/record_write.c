/* Picks the writer for record's --format. */
#include "formats/record_formats.h"

int pyspy_write_record(FILE *out, pyspy_format fmt, const pyspy_agg *a,
                       const char *title, pyspy_error *err) {
    switch (fmt) {
    case PYSPY_FORMAT_FLAMEGRAPH:
        return pyspy_write_flamegraph(out, a, title, err);
    case PYSPY_FORMAT_RAW:
        return pyspy_write_raw(out, a, err);
    case PYSPY_FORMAT_SPEEDSCOPE:
        return pyspy_write_speedscope(out, a, title, err);
    case PYSPY_FORMAT_CHROMETRACE:
        return pyspy_write_chrometrace(out, a, err);
    default:
        return pyspy_error_set(err, PYSPY_E_USAGE, "no output format");
    }
}
