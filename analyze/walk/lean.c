/* A lean snapshot is what the walk read, so the analyzer makes it: the
 * walk goes through a recording source (capture/memsrc/recording.c),
 * whose kept pages the capture library's lean writer stores
 * (capture/snapshot/lean.c). Neither of those knows what a walk looks
 * for, so pyspy-capture stays free of CPython. */
#include "analyze/walk/lean.h"
#include "capture/memsrc/recording.h"

#include <string.h>

int pyspy_traces_read_lean(pyspy_memsrc *src, const pyspy_trace_opts *opts,
                           const char *path, pyspy_traces *out,
                           pyspy_lean_stats *stats, pyspy_error *err) {
    memset(stats, 0, sizeof *stats);
    memset(out, 0, sizeof *out);
    pyspy_memsrc *rec = NULL;
    /* With --native, the threads' stacks too: what unwinding reads. */
    if (pyspy_memsrc_recording_open(src, opts && opts->native, &rec, err))
        return -1;
    int rc = pyspy_traces_read(rec, opts, out, err);
    const uint64_t *pages = NULL;
    size_t n = 0;
    if (rc == 0)
        rc = pyspy_memsrc_recording_pages(rec, &pages, &n, err);
    if (rc == 0) {
        stats->pages = n;
        stats->pause_ns = rec->proc.pause_ns;
        pyspy_snapshot_opts so = {.hide_progress = true,
                                  .tool_version = PYSPY_VERSION};
        rc = pyspy_snapshot_write_lean(rec, pages, n, &so, path, &stats->io,
                                       err);
    }
    pyspy_memsrc_close(rec);
    if (rc != 0)
        pyspy_traces_free(out);
    return rc;
}
