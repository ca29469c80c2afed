#include "testlib.h"

#include "capture/snapshot/zstd_seekable.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define DATA_LEN ((size_t)(5u << 20) + 12345)

static uint8_t *make_data(void) {
    uint8_t *d = malloc(DATA_LEN);
    uint32_t x = 12345;
    for (size_t i = 0; i < DATA_LEN; i++) {
        /* half compressible, half noise */
        x = x * 1103515245u + 12345u;
        d[i] = (i / 4096) % 2 ? (uint8_t)(x >> 24) : (uint8_t)(i / 4096);
    }
    return d;
}

static char *write_file(const uint8_t *d, size_t len, size_t *out_size) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/pyspy-zsk-XXXXXX");
    int fd = mkstemp(path);
    pyspy_zsk_writer *w = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_zsk_writer_new(fd, path, 1, &w, &err) == 0);
    /* uneven writes cross frame boundaries */
    size_t off = 0, step = 777777;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        CHECK(pyspy_zsk_writer_write(w, d + off, n, &err) == 0);
        off += n;
    }
    CHECK(pyspy_zsk_writer_finish(w, &err) == 0);
    *out_size = (size_t)pyspy_zsk_writer_bytes_out(w);
    pyspy_zsk_writer_free(w);
    close(fd);
    return path;
}

static uint8_t *slurp(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY);
    struct stat st;
    fstat(fd, &st);
    uint8_t *b = malloc((size_t)st.st_size + 1);
    *len = (size_t)read(fd, b, (size_t)st.st_size);
    close(fd);
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t len) {
    int fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, 0600);
    CHECK(write(fd, b, len) == (ssize_t)len);
    close(fd);
}

TEST(round_trip_and_whole_stream_decompress) {
    uint8_t *d = make_data();
    size_t fsize = 0;
    char *path = write_file(d, DATA_LEN, &fsize);
    size_t clen;
    uint8_t *c = slurp(path, &clen);
    CHECK(clen == fsize);
    /* Like `zstd -d`: the frames and the skippable seek table decode as
     * one stream. */
    size_t dsize = DATA_LEN + 4096;
    uint8_t *out = malloc(dsize);
    size_t got = ZSTD_decompress(out, dsize, c, clen);
    CHECK(!ZSTD_isError(got) && got == DATA_LEN);
    CHECK(memcmp(out, d, DATA_LEN) == 0);
    free(out);

    int fd = open(path, O_RDONLY);
    CHECK(pyspy_zsk_has_seek_table(fd, clen));
    pyspy_zsk_reader *r = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_zsk_reader_open(fd, clen, path, &r, &err) == 0);
    CHECK(pyspy_zsk_reader_size(r) == DATA_LEN);
    uint8_t *all = malloc(DATA_LEN);
    CHECK(pyspy_zsk_reader_read(r, 0, all, DATA_LEN, &err) == 0);
    CHECK(memcmp(all, d, DATA_LEN) == 0);
    free(all);
    uint8_t tail[100];
    CHECK(pyspy_zsk_reader_read(r, DATA_LEN - 100, tail, 100, &err) == 0);
    CHECK(memcmp(tail, d + DATA_LEN - 100, 100) == 0);
    CHECK(pyspy_zsk_reader_read(r, DATA_LEN - 50, tail, 100, &err) == -1);
    pyspy_zsk_reader_free(r);
    close(fd);
    unlink(path);
    free(c);
    free(d);
}

TEST(one_page_read_decompresses_one_frame) {
    uint8_t *d = make_data();
    size_t fsize = 0;
    char *path = write_file(d, DATA_LEN, &fsize);
    int fd = open(path, O_RDONLY);
    pyspy_zsk_reader *r = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_zsk_reader_open(fd, fsize, path, &r, &err) == 0);
    CHECK(pyspy_zsk_reader_frames_decompressed(r) == 0);
    uint8_t page[4096];
    uint64_t off = 3 * PYSPY_ZSK_FRAME_INPUT + 8192;
    CHECK(pyspy_zsk_reader_read(r, off, page, sizeof page, &err) == 0);
    CHECK(memcmp(page, d + off, sizeof page) == 0);
    CHECK(pyspy_zsk_reader_frames_decompressed(r) == 1);
    /* cached */
    CHECK(pyspy_zsk_reader_read(r, off + 4096, page, sizeof page, &err) == 0);
    CHECK(pyspy_zsk_reader_frames_decompressed(r) == 1);
    /* a read across a frame boundary needs exactly the two frames */
    off = 2 * PYSPY_ZSK_FRAME_INPUT - 100;
    CHECK(pyspy_zsk_reader_read(r, off, page, sizeof page, &err) == 0);
    CHECK(memcmp(page, d + off, sizeof page) == 0);
    CHECK(pyspy_zsk_reader_frames_decompressed(r) == 3);
    pyspy_zsk_reader_free(r);
    close(fd);
    unlink(path);
    free(d);
}

TEST(hostile_seek_tables) {
    uint8_t *d = make_data();
    size_t fsize = 0;
    char *path = write_file(d, DATA_LEN, &fsize);
    size_t clen;
    uint8_t *c = slurp(path, &clen);
    char bad[] = "/tmp/pyspy-zsk-bad-XXXXXX";
    int bfd = mkstemp(bad);
    close(bfd);
    pyspy_error err = {0};
    pyspy_zsk_reader *r = NULL;

    /* truncated: the footer is gone */
    spit(bad, c, clen - 5);
    int fd = open(bad, O_RDONLY);
    CHECK(!pyspy_zsk_has_seek_table(fd, clen - 5));
    CHECK(pyspy_zsk_reader_open(fd, clen - 5, bad, &r, &err) == -1);
    CHECK(strstr(err.msg, "truncated (seek table missing)") != NULL);
    close(fd);

    /* frame count larger than the file */
    uint8_t *m = malloc(clen);
    memcpy(m, c, clen);
    m[clen - 9] = 0xff;
    m[clen - 8] = 0xff;
    spit(bad, m, clen);
    fd = open(bad, O_RDONLY);
    CHECK(pyspy_zsk_reader_open(fd, clen, bad, &r, &err) == -1);
    CHECK(err.code == PYSPY_E_FORMAT);
    close(fd);

    /* an entry's compressed size that does not add up */
    memcpy(m, c, clen);
    m[clen - 9 - 6 * 8 + 1] ^= 0x40;
    spit(bad, m, clen);
    fd = open(bad, O_RDONLY);
    CHECK(pyspy_zsk_reader_open(fd, clen, bad, &r, &err) == -1);
    CHECK(err.code == PYSPY_E_FORMAT);
    close(fd);

    /* corrupted compressed bytes: open works, the read of that frame
     * fails with one line */
    memcpy(m, c, clen);
    for (size_t i = 1000; i < 1100; i++)
        m[i] ^= 0x5a;
    spit(bad, m, clen);
    fd = open(bad, O_RDONLY);
    CHECK(pyspy_zsk_reader_open(fd, clen, bad, &r, &err) == 0);
    uint8_t page[64];
    CHECK(pyspy_zsk_reader_read(r, 0, page, sizeof page, &err) == -1);
    CHECK(strstr(err.msg, "corrupted") != NULL);
    pyspy_zsk_reader_free(r);
    close(fd);

    /* every truncation length: error, never a crash */
    for (size_t cut = 0; cut < clen; cut += clen / 97 + 1) {
        spit(bad, c, cut);
        fd = open(bad, O_RDONLY);
        r = NULL;
        if (pyspy_zsk_reader_open(fd, cut, bad, &r, &err) == 0) {
            CHECK(0);
            pyspy_zsk_reader_free(r);
        }
        close(fd);
    }
    unlink(bad);
    unlink(path);
    free(m);
    free(c);
    free(d);
}

static uint32_t le32_at(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Opens m (clen bytes, written to path) and expects a refusal naming the
 * seek table and a file byte range. */
static void refused(const char *path, const uint8_t *m, size_t clen,
                    const char *what) {
    spit(path, m, clen);
    int fd = open(path, O_RDONLY);
    pyspy_zsk_reader *r = NULL;
    pyspy_error err = {0};
    int rc = pyspy_zsk_reader_open(fd, clen, path, &r, &err);
    if (rc == 0) {
        fprintf(stderr, "  %s: accepted\n", what);
        pyspy_zsk_reader_free(r);
    }
    CHECK(rc == -1);
    CHECK(err.code == PYSPY_E_FORMAT);
    CHECK(strstr(err.msg, "seek table") != NULL);
    CHECK(strstr(err.msg, "file byte") != NULL);
    close(fd);
}

/* A seekable file of make_data's bytes, read back whole: its data, its
 * bytes, and where its seek table's entries start. */
typedef struct {
    uint8_t *d, *c, *e0;
    char *path;
    size_t clen;
    uint32_t n;
} seekable;

static seekable make_seekable(void) {
    seekable t;
    size_t fsize = 0;
    t.d = make_data();
    t.path = write_file(t.d, DATA_LEN, &fsize);
    t.c = slurp(t.path, &t.clen);
    t.n = le32_at(t.c + t.clen - 9);
    t.e0 = t.c + t.clen - 9 - (size_t)t.n * 8;
    return t;
}

static void seekable_free(seekable *t) {
    unlink(t->path);
    free(t->c);
    free(t->d);
}

/* Tables whose sizes still add up to the file: only the frames' own
 * headers tell them from the real one. */
TEST(seek_tables_checked_against_the_frames) {
    seekable t = make_seekable();
    uint8_t *c = t.c, *e0 = t.e0, *e = e0;
    size_t clen = t.clen;
    uint32_t n = t.n;
    const char *path = t.path;
    CHECK(n >= 3);
    /* two neighbours of different compressed sizes (the last frame is
     * shorter than the rest) */
    while (e + 16 <= c + clen - 9 && le32_at(e) == le32_at(e + 8))
        e += 8;
    CHECK(e + 16 <= c + clen - 9);
    uint8_t *m = malloc(clen);
    char bad[] = "/tmp/pyspy-zsk-tbl-XXXXXX";
    close(mkstemp(bad));

    /* those two entries swapped */
    memcpy(m, c, clen);
    memcpy(m + (e - c), e + 8, 8);
    memcpy(m + (e - c) + 8, e, 8);
    refused(bad, m, clen, "swapped entries");

    /* decompressed sizes moved from one entry to the next */
    memcpy(m, c, clen);
    put_le32(m + (e - c) + 4, le32_at(e + 4) - 4096);
    put_le32(m + (e - c) + 12, le32_at(e + 12) + 4096);
    refused(bad, m, clen, "moved sizes");

    /* frame count 0 and 0xffffffff */
    memcpy(m, c, clen);
    put_le32(m + clen - 9, 0);
    refused(bad, m, clen, "count 0");
    put_le32(m + clen - 9, 0xffffffffu);
    refused(bad, m, clen, "count 0xffffffff");

    /* the entries zeroed, the frame around them kept */
    memcpy(m, c, clen);
    memset(m + (e0 - c), 0, (size_t)n * 8);
    refused(bad, m, clen, "zeroed entries");

    /* a sound table opens without decompressing anything */
    int fd = open(path, O_RDONLY);
    pyspy_zsk_reader *r = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_zsk_reader_open(fd, clen, path, &r, &err) == 0);
    CHECK(pyspy_zsk_reader_frames_decompressed(r) == 0);
    pyspy_zsk_reader_free(r);
    close(fd);
    unlink(bad);
    free(m);
    seekable_free(&t);
}

/* A frame whose checksum alone fails: refused, or with allow_damaged
 * served and counted, its file and core byte ranges named. */
TEST(checksum_failure_refused_or_served_marked) {
    seekable t = make_seekable();
    uint8_t *c = t.c, *e = t.e0, *d = t.d;
    size_t clen = t.clen;
    const char *path = t.path;
    uint64_t end1 = (uint64_t)le32_at(e) + le32_at(e + 8);
    c[end1 - 1] ^= 0x10; /* frame 1's checksum, its last byte */
    spit(path, c, clen);
    int fd = open(path, O_RDONLY);
    pyspy_zsk_reader *r = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_zsk_reader_open(fd, clen, path, &r, &err) == 0);
    uint8_t page[4096];
    uint64_t off = PYSPY_ZSK_FRAME_INPUT + 4096;
    CHECK(pyspy_zsk_reader_read(r, 0, page, sizeof page, &err) == 0);
    CHECK(pyspy_zsk_reader_damage_hits(r) == 0);
    CHECK(pyspy_zsk_reader_read(r, off, page, sizeof page, &err) == -1);
    CHECK(strstr(err.msg, "zstd frame 1") != NULL);
    CHECK(strstr(err.msg, "checksum") != NULL);
    CHECK(strstr(err.msg, "file bytes 0x") != NULL);
    pyspy_zsk_reader_allow_damaged(r, true);
    CHECK(pyspy_zsk_reader_read(r, off, page, sizeof page, &err) == 0);
    CHECK(memcmp(page, d + off, sizeof page) == 0);
    CHECK(pyspy_zsk_reader_damage_hits(r) >= 2);
    pyspy_zsk_damage dm;
    CHECK(pyspy_zsk_reader_first_damage(r, &dm));
    CHECK(dm.frame == 1 && dm.doff == PYSPY_ZSK_FRAME_INPUT);
    CHECK(dm.coff + dm.csize == end1);
    pyspy_zsk_reader_free(r);
    close(fd);
    seekable_free(&t);
}

TEST(empty_stream) {
    size_t fsize = 0;
    char *path = write_file(NULL, 0, &fsize);
    int fd = open(path, O_RDONLY);
    pyspy_zsk_reader *r = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_zsk_reader_open(fd, fsize, path, &r, &err) == 0);
    CHECK(r && pyspy_zsk_reader_size(r) == 0);
    pyspy_zsk_reader_free(r);
    close(fd);
    unlink(path);
}

TEST_MAIN(T(round_trip_and_whole_stream_decompress),
          T(one_page_read_decompresses_one_frame), T(hostile_seek_tables),
          T(seek_tables_checked_against_the_frames),
          T(checksum_failure_refused_or_served_marked), T(empty_stream))
