/* pyspy_memsrc_open_file: a seekable snapshot, a whole-stream zstd core
 * (systemd-coredump) or a plain ELF core, told apart by content. */
#include "capture/snapshot/format.h"
#include "capture/core/reader.h"
#include "capture/base/file_io.h"
#include "capture/snapshot/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define ZSTD_MAGIC 0xFD2FB528u
/* A whole-stream core is decompressed to disk; this bounds a zstd bomb. */
#define MAX_ZSTD_CORE (256ull << 30)
#define VERIFY_CHUNK (1u << 20)

typedef struct {
    pyspy_bytesrc bs;
    pyspy_core_layout lay;
    uint8_t *vbuf; /* for digest checks */
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

static int mismatch(const core_impl *ci, const pyspy_region *r,
                    pyspy_error *err) {
    return pyspy_error_set(
        err, PYSPY_E_FORMAT,
        "%s is corrupted (region 0x%llx-0x%llx%s%s fails its digest)",
        ci->bs.name, (unsigned long long)r->start, (unsigned long long)r->end,
        r->path ? " " : "", r->path ? r->path : "");
}

/* Digests are checked the first time bytes are read: per block when the
 * snapshot has block digests (a read costs what it touches), else the
 * whole region once. Opening stays cheap and a corrupted region is named
 * when touched. */
static int verify(pyspy_memsrc *src, core_impl *ci, size_t i, uint64_t in,
                  size_t len, pyspy_error *err) {
    if (!ci->lay.checks)
        return 0;
    pyspy_region_check *k = &ci->lay.checks[i];
    const pyspy_region *r = &src->regions[i];
    uint64_t size = r->end - r->start, h;
    if (k->nblocks) {
        uint64_t bs = ci->lay.block_size;
        for (uint64_t b = in / bs; b <= (in + len - 1) / bs && b < k->nblocks;
             b++) {
            if (k->block_ok[b])
                continue;
            uint64_t n = size - b * bs < bs ? size - b * bs : bs;
            if (digest_range(ci, ci->lay.file_off[i] + b * bs, n, bs, &h, err))
                return -1;
            if (h != k->blocks[b])
                return mismatch(ci, r, err);
            k->block_ok[b] = 1;
        }
        return 0;
    }
    if (!k->has_digest || k->verified)
        return 0;
    uint64_t bs = ci->lay.block_size ? ci->lay.block_size : PYSPY_DIGEST_BLOCK;
    if (digest_range(ci, ci->lay.file_off[i], size, bs, &h, err) != 0)
        return -1;
    if (h != k->digest)
        return mismatch(ci, r, err);
    k->verified = true;
    return 0;
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
        const pyspy_region *r = pyspy_memsrc_region_at(src, addr);
        if (!r)
            return pyspy_error_set(err, PYSPY_E_UNREADABLE,
                                   "address 0x%llx is not mapped in %s",
                                   (unsigned long long)addr, src->origin);
        size_t i = (size_t)(r - src->regions);
        if (!r->present) {
            src->regions[i].wanted = true;
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
        if (verify(src, ci, i, addr - r->start, k, err) != 0)
            return -1;
        if (pyspy_bytesrc_read(&ci->bs, ci->lay.file_off[i] + (addr - r->start),
                               p, k, err) != 0)
            return -1;
        p += k;
        addr += k;
        len -= k;
    }
    return 0;
}

static void core_close(pyspy_memsrc *src) {
    core_impl *ci = src->impl;
    if (ci) {
        pyspy_core_free_fields(src, &ci->lay);
        pyspy_zsk_reader_free(ci->bs.zsk);
        free(ci->vbuf);
        if (ci->bs.fd >= 0)
            close(ci->bs.fd);
        free(ci);
    }
    free(src->origin);
    free(src);
}

static const pyspy_memsrc_ops core_ops = {
    .kind = "core", .read = core_read, .close = core_close};
static const pyspy_memsrc_ops zcore_ops = {
    .kind = "zstd-core", .read = core_read, .close = core_close};
static const pyspy_memsrc_ops snap_ops = {
    .kind = "snapshot", .read = core_read, .close = core_close};

/* Decompresses a whole-stream zstd file into an unlinked temporary file
 * in $TMPDIR; returns its fd. */
static int decompress_to_temp(int in, const char *name, uint64_t *size_out,
                              pyspy_error *err) {
    int out = pyspy_temp_fd("core", err);
    if (out < 0)
        return -1;
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    size_t in_cap = ZSTD_DStreamInSize(), out_cap = ZSTD_DStreamOutSize();
    uint8_t *ib = malloc(in_cap), *ob = malloc(out_cap);
    int rc = -1;
    uint64_t total = 0, in_off = 0;
    size_t last = 1; /* 0 when the last frame ended cleanly */
    if (!dctx || !ib || !ob) {
        pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t n = pread(in, ib, in_cap, (off_t)in_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            pyspy_error_set(err, PYSPY_E_IO, "cannot read %s: %s", name,
                            strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        in_off += (uint64_t)n;
        ZSTD_inBuffer zin = {ib, (size_t)n, 0};
        while (zin.pos < zin.size) {
            ZSTD_outBuffer zout = {ob, out_cap, 0};
            last = ZSTD_decompressStream(dctx, &zout, &zin);
            if (ZSTD_isError(last)) {
                pyspy_error_set(err, PYSPY_E_FORMAT,
                                "%s is corrupted (zstd: %s)", name,
                                ZSTD_getErrorName(last));
                goto out;
            }
            total += zout.pos;
            if (total > MAX_ZSTD_CORE) {
                pyspy_error_set(err, PYSPY_E_FORMAT,
                                "%s decompresses to more than %llu GiB", name,
                                MAX_ZSTD_CORE >> 30);
                goto out;
            }
            if (pyspy_write_full(out, ob, zout.pos, "a temporary file", err) !=
                0)
                goto out;
        }
    }
    if (last != 0) {
        pyspy_error_set(err, PYSPY_E_FORMAT,
                        "%s is truncated (seek table missing)", name);
        goto out;
    }
    *size_out = total;
    rc = 0;
out:
    ZSTD_freeDCtx(dctx);
    free(ib);
    free(ob);
    if (rc != 0) {
        close(out);
        return -1;
    }
    return out;
}

/* Older systemd-coredump and hand-made archives use these; naming the
 * tool beats "not a core file". */
static const char *other_compression(const uint8_t m[4]) {
    if (m[0] == 0xfd && m[1] == '7' && m[2] == 'z' && m[3] == 'X')
        return "xz";
    if (m[0] == 0x04 && m[1] == 0x22 && m[2] == 0x4d && m[3] == 0x18)
        return "lz4";
    if (m[0] == 0x1f && m[1] == 0x8b)
        return "gzip";
    return NULL;
}

int pyspy_memsrc_open_file(const char *path, pyspy_memsrc **out,
                           pyspy_error *err) {
    return pyspy_memsrc_open_file_with(path, NULL, out, err);
}

int pyspy_memsrc_open_file_with(const char *path, const pyspy_file_opts *opts,
                                pyspy_memsrc **out, pyspy_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pyspy_error_set(err, errno == EACCES ? PYSPY_E_PERM : PYSPY_E_IO,
                               "cannot open %s: %s", path, strerror(errno));
    return pyspy_memsrc_open_fd(fd, path, opts, out, err);
}

int pyspy_memsrc_open_fd(int fd, const char *name, const pyspy_file_opts *opts,
                         pyspy_memsrc **out, pyspy_error *err) {
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is not a core file or snapshot", name);
    }
    uint8_t magic[4] = {0};
    uint64_t size = (uint64_t)st.st_size;
    if (size < 4 || pyspy_pread_full(fd, magic, 4, 0, name, NULL) != 0) {
        close(fd);
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is not a core file or snapshot", name);
    }
    uint32_t m = (uint32_t)magic[0] | (uint32_t)magic[1] << 8 |
                 (uint32_t)magic[2] << 16 | (uint32_t)magic[3] << 24;
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
    src->ops = &core_ops;
    if (m == ZSTD_MAGIC) {
        /* A damaged seek table does not make the frames unreadable: such a
         * file is read as one stream, as zstd -d would. */
        pyspy_error zerr = {0};
        if (pyspy_zsk_has_seek_table(fd, size) &&
            pyspy_zsk_reader_open(fd, size, ci->bs.name, &ci->bs.zsk, &zerr) ==
                0) {
            ci->bs.size = pyspy_zsk_reader_size(ci->bs.zsk);
            src->ops = &snap_ops;
        } else {
            uint64_t dsize = 0;
            int tfd = decompress_to_temp(fd, ci->bs.name, &dsize, err);
            if (tfd < 0)
                goto fail;
            close(fd);
            ci->bs.fd = tfd;
            ci->bs.size = dsize;
            src->ops = &zcore_ops;
        }
    } else if (memcmp(magic, "\177ELF", 4) != 0) {
        const char *how = other_compression(magic);
        if (how)
            pyspy_error_set(err, PYSPY_E_FORMAT,
                            "%s is %s-compressed; decompress it first (%s -d)",
                            ci->bs.name, how, how);
        else
            pyspy_error_set(err, PYSPY_E_FORMAT,
                            "%s is not a core file or snapshot", ci->bs.name);
        goto fail;
    }
    if (pyspy_core_parse(&ci->bs, src, &ci->lay, err) != 0)
        goto fail;
    pyspy_core_add_host_modules(src, &ci->lay, opts);
    if (!ci->lay.has_pyspy) {
        /* a kernel core is written when the process dies */
        src->proc.capture_time_ns =
            (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    }
    *out = src;
    return 0;
fail:
    core_close(src);
    return -1;
}
