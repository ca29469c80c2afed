/* pyspy_core_ingest: a core (plain, zstd, or already a snapshot) in, a
 * snapshot out. Behind kernel.core_pattern the core arrives on a pipe,
 * which the reader cannot seek, so stdin is spooled to an unlinked
 * temporary file first. */
#include "capture/core/filter.h"
#include "capture/base/file_io.h"
#include "capture/snapshot/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pyspy_core_ingest(const char *in_path, const char *out_path,
                      const pyspy_snapshot_opts *opts,
                      pyspy_snapshot_stats *stats, pyspy_error *err) {
    return pyspy_core_ingest_filtered(in_path, out_path, opts, 0, stats, err);
}

int pyspy_core_ingest_filtered(const char *in_path, const char *out_path,
                               const pyspy_snapshot_opts *opts, uint32_t filter,
                               pyspy_snapshot_stats *stats, pyspy_error *err) {
    if (!in_path || !out_path)
        return pyspy_error_set(err, PYSPY_E_USAGE,
                               "core ingest needs an input and an output");
    pyspy_memsrc *src = NULL;
    pyspy_file_opts fo = {.max_stream_size = opts ? opts->max_input_size : 0};
    if (pyspy_memsrc_open_file_with(in_path, &fo, &src, err) != 0)
        return -1;
    pyspy_memsrc *view = NULL;
    int rc = -1;
    if (filter) {
        if (pyspy_core_filter_view(src, filter, &view, err) == 0)
            rc = pyspy_snapshot_write(view, opts, out_path, stats, err);
        pyspy_memsrc_close(view);
    } else {
        rc = pyspy_snapshot_write(src, opts, out_path, stats, err);
    }
    pyspy_memsrc_close(src);
    return rc;
}
