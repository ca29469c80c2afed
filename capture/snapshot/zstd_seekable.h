/* The zstd seekable format: independent zstd frames followed by a seek
 * table in a skippable frame (magic 0x184D2A5E, entries of compressed and
 * decompressed size, footer: frame count, descriptor, 0x8F92EAB1), so
 * `zstd -d` restores the stream and a reader decompresses only the frame
 * that holds an offset. (capture/snapshot/zstd_seekable.c) */
#ifndef PYSPY_CAPTURE_ZSTD_SEEKABLE_H
#define PYSPY_CAPTURE_ZSTD_SEEKABLE_H

#include <pyspy.h>

#define PYSPY_ZSK_FRAME_INPUT (1u << 20) /* bytes of input per frame */
#define PYSPY_ZSK_CACHE_FRAMES 8         /* decompressed frames kept */

typedef struct pyspy_zsk_writer pyspy_zsk_writer;
typedef struct pyspy_zsk_reader pyspy_zsk_reader;

/* name is used in error messages only. level 0 = 3. */
int pyspy_zsk_writer_new(int fd, const char *name, int level,
                         pyspy_zsk_writer **out, pyspy_error *err);
int pyspy_zsk_writer_write(pyspy_zsk_writer *w, const void *buf, size_t len,
                           pyspy_error *err);
/* Flushes the last frame and appends the seek table. */
int pyspy_zsk_writer_finish(pyspy_zsk_writer *w, pyspy_error *err);
uint64_t pyspy_zsk_writer_bytes_out(const pyspy_zsk_writer *w);
void pyspy_zsk_writer_free(pyspy_zsk_writer *w);

/* True when the file of size bytes ends with the seekable magic. */
bool pyspy_zsk_has_seek_table(int fd, uint64_t size);
/* Parses and checks the seek table against the file size. The reader
 * keeps fd (does not own it). */
int pyspy_zsk_reader_open(int fd, uint64_t size, const char *name,
                          pyspy_zsk_reader **out, pyspy_error *err);
uint64_t pyspy_zsk_reader_size(const pyspy_zsk_reader *r);
/* Reads len bytes of decompressed data at off; decompresses only the
 * frames that hold them (with a small LRU cache). */
int pyspy_zsk_reader_read(pyspy_zsk_reader *r, uint64_t off, void *buf,
                          size_t len, pyspy_error *err);
/* With allow, a frame whose checksum fails is still served (ignoring
 * the checksum) and counted; a frame that does not decompress fails its
 * reads either way. */
void pyspy_zsk_reader_allow_damaged(pyspy_zsk_reader *r, bool allow);
/* Reads that touched a frame failing its checks (failed or served). */
uint64_t pyspy_zsk_reader_damage_hits(const pyspy_zsk_reader *r);

typedef struct pyspy_zsk_damage {
    size_t frame;
    uint64_t coff, csize; /* where it is in the file */
    uint64_t doff, dsize; /* the decompressed bytes it holds */
    const char *why;      /* owned by the reader */
} pyspy_zsk_damage;
/* The first damaged frame met; false when none. */
bool pyspy_zsk_reader_first_damage(const pyspy_zsk_reader *r,
                                   pyspy_zsk_damage *out);
/* Number of frames decompressed so far (tests check the cache with it). */
uint64_t pyspy_zsk_reader_frames_decompressed(const pyspy_zsk_reader *r);
void pyspy_zsk_reader_free(pyspy_zsk_reader *r);

#endif
