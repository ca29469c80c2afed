/* Reader of the zstd seekable format (the writer:
 * capture/snapshot/zstd_seekable_writer.c) (facts from the format
 * spec; frames carry zstd content checksums, the seek table does not). */
#include "capture/snapshot/zstd_seekable.h"
#include "capture/base/file_io.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define SKIPPABLE_MAGIC 0x184D2A5Eu
#define SEEKABLE_MAGIC 0x8F92EAB1u
#define FOOTER_SIZE 9
#define MAX_FRAMES 0x8000000u
/* The spec allows 1 GiB per frame; we write 1 MiB and read at most 32 MiB
 * so the frame cache of a hostile file stays bounded. */
#define MAX_FRAME_DSIZE (32u << 20)

static uint32_t get_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* ------------------------------------------------------------- reader */

typedef struct {
    uint64_t coff, doff; /* where the frame starts, compressed/decompressed */
    uint32_t csize, dsize;
} frame;

typedef struct {
    size_t frame; /* SIZE_MAX = empty slot */
    uint64_t last_use;
    uint8_t *data;
} cache_slot;

struct pyspy_zsk_reader {
    int fd;
    char *name;
    frame *frames;
    size_t nframes;
    uint64_t dsize;
    ZSTD_DCtx *dctx;
    uint8_t *cbuf;
    size_t cbuf_cap;
    cache_slot cache[PYSPY_ZSK_CACHE_FRAMES];
    uint64_t clock;
    uint64_t decompressed;
};

bool pyspy_zsk_has_seek_table(int fd, uint64_t size) {
    uint8_t m[4];
    if (size < 8 + FOOTER_SIZE)
        return false;
    if (pyspy_pread_full(fd, m, 4, size - 4, "", NULL) != 0)
        return false;
    return get_le32(m) == SEEKABLE_MAGIC;
}

int pyspy_zsk_reader_open(int fd, uint64_t size, const char *name,
                          pyspy_zsk_reader **out, pyspy_error *err) {
    if (!name)
        name = "input";
    if (size < 8 + FOOTER_SIZE)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is truncated (seek table missing)", name);
    uint8_t foot[FOOTER_SIZE];
    if (pyspy_pread_full(fd, foot, sizeof foot, size - FOOTER_SIZE, name,
                         err) != 0)
        return -1;
    if (get_le32(foot + 5) != SEEKABLE_MAGIC)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is truncated (seek table missing)", name);
    uint32_t n = get_le32(foot);
    uint8_t desc = foot[4];
    if (desc & 0x7c)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is corrupted (seek table descriptor)", name);
    size_t esize = (desc & 0x80) ? 12 : 8;
    if (n > MAX_FRAMES || (uint64_t)n * esize + FOOTER_SIZE + 8 > size)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is corrupted (seek table frame count)",
                               name);
    uint64_t body = (uint64_t)n * esize + FOOTER_SIZE;
    uint64_t tstart = size - body - 8;
    uint8_t *t = malloc(body + 8);
    if (!t)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    if (pyspy_pread_full(fd, t, body + 8, tstart, name, err) != 0) {
        free(t);
        return -1;
    }
    if (get_le32(t) != SKIPPABLE_MAGIC || get_le32(t + 4) != body) {
        free(t);
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is corrupted (seek table header)", name);
    }
    pyspy_zsk_reader *r = calloc(1, sizeof *r);
    frame *fr = calloc(n ? n : 1, sizeof *fr);
    if (!r || !fr) {
        free(t);
        free(r);
        free(fr);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    uint64_t coff = 0, doff = 0;
    uint32_t max_c = 0, max_d = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = t + 8 + (size_t)i * esize;
        fr[i].csize = get_le32(e);
        fr[i].dsize = get_le32(e + 4);
        fr[i].coff = coff;
        fr[i].doff = doff;
        if (fr[i].csize == 0 || fr[i].dsize > MAX_FRAME_DSIZE ||
            fr[i].csize > ZSTD_compressBound(fr[i].dsize) + 64 ||
            coff + fr[i].csize > tstart) {
            free(t);
            free(r);
            free(fr);
            return pyspy_error_set(err, PYSPY_E_FORMAT,
                                   "%s is corrupted (seek table entry %u)",
                                   name, i);
        }
        coff += fr[i].csize;
        doff += fr[i].dsize;
        if (fr[i].csize > max_c)
            max_c = fr[i].csize;
        if (fr[i].dsize > max_d)
            max_d = fr[i].dsize;
    }
    free(t);
    if (coff != tstart) {
        free(r);
        free(fr);
        return pyspy_error_set(
            err, PYSPY_E_FORMAT,
            "%s is corrupted (seek table does not match the file size)", name);
    }
    r->fd = fd;
    r->name = strdup(name);
    r->frames = fr;
    r->nframes = n;
    r->dsize = doff;
    r->dctx = ZSTD_createDCtx();
    r->cbuf_cap = max_c ? max_c : 1;
    r->cbuf = malloc(r->cbuf_cap);
    for (size_t i = 0; i < PYSPY_ZSK_CACHE_FRAMES; i++)
        r->cache[i].frame = SIZE_MAX;
    if (!r->name || !r->dctx || !r->cbuf) {
        pyspy_zsk_reader_free(r);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    *out = r;
    return 0;
}

uint64_t pyspy_zsk_reader_size(const pyspy_zsk_reader *r) {
    return r->dsize;
}

uint64_t pyspy_zsk_reader_frames_decompressed(const pyspy_zsk_reader *r) {
    return r->decompressed;
}

static size_t find_frame(const pyspy_zsk_reader *r, uint64_t off) {
    size_t lo = 0, hi = r->nframes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const frame *f = &r->frames[mid];
        if (off < f->doff)
            hi = mid;
        else if (off >= f->doff + f->dsize)
            lo = mid + 1;
        else
            return mid;
    }
    return SIZE_MAX;
}

static const uint8_t *get_frame(pyspy_zsk_reader *r, size_t idx,
                                pyspy_error *err) {
    cache_slot *victim = &r->cache[0];
    for (size_t i = 0; i < PYSPY_ZSK_CACHE_FRAMES; i++) {
        cache_slot *s = &r->cache[i];
        if (s->frame == idx) {
            s->last_use = ++r->clock;
            return s->data;
        }
        if (s->frame == SIZE_MAX ||
            (victim->frame != SIZE_MAX && s->last_use < victim->last_use))
            victim = s;
    }
    const frame *f = &r->frames[idx];
    if (pyspy_pread_full(r->fd, r->cbuf, f->csize, f->coff, r->name, err) != 0)
        return NULL;
    uint8_t *d = realloc(victim->data, f->dsize ? f->dsize : 1);
    if (!d) {
        pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        return NULL;
    }
    victim->data = d;
    victim->frame = SIZE_MAX;
    size_t got = ZSTD_decompressDCtx(r->dctx, d, f->dsize, r->cbuf, f->csize);
    r->decompressed++;
    if (ZSTD_isError(got) || got != f->dsize) {
        pyspy_error_set(err, PYSPY_E_FORMAT,
                        "%s is corrupted (zstd frame %zu: %s)", r->name, idx,
                        ZSTD_isError(got) ? ZSTD_getErrorName(got)
                                          : "wrong size");
        return NULL;
    }
    victim->frame = idx;
    victim->last_use = ++r->clock;
    return d;
}

int pyspy_zsk_reader_read(pyspy_zsk_reader *r, uint64_t off, void *buf,
                          size_t len, pyspy_error *err) {
    uint8_t *p = buf;
    if (off > r->dsize || len > r->dsize - off)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is truncated (offset 0x%llx past its end)",
                               r->name, (unsigned long long)off);
    while (len > 0) {
        size_t idx = find_frame(r, off);
        if (idx == SIZE_MAX)
            return pyspy_error_set(err, PYSPY_E_FORMAT,
                                   "%s is corrupted (no frame for 0x%llx)",
                                   r->name, (unsigned long long)off);
        const uint8_t *d = get_frame(r, idx, err);
        if (!d)
            return -1;
        const frame *f = &r->frames[idx];
        uint64_t in = off - f->doff;
        size_t n = f->dsize - in < len ? (size_t)(f->dsize - in) : len;
        memcpy(p, d + in, n);
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

void pyspy_zsk_reader_free(pyspy_zsk_reader *r) {
    if (!r)
        return;
    for (size_t i = 0; i < PYSPY_ZSK_CACHE_FRAMES; i++)
        free(r->cache[i].data);
    ZSTD_freeDCtx(r->dctx);
    free(r->cbuf);
    free(r->frames);
    free(r->name);
    free(r);
}
