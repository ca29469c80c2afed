/* Reader of the zstd seekable format (the writer:
 * capture/snapshot/zstd_seekable_writer.c) (facts from the format
 * spec; frames carry zstd content checksums, the seek table does not). */
#include "capture/snapshot/zstd_seekable.h"
#include "capture/base/file_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* ZSTD_d_forceIgnoreChecksum: --allow-damaged reads a frame whose
 * checksum fails (libzstd >= 1.4.7; a parameter, no static-only code). */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>

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

/* What decompressing a frame showed. BAD_SUM: it decodes, but its
 * checksum fails; UNDECODABLE: it does not decode. */
enum { FRAME_UNCHECKED = 0, FRAME_OK, FRAME_BAD_SUM, FRAME_UNDECODABLE };

typedef struct {
    uint64_t coff, doff; /* where the frame starts, compressed/decompressed */
    uint32_t csize, dsize;
    uint8_t state; /* FRAME_*: what decompressing it showed */
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
    bool allow_damaged;
    ZSTD_DCtx *lax; /* ignores checksums, for allow_damaged */
    uint64_t damage_hits;
    size_t first_bad; /* SIZE_MAX: no damage met */
    char why[96];     /* what was wrong with first_bad */
};

bool pyspy_zsk_has_seek_table(int fd, uint64_t size) {
    uint8_t m[4];
    if (size < 8 + FOOTER_SIZE)
        return false;
    if (pyspy_pread_full(fd, m, 4, size - 4, "", NULL) != 0)
        return false;
    return get_le32(m) == SEEKABLE_MAGIC;
}

/* Each entry must point at a zstd frame that says it holds as many bytes
 * as the entry does: sizes that merely add up (two entries swapped, a
 * decompressed size changed) would otherwise serve one frame's bytes as
 * another's. One small read per frame (a 1 GiB snapshot has about a
 * thousand). Frames without a content size are passed over. */
static int check_frame_headers(int fd, const char *name, const frame *fr,
                               uint32_t n, uint64_t tstart, uint64_t fend,
                               pyspy_error *err) {
    for (uint32_t i = 0; i < n; i++) {
        uint8_t h[ZSTD_FRAMEHEADERSIZE_MAX];
        size_t k = fr[i].csize < sizeof h ? fr[i].csize : sizeof h;
        if (pyspy_pread_full(fd, h, k, fr[i].coff, name, err) != 0)
            return -1;
        unsigned long long c = ZSTD_getFrameContentSize(h, k);
        bool zstd = k >= 4 && get_le32(h) == ZSTD_MAGICNUMBER;
        if (!zstd || c == ZSTD_CONTENTSIZE_ERROR ||
            (c != ZSTD_CONTENTSIZE_UNKNOWN && c != fr[i].dsize))
            return pyspy_error_set(
                err, PYSPY_E_FORMAT,
                "%s is corrupted (seek table, file bytes 0x%llx-0x%llx: "
                "entry %u puts a frame of 0x%x bytes at file byte 0x%llx, "
                "where %s)",
                name, (unsigned long long)tstart, (unsigned long long)fend, i,
                fr[i].dsize, (unsigned long long)fr[i].coff,
                !zstd                         ? "no frame starts"
                : c == ZSTD_CONTENTSIZE_ERROR ? "the frame header is damaged"
                                              : "the frame holds another size");
    }
    return 0;
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
    unsigned long long fend = size, foot_at = size - FOOTER_SIZE;
    if (desc & 0x7c)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is corrupted (seek table descriptor at "
                               "file byte 0x%llx)",
                               name, foot_at + 4);
    size_t esize = (desc & 0x80) ? 12 : 8;
    if (n > MAX_FRAMES || (uint64_t)n * esize + FOOTER_SIZE + 8 > size)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is corrupted (seek table frame count %u at "
                               "file bytes 0x%llx-0x%llx is more than the "
                               "file holds)",
                               name, n, foot_at, foot_at + 4);
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
        return pyspy_error_set(
            err, PYSPY_E_FORMAT,
            "%s is corrupted (seek table of %u frames, file bytes "
            "0x%llx-0x%llx: no table header where that count puts it)",
            name, n, (unsigned long long)tstart, fend);
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
            return pyspy_error_set(
                err, PYSPY_E_FORMAT,
                "%s is corrupted (seek table entry %u, file bytes "
                "0x%llx-0x%llx)",
                name, i, (unsigned long long)(tstart + 8 + i * esize),
                (unsigned long long)(tstart + 8 + (i + 1) * esize));
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
            "%s is corrupted (seek table, file bytes 0x%llx-0x%llx: its %u "
            "frames add up to 0x%llx bytes, the file holds 0x%llx before it)",
            name, (unsigned long long)tstart, fend, n, (unsigned long long)coff,
            (unsigned long long)tstart);
    }
    if (check_frame_headers(fd, name, fr, n, tstart, fend, err) != 0) {
        free(r);
        free(fr);
        return -1;
    }
    r->fd = fd;
    r->name = strdup(name);
    r->frames = fr;
    r->nframes = n;
    r->dsize = doff;
    r->dctx = ZSTD_createDCtx();
    r->first_bad = SIZE_MAX;
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

static int damaged(pyspy_zsk_reader *r, size_t idx, const char *why,
                   pyspy_error *err) {
    frame *f = &r->frames[idx];
    r->damage_hits++;
    if (r->first_bad == SIZE_MAX) {
        r->first_bad = idx;
        snprintf(r->why, sizeof r->why, "%s", why);
    }
    return pyspy_error_set(
        err, PYSPY_E_FORMAT,
        "%s is corrupted (zstd frame %zu, file bytes 0x%llx-0x%llx, holding "
        "core bytes 0x%llx-0x%llx: %s)",
        r->name, idx, (unsigned long long)f->coff,
        (unsigned long long)(f->coff + f->csize), (unsigned long long)f->doff,
        (unsigned long long)(f->doff + f->dsize), why);
}

static const char *state_why(uint8_t state) {
    return state == FRAME_BAD_SUM ? "its checksum fails"
                                  : "it does not decompress";
}

static bool decodes(ZSTD_DCtx *d, uint8_t *out, const frame *f,
                    const uint8_t *in, size_t *got) {
    *got = ZSTD_decompressDCtx(d, out, f->dsize, in, f->csize);
    return !ZSTD_isError(*got) && *got == f->dsize;
}

/* A context that ignores checksums, for allow_damaged; NULL if libzstd
 * cannot. */
static ZSTD_DCtx *lax_ctx(pyspy_zsk_reader *r) {
    if (!r->lax && (r->lax = ZSTD_createDCtx()) != NULL &&
        ZSTD_isError(ZSTD_DCtx_setParameter(r->lax, ZSTD_d_forceIgnoreChecksum,
                                            ZSTD_d_ignoreChecksum))) {
        ZSTD_freeDCtx(r->lax);
        r->lax = NULL;
    }
    return r->lax;
}

static const uint8_t *get_frame(pyspy_zsk_reader *r, size_t idx,
                                pyspy_error *err) {
    cache_slot *victim = &r->cache[0];
    frame *f = &r->frames[idx];
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
    /* Known bad and not to be served: no need to decompress it again. */
    if (f->state == FRAME_UNDECODABLE ||
        (f->state == FRAME_BAD_SUM && !r->allow_damaged)) {
        damaged(r, idx, state_why(f->state), err);
        return NULL;
    }
    if (pyspy_pread_full(r->fd, r->cbuf, f->csize, f->coff, r->name, err) != 0)
        return NULL;
    uint8_t *d = realloc(victim->data, f->dsize ? f->dsize : 1);
    if (!d) {
        pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        return NULL;
    }
    victim->data = d;
    victim->frame = SIZE_MAX;
    size_t got = 0;
    r->decompressed++;
    if (f->state != FRAME_BAD_SUM && decodes(r->dctx, d, f, r->cbuf, &got)) {
        f->state = FRAME_OK;
    } else {
        if (f->state != FRAME_BAD_SUM)
            f->state = ZSTD_isError(got) && ZSTD_getErrorCode(got) ==
                                                ZSTD_error_checksum_wrong
                           ? FRAME_BAD_SUM
                           : FRAME_UNDECODABLE;
        /* The bytes of a frame whose checksum alone fails are there to be
         * read, marked as damaged; a frame that does not decode is not. */
        ZSTD_DCtx *lax =
            f->state == FRAME_BAD_SUM && r->allow_damaged ? lax_ctx(r) : NULL;
        if (!lax || !decodes(lax, d, f, r->cbuf, &got)) {
            if (lax)
                f->state = FRAME_UNDECODABLE;
            damaged(r, idx, state_why(f->state), err);
            return NULL;
        }
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
        if (f->state == FRAME_BAD_SUM)
            damaged(r, idx, state_why(f->state), NULL);
        uint64_t in = off - f->doff;
        size_t n = f->dsize - in < len ? (size_t)(f->dsize - in) : len;
        memcpy(p, d + in, n);
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

void pyspy_zsk_reader_allow_damaged(pyspy_zsk_reader *r, bool allow) {
    r->allow_damaged = allow;
}

uint64_t pyspy_zsk_reader_damage_hits(const pyspy_zsk_reader *r) {
    return r->damage_hits;
}

bool pyspy_zsk_reader_first_damage(const pyspy_zsk_reader *r,
                                   pyspy_zsk_damage *out) {
    if (r->first_bad == SIZE_MAX)
        return false;
    const frame *f = &r->frames[r->first_bad];
    out->frame = r->first_bad;
    out->coff = f->coff;
    out->csize = f->csize;
    out->doff = f->doff;
    out->dsize = f->dsize;
    out->why = r->why;
    return true;
}

void pyspy_zsk_reader_free(pyspy_zsk_reader *r) {
    if (!r)
        return;
    for (size_t i = 0; i < PYSPY_ZSK_CACHE_FRAMES; i++)
        free(r->cache[i].data);
    ZSTD_freeDCtx(r->dctx);
    ZSTD_freeDCtx(r->lax);
    free(r->cbuf);
    free(r->frames);
    free(r->name);
    free(r);
}
