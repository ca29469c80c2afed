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

#endif
