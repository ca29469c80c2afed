/* The seekable-zstd reader on hostile files (seeds: trimmed fixture cores
 * compressed in small frames with a seek table, tests/fuzz/make-corpus).
 * Opening checks the seek table against the file; reads at frame edges,
 * across them and in an order that cycles the frame cache must fail
 * cleanly or give exactly what `zstd -d` gives for the same bytes. */
#include "capture/snapshot/zstd_seekable.h"
#include "tests/fuzz/fuzz_common.h"

#include <zstd.h>

#define MAX_WHOLE (1u << 20) /* compare with one-shot zstd up to this */
#define MAX_DECOMPRESS 16    /* frames, failed attempts included */

static uint8_t buf[MAX_WHOLE];
static uint8_t whole[MAX_WHOLE + 1];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = pyspy_fuzz_fd(data, size);
    if (fd < 0)
        return 0;
    pyspy_zsk_reader *r = NULL;
    pyspy_error err = {0};
    (void)pyspy_zsk_has_seek_table(fd, size);
    if (pyspy_zsk_reader_open(fd, size, "fuzz input", &r, &err) != 0) {
        close(fd);
        return 0;
    }
    uint64_t dsize = pyspy_zsk_reader_size(r);
    /* the last byte, an empty read, and reads past the end */
    if (dsize)
        (void)pyspy_zsk_reader_read(r, dsize - 1, buf, 1, &err);
    (void)pyspy_zsk_reader_read(r, dsize, buf, 0, &err);
    if (pyspy_zsk_reader_read(r, dsize, buf, 1, &err) == 0 ||
        pyspy_zsk_reader_read(r, UINT64_MAX, buf, 2, &err) == 0)
        abort();
    /* Strided 2-byte reads straddle frame boundaries; two passes over
     * more frames than the cache holds evict and reload. A few hundred
     * bytes may describe frames of 32 MiB each, so the decompressions
     * are bounded, not the reads, and a pass ends at its first failure
     * (a damaged frame fails alike each time it is read); else one
     * input costs seconds. */
    uint64_t stride = dsize / 64 + 1;
    for (int pass = 0; pass < 2; pass++)
        for (uint64_t off = stride - 1;
             off + 2 <= dsize &&
             pyspy_zsk_reader_frames_decompressed(r) < MAX_DECOMPRESS;
             off += stride)
            if (pyspy_zsk_reader_read(r, off, buf, 2, &err) != 0)
                break;
    if (dsize <= MAX_WHOLE &&
        pyspy_zsk_reader_read(r, 0, buf, (size_t)dsize, &err) == 0) {
        /* What the reader gave is what a whole-stream decoder gives. */
        size_t got = ZSTD_decompress(whole, sizeof whole, data, size);
        if (ZSTD_isError(got) || got != dsize || memcmp(whole, buf, got) != 0)
            abort();
    }
    pyspy_zsk_reader_free(r);
    close(fd);
    return 0;
}
