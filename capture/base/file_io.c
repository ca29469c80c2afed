/* Whole-buffer reads and writes: the snapshot code never deals with short
 * transfers or EINTR itself. */
#include "capture/base/file_io.h"

#include <errno.h>
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
