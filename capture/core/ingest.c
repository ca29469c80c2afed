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

#define SPOOL_CHUNK (1u << 20)

/* Returns a seekable descriptor holding all of stdin. */
static int spool_stdin(pyspy_error *err) {
    struct stat st;
    if (fstat(0, &st) == 0 && S_ISREG(st.st_mode) &&
        lseek(0, 0, SEEK_CUR) == 0) {
        int fd = dup(0);
        if (fd < 0)
            pyspy_error_set(err, PYSPY_E_IO, "cannot read stdin: %s",
                            strerror(errno));
        return fd;
    }
    int fd = pyspy_temp_fd("stdin", err);
    if (fd < 0)
        return -1;
    char *buf = malloc(SPOOL_CHUNK);
    if (!buf) {
        close(fd);
        pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        return -1;
    }
    for (;;) {
        ssize_t n = read(0, buf, SPOOL_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            pyspy_error_set(err, PYSPY_E_IO, "cannot read stdin: %s",
                            strerror(errno));
            break;
        }
        if (n == 0) {
            free(buf);
            return fd;
        }
        if (pyspy_write_full(fd, buf, (size_t)n, "a temporary copy of stdin",
                             err) != 0)
            break;
    }
    free(buf);
    close(fd);
    return -1;
}

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
    if (strcmp(in_path, "-") == 0) {
        int fd = spool_stdin(err);
        if (fd < 0)
            return -1;
        if (pyspy_memsrc_open_fd(fd, "stdin", NULL, &src, err) != 0)
            return -1;
    } else if (pyspy_memsrc_open_file(in_path, &src, err) != 0) {
        return -1;
    }
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
