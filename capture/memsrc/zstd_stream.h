/* Whole-stream zstd cores decompressed to disk
 * (capture/memsrc/zstd_stream.c). */
#ifndef PYSPY_CAPTURE_MEMSRC_ZSTD_STREAM_H
#define PYSPY_CAPTURE_MEMSRC_ZSTD_STREAM_H

#include <pyspy.h>

typedef struct pyspy_byte_range {
    uint64_t off, len;
} pyspy_byte_range;

/* Bytes of the decompressed core that came from frames whose checksum
 * fails (only with allow_damaged; else such a frame is an error). */
typedef struct pyspy_zstd_bad {
    pyspy_byte_range *v;
    size_t n;
} pyspy_zstd_bad;

/* Decompresses the whole zstd stream in fd `in` (named name in errors)
 * into an unlinked file in $TMPDIR; returns its fd, the size in
 * *size_out. A frame whose checksum fails is an error naming its file
 * bytes, or with allow_damaged decoded again ignoring the checksum and
 * its bytes added to *bad (the caller frees bad->v). */
int pyspy_zstd_stream_to_temp(int in, const char *name, bool allow_damaged,
                              pyspy_zstd_bad *bad, uint64_t *size_out,
                              pyspy_error *err);

#endif
