/* Whole-buffer file I/O with one-line errors that name the file.
 * (capture/base/file_io.c) */
#ifndef PYSPY_CAPTURE_FILE_IO_H
#define PYSPY_CAPTURE_FILE_IO_H

#include <pyspy.h>

/* Writes all of buf; ENOSPC becomes "no space left on device writing X". */
int pyspy_write_full(int fd, const void *buf, size_t len, const char *name,
                     pyspy_error *err);
/* Reads exactly len bytes at off; a short read is "X is truncated". */
int pyspy_pread_full(int fd, void *buf, size_t len, uint64_t off,
                     const char *name, pyspy_error *err);
/* A new, already unlinked file in $TMPDIR (else /tmp), open for reading
 * and writing; what names it where the file system needs a name for a
 * moment ("pyspy-WHAT-XXXXXX"). -1 with err set when none can be made. */
int pyspy_temp_fd(const char *what, pyspy_error *err);

#endif
