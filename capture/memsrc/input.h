/* What a user names as a core or snapshot, opened for reading without
 * ever blocking on a FIFO or device (capture/memsrc/input.c). */
#ifndef PYSPY_CAPTURE_MEMSRC_INPUT_H
#define PYSPY_CAPTURE_MEMSRC_INPUT_H

#include <pyspy.h>

/* How much of a stream (stdin, a pipe, a FIFO, a device) is spooled to a
 * temporary file at most when no --max-size is given: 64 GiB. */
#define PYSPY_DEFAULT_MAX_STREAM (64ull << 30)

/* A descriptor of a regular file holding path's bytes: path itself, or
 * for "-" (stdin), a pipe, FIFO or character device an unlinked copy of
 * the stream in $TMPDIR, at most max_size bytes (0: the default). A
 * stream is judged by its first bytes before anything is spooled: they
 * must be an ELF core of x86_64 or a zstd stream of one. Sockets,
 * directories and terminals are refused. */
int pyspy_input_open(const char *path, uint64_t max_size, pyspy_error *err);

/* Whether the first n bytes of a file can start a core or snapshot pyspy
 * reads (complete: they are the whole file). An error names what the
 * file is instead: empty, xz/gzip/lz4-compressed, another ELF class or
 * architecture, not ELF. */
int pyspy_input_check_head(const uint8_t *h, size_t n, bool complete,
                           const char *name, pyspy_error *err);

#endif
