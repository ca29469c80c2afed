/* pyspy_memsrc_open_file: a seekable snapshot, a whole-stream zstd core
 * (systemd-coredump) or a plain ELF core, told apart by content. */
#include "capture/snapshot/format.h"
#include "capture/core/reader.h"
#include "capture/base/file_io.h"
#include "capture/snapshot/snapshot.h"
#include "capture/memsrc/input.h"
#include "capture/memsrc/regions.h"
#include "capture/memsrc/zstd_stream.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ZSTD_MAGIC 0xFD2FB528u
#define VERIFY_CHUNK (1u << 20)

typedef struct {
    pyspy_bytesrc bs;
    pyspy_core_layout lay;
    uint8_t *vbuf; /* for digest checks */
    bool allow_damaged;
    pyspy_zstd_bad bad; /* whole-stream cores only */
    /* src->damage names a frame whose bytes read so far all passed their
     * region digests: damage that did touch a read takes its place. */
    bool damage_vouched;
    /* The regions reads go through, as parsed (file offsets, digests and
     * host files are theirs). A lean snapshot shows its MAPS instead
     * (src->regions), whose runs of absent pages these hold. */
    pyspy_region *pieces;
    size_t npieces;
    bool lean;
} core_impl;

int pyspy_bytesrc_read(pyspy_bytesrc *b, uint64_t off, void *buf, size_t len,
                       pyspy_error *err) {
    if (off > b->size || len > b->size - off)
        return pyspy_error_set(err, PYSPY_E_FORMAT, "%s is truncated", b->name);
    if (b->zsk)
        return pyspy_zsk_reader_read(b->zsk, off, buf, len, err);
    return pyspy_pread_full(b->fd, buf, len, off, b->name, err);
}

/* Old snapshots (no DIGESTS note) digest with FNV-1a over the range;
 * newer ones with XXH64 per block, a region being the XXH64 of its block
 * digests. block is the file's block size (a power of two >= 4096) or, with
 * no block table, PYSPY_DIGEST_BLOCK. */
static int digest_range(core_impl *ci, uint64_t off, uint64_t len,
                        uint64_t block, uint64_t *out, pyspy_error *err) {
    if (!ci->vbuf && !(ci->vbuf = malloc(VERIFY_CHUNK)))
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    bool xxh = ci->lay.digest_kind == PYSPY_DIGEST_XXH64;
    if (xxh && len > block) {
        /* whole region: XXH64 of its block digests, folded as they come */
        uint64_t nb = (len + block - 1) / block;
        uint64_t *d = malloc(nb * sizeof *d);
        if (!d)
            return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        for (uint64_t b = 0; b < nb; b++) {
            uint64_t n = len - b * block < block ? len - b * block : block;
            if (digest_range(ci, off + b * block, n, block, &d[b], err)) {
                free(d);
                return -1;
            }
        }
        *out = pyspy_region_digest_from_blocks(d, nb);
        free(d);
        return 0;
    }
    if (xxh && len > VERIFY_CHUNK) {
        /* one block larger than the buffer: read it whole */
        uint8_t *big = malloc(len);
        if (!big)
            return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        int rc = pyspy_bytesrc_read(&ci->bs, off, big, len, err);
        if (rc == 0)
            *out = pyspy_xxh64(big, len, 0);
        free(big);
        return rc;
    }
    if (xxh) {
        if (pyspy_bytesrc_read(&ci->bs, off, ci->vbuf, len, err) != 0)
            return -1;
        *out = pyspy_xxh64(ci->vbuf, len, 0);
        return 0;
    }
    uint64_t h = PYSPY_FNV_INIT, done = 0;
    while (done < len) {
        size_t k =
            len - done < VERIFY_CHUNK ? (size_t)(len - done) : VERIFY_CHUNK;
        if (pyspy_bytesrc_read(&ci->bs, off + done, ci->vbuf, k, err) != 0)
            return -1;
        h = pyspy_fnv1a(h, ci->vbuf, k);
        done += k;
    }
    *out = h;
    return 0;
}

/* Damage met: the first is kept on the source, one line naming the
 * file and the memory range. */
static void note_damage(pyspy_memsrc *src, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note_damage(pyspy_memsrc *src, const char *fmt, ...) {
    core_impl *ci = src->impl;
    src->damaged_reads++;
    if (src->damage && !ci->damage_vouched)
        return;
    free(src->damage);
    src->damage = NULL;
    ci->damage_vouched = false;
    va_list ap;
    va_start(ap, fmt);
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    src->damage = strdup(line);
}

/* Damage in the file that no read is the worse for (the region digests
 * vouch for the bytes read): named, not counted. */
static void note_vouched(pyspy_memsrc *src, core_impl *ci) {
    pyspy_zsk_damage d;
    if (src->damage || !ci->bs.zsk ||
        !pyspy_zsk_reader_first_damage(ci->bs.zsk, &d))
        return;
    char line[512];
    snprintf(line, sizeof line,
             "%s is corrupted (zstd frame %zu, file bytes 0x%llx-0x%llx, "
             "holding core bytes 0x%llx-0x%llx: %s; the region digests vouch "
             "for what was read from it)",
             ci->bs.name, d.frame, (unsigned long long)d.coff,
             (unsigned long long)(d.coff + d.csize), (unsigned long long)d.doff,
             (unsigned long long)(d.doff + d.dsize), d.why);
    src->damage = strdup(line);
    ci->damage_vouched = src->damage != NULL;
}

static int range_damaged(pyspy_memsrc *src, const core_impl *ci,
                         const pyspy_region *r, uint64_t lo, uint64_t hi,
                         const char *why, pyspy_error *err) {
    note_damage(src, "%s is corrupted (memory 0x%llx-0x%llx%s%s %s)",
                ci->bs.name, (unsigned long long)lo, (unsigned long long)hi,
                r->path ? " of " : "", r->path ? r->path : "", why);
    if (ci->allow_damaged)
        return 0;
    return pyspy_error_set(
        err, PYSPY_E_FORMAT, "%s is corrupted (memory 0x%llx-0x%llx%s%s %s)",
        ci->bs.name, (unsigned long long)lo, (unsigned long long)hi,
        r->path ? " of " : "", r->path ? r->path : "", why);
}

/* Digests are checked the first time bytes are read: per block when the
 * snapshot has block digests (a read costs what it touches), else the
 * whole region once. Opening stays cheap and a corrupted region is named
 * when touched. A block (or region) that fails is an error, or with
 * allow_damaged a damaged read, each time it is read. */
static int verify(pyspy_memsrc *src, core_impl *ci, size_t i, uint64_t in,
                  size_t len, pyspy_error *err) {
    if (!ci->lay.checks)
        return 0;
    pyspy_region_check *k = &ci->lay.checks[i];
    const pyspy_region *r = &ci->pieces[i];
    uint64_t size = r->end - r->start, h;
    if (k->nblocks) {
        uint64_t bs = ci->lay.block_size;
        uint64_t bad_lo = 0, bad_hi = 0;
        for (uint64_t b = in / bs; b <= (in + len - 1) / bs && b < k->nblocks;
             b++) {
            uint64_t n = size - b * bs < bs ? size - b * bs : bs;
            if (k->block_ok[b] == PYSPY_CHECK_UNREAD) {
                if (digest_range(ci, ci->lay.file_off[i] + b * bs, n, bs, &h,
                                 err))
                    return -1;
                k->block_ok[b] =
                    h == k->blocks[b] ? PYSPY_CHECK_OK : PYSPY_CHECK_BAD;
            }
            if (k->block_ok[b] == PYSPY_CHECK_BAD) {
                if (bad_hi == 0)
                    bad_lo = r->start + b * bs;
                bad_hi = r->start + b * bs + n;
            }
        }
        if (bad_hi)
            return range_damaged(src, ci, r, bad_lo, bad_hi, "fails its digest",
                                 err);
        return 0;
    }
    if (!k->has_digest)
        return 0;
    if (!k->verified) {
        uint64_t bs =
            ci->lay.block_size ? ci->lay.block_size : PYSPY_DIGEST_BLOCK;
        if (digest_range(ci, ci->lay.file_off[i], size, bs, &h, err) != 0)
            return -1;
        k->bad = h != k->digest;
        k->verified = true;
    }
    if (k->bad)
        return range_damaged(src, ci, r, r->start, r->end, "fails its digest",
                             err);
    return 0;
}

/* A read of file bytes [off, off+len) of region i touched a zstd frame
 * that failed its checks: name the memory it holds. */
static int frame_damaged(pyspy_memsrc *src, core_impl *ci, size_t i,
                         uint64_t off, uint64_t len, pyspy_error *err) {
    const pyspy_region *r = &ci->pieces[i];
    uint64_t base = ci->lay.file_off[i], lo = off, hi = off + len;
    pyspy_zsk_damage d;
    char why[160] = "is in a damaged zstd frame";
    uint64_t rend = base + (r->end - r->start);
    if (ci->bs.zsk && pyspy_zsk_reader_first_damage(ci->bs.zsk, &d) &&
        d.doff < rend && d.doff + d.dsize > base) {
        /* the first damage met is in this region (the read, or the digest
         * block around it): all of the region it holds */
        lo = d.doff > base ? d.doff : base;
        hi = d.doff + d.dsize < base + (r->end - r->start)
                 ? d.doff + d.dsize
                 : base + (r->end - r->start);
        snprintf(why, sizeof why,
                 "is in zstd frame %zu, file bytes 0x%llx-0x%llx: %s", d.frame,
                 (unsigned long long)d.coff,
                 (unsigned long long)(d.coff + d.csize), d.why);
    }
    int rc = range_damaged(src, ci, r, r->start + (lo - base),
                           r->start + (hi - base), why, err);
    return rc;
}

static bool digested(const core_impl *ci, size_t i) {
    return ci->lay.checks &&
           (ci->lay.checks[i].nblocks || ci->lay.checks[i].has_digest);
}

static bool in_bad_range(const core_impl *ci, uint64_t off, uint64_t len) {
    for (size_t j = 0; j < ci->bad.n; j++)
        if (ci->bad.v[j].off < off + len &&
            ci->bad.v[j].off + ci->bad.v[j].len > off)
            return true;
    return false;
}

/* As the mapping shows it: bytes past the end of the file read as
 * zeros. */
static int read_host_file(core_impl *ci, const pyspy_region *r, size_t i,
                          uint64_t addr, uint8_t *p, size_t k,
                          pyspy_error *err) {
    int fd = ci->lay.fds[ci->lay.host_fd[i]];
    uint64_t off = r->file_offset + (addr - r->start);
    size_t got = 0;
    while (got < k) {
        ssize_t n = pread(fd, p + got, k - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return pyspy_error_set(err, PYSPY_E_UNREADABLE,
                                   "cannot read %s: %s", r->path,
                                   strerror(errno));
        if (n == 0)
            break;
        got += (size_t)n;
    }
    memset(p + got, 0, k - got);
    return 0;
}

static int core_read(pyspy_memsrc *src, uint64_t addr, void *buf, size_t len,
                     pyspy_error *err) {
    core_impl *ci = src->impl;
    uint8_t *p = buf;
    while (len > 0) {
        size_t i = pyspy_regions_index(ci->pieces, ci->npieces, addr);
        if (i == ci->npieces)
            return pyspy_error_set(err, PYSPY_E_UNREADABLE,
                                   "address 0x%llx is not mapped in %s",
                                   (unsigned long long)addr, src->origin);
        pyspy_region *r = &ci->pieces[i];
        if (!r->present && ci->lean) {
            r->wanted = true;
            /* shown on the region the walk sees, so the analysis can say
             * what it missed */
            size_t m = pyspy_regions_index(src->regions, src->nregions, addr);
            if (m < src->nregions) {
                src->regions[m].wanted = true;
                src->regions[m].absent_why = PYSPY_ABSENT_LEAN;
            }
            return pyspy_error_set(err, PYSPY_E_UNREADABLE,
                                   "address 0x%llx is in a page absent from "
                                   "%s (a lean snapshot holds only the pages "
                                   "its analysis read)",
                                   (unsigned long long)addr, src->origin);
        }
        if (!r->present) {
            r->wanted = true;
            return pyspy_error_set(err, PYSPY_E_UNREADABLE,
                                   "address 0x%llx is in a region absent "
                                   "from %s",
                                   (unsigned long long)addr, src->origin);
        }
        size_t k = r->end - addr < len ? (size_t)(r->end - addr) : len;
        if (ci->lay.host_fd && ci->lay.host_fd[i] >= 0) {
            if (read_host_file(ci, r, i, addr, p, k, err) != 0)
                return -1;
            p += k;
            addr += k;
            len -= k;
            continue;
        }
        uint64_t off = ci->lay.file_off[i] + (addr - r->start);
        uint64_t hits =
            ci->bs.zsk ? pyspy_zsk_reader_damage_hits(ci->bs.zsk) : 0;
        int rc = verify(src, ci, i, addr - r->start, k, err);
        if (rc == 0)
            rc = pyspy_bytesrc_read(&ci->bs, off, p, k, err);
        /* With allow_damaged a frame whose checksum fails is served; where
         * the region has digests they tell which of its bytes are sound
         * (verify marked the rest), so only a read they do not cover is
         * damaged for being in that frame. */
        bool vouched = ci->allow_damaged && rc == 0 && digested(ci, i);
        bool hit =
            ci->bs.zsk && pyspy_zsk_reader_damage_hits(ci->bs.zsk) != hits;
        if (hit && vouched) {
            note_vouched(src, ci);
        } else if (hit) {
            /* the frame's own message names file bytes; this names the
             * memory too */
            pyspy_error ferr = {0};
            if (frame_damaged(src, ci, i, off, k, &ferr) != 0 && rc != 0 && err)
                *err = ferr;
        } else if (rc == 0 && ci->bad.n && !vouched &&
                   in_bad_range(ci, off, k)) {
            rc = range_damaged(src, ci, r, addr, addr + k,
                               "is in a zstd frame whose checksum fails", err);
        }
        if (rc != 0)
            return -1;
        p += k;
        addr += k;
        len -= k;
    }
    return 0;
}

static void core_close(pyspy_memsrc *src) {
    core_impl *ci = src->impl;
    if (ci && ci->lean) {
        for (size_t i = 0; i < src->nregions; i++)
            free(src->regions[i].path);
        free(src->regions);
        src->regions = ci->pieces;
        src->nregions = ci->npieces;
    }
    if (ci) {
        pyspy_core_free_fields(src, &ci->lay);
        pyspy_zsk_reader_free(ci->bs.zsk);
        free(ci->vbuf);
        free(ci->bad.v);
        if (ci->bs.fd >= 0)
            close(ci->bs.fd);
        free(ci);
    }
    free(src->damage);
    free(src->origin);
    free(src);
}

static const pyspy_memsrc_ops core_ops = {
    .kind = "core", .read = core_read, .close = core_close};
static const pyspy_memsrc_ops zcore_ops = {
    .kind = "zstd-core", .read = core_read, .close = core_close};
static const pyspy_memsrc_ops snap_ops = {
    .kind = "snapshot", .read = core_read, .close = core_close};

/* Damage met while opening (headers, notes, module data) has no memory
 * range: the frame's, or the stream's first damaged bytes. */
static void note_open_damage(pyspy_memsrc *src, core_impl *ci) {
    pyspy_zsk_damage d;
    if (ci->bs.zsk && pyspy_zsk_reader_first_damage(ci->bs.zsk, &d) &&
        !src->damage)
        note_damage(src,
                    "%s is corrupted (zstd frame %zu, file bytes "
                    "0x%llx-0x%llx, holding core bytes 0x%llx-0x%llx: %s)",
                    ci->bs.name, d.frame, (unsigned long long)d.coff,
                    (unsigned long long)(d.coff + d.csize),
                    (unsigned long long)d.doff,
                    (unsigned long long)(d.doff + d.dsize), d.why);
    if (!src->damage && ci->bad.n)
        note_damage(src,
                    "%s is corrupted (core bytes 0x%llx-0x%llx are in a zstd "
                    "frame whose checksum fails)",
                    ci->bs.name, (unsigned long long)ci->bad.v[0].off,
                    (unsigned long long)(ci->bad.v[0].off + ci->bad.v[0].len));
}

int pyspy_memsrc_open_file(const char *path, pyspy_memsrc **out,
                           pyspy_error *err) {
    return pyspy_memsrc_open_file_with(path, NULL, out, err);
}

int pyspy_memsrc_open_file_with(const char *path, const pyspy_file_opts *opts,
                                pyspy_memsrc **out, pyspy_error *err) {
    int fd = pyspy_input_open(path, opts ? opts->max_stream_size : 0, err);
    if (fd < 0)
        return -1;
    return pyspy_memsrc_open_fd(fd, strcmp(path, "-") == 0 ? "stdin" : path,
                                opts, out, err);
}

int pyspy_memsrc_open_fd(int fd, const char *name, const pyspy_file_opts *opts,
                         pyspy_memsrc **out, pyspy_error *err) {
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is not a core file or snapshot", name);
    }
    uint8_t head[64] = {0};
    uint64_t size = (uint64_t)st.st_size;
    size_t nhead = size < sizeof head ? (size_t)size : sizeof head;
    if (pyspy_pread_full(fd, head, nhead, 0, name, err) != 0 ||
        pyspy_input_check_head(head, nhead, size == nhead, name, err) != 0) {
        close(fd);
        return -1;
    }
    uint32_t m = (uint32_t)head[0] | (uint32_t)head[1] << 8 |
                 (uint32_t)head[2] << 16 | (uint32_t)head[3] << 24;
    pyspy_memsrc *src = calloc(1, sizeof *src);
    core_impl *ci = calloc(1, sizeof *ci);
    if (!src || !ci) {
        free(src);
        free(ci);
        close(fd);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    src->impl = ci;
    src->origin = strdup(name);
    ci->bs.fd = fd;
    ci->bs.size = size;
    ci->bs.name = src->origin ? src->origin : "input";
    ci->allow_damaged = opts && opts->allow_damaged;
    src->ops = &core_ops;
    if (m == ZSTD_MAGIC) {
        pyspy_error zerr = {0};
        bool seekable = pyspy_zsk_has_seek_table(fd, size);
        if (seekable && pyspy_zsk_reader_open(fd, size, ci->bs.name,
                                              &ci->bs.zsk, &zerr) == 0) {
            ci->bs.size = pyspy_zsk_reader_size(ci->bs.zsk);
            pyspy_zsk_reader_allow_damaged(ci->bs.zsk, ci->allow_damaged);
            src->ops = &snap_ops;
        } else {
            /* A seek table that does not match its file is damage. With
             * allow_damaged the frames are still read as one stream, as
             * zstd -d would, their checksums and the region digests
             * checked as ever. */
            if (seekable && !ci->allow_damaged) {
                *err = zerr;
                goto fail;
            }
            if (seekable)
                note_damage(src, "%s; read as one stream", zerr.msg);
            uint64_t dsize = 0;
            int tfd = pyspy_zstd_stream_to_temp(
                fd, ci->bs.name, ci->allow_damaged, &ci->bad, &dsize, err);
            if (tfd < 0)
                goto fail;
            close(fd);
            ci->bs.fd = tfd;
            ci->bs.size = dsize;
            src->ops = &zcore_ops;
        }
    }
    if (pyspy_core_parse(&ci->bs, src, &ci->lay, err) != 0)
        goto fail;
    /* reads while the modules are added go through the parsed regions,
     * which that may grow */
    ci->pieces = src->regions;
    ci->npieces = src->nregions;
    pyspy_core_add_host_modules(src, &ci->lay, opts);
    ci->pieces = src->regions;
    ci->npieces = src->nregions;
    if (ci->lay.maps) {
        src->regions = ci->lay.maps;
        src->nregions = ci->lay.nmaps;
        ci->lay.maps = NULL;
        ci->lay.nmaps = 0;
        ci->lean = true;
    }
    note_open_damage(src, ci);
    if (!ci->lay.has_pyspy) {
        /* a kernel core is written when the process dies */
        src->proc.capture_time_ns =
            (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    }
    *out = src;
    return 0;
fail:
    /* what failed may be the damage's doing (--allow-damaged) */
    note_open_damage(src, ci);
    if (src->damage && err && !strstr(err->msg, src->damage))
        pyspy_error_prefix(err, "%s", src->damage);
    core_close(src);
    return -1;
}
