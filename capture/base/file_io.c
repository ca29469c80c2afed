/* Whole-buffer reads and writes: the snapshot code never deals with short
 * transfers or EINTR itself. */
#include "capture/base/file_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pyspy_write_full(int fd, const void *buf, size_t len, const char *name,
                     pyspy_error *err) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == ENOSPC || errno == EDQUOT))
            return pyspy_error_set(err, PYSPY_E_IO,
                                   "no space left on device writing %s", name);
        if (n < 0)
            return pyspy_error_set(err, PYSPY_E_IO, "cannot write %s: %s", name,
                                   strerror(errno));
        if (n == 0)
            return pyspy_error_set(err, PYSPY_E_IO,
                                   "no space left on device writing %s", name);
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int pyspy_pread_full(int fd, void *buf, size_t len, uint64_t off,
                     const char *name, pyspy_error *err) {
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return pyspy_error_set(err, PYSPY_E_IO, "cannot read %s: %s", name,
                                   strerror(errno));
        if (n == 0)
            return pyspy_error_set(err, PYSPY_E_FORMAT, "%s is truncated",
                                   name);
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int pyspy_temp_fd(const char *what, pyspy_error *err) {
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    int fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        /* A file system without O_TMPFILE: a named file, unlinked at
         * once. */
        char tmpl[4096];
        snprintf(tmpl, sizeof tmpl, "%s/pyspy-%s-XXXXXX", dir, what);
        fd = mkostemp(tmpl, O_CLOEXEC);
        if (fd >= 0)
            unlink(tmpl);
    }
    if (fd < 0)
        pyspy_error_set(err, PYSPY_E_IO,
                        "cannot create a temporary file in %s: %s", dir,
                        strerror(errno));
    return fd;
}
