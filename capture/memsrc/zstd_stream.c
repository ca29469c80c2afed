/* A whole-stream zstd core (systemd-coredump's) decompressed into an
 * unlinked temporary file, every frame's checksum checked as it goes.
 * (capture/memsrc/file.c reads the result as a plain core.) */
#include "capture/memsrc/zstd_stream.h"
#include "capture/base/file_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* ZSTD_d_forceIgnoreChecksum, for --allow-damaged (libzstd >= 1.4.7) */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>

/* This bounds a zstd bomb. */
#define MAX_ZSTD_CORE (256ull << 30)
#define MAX_BAD_RANGES 4096

/* Where the stream decoder stands: frames are decoded one after another,
 * and one whose checksum fails (with allow_damaged) is decoded again from
 * its start ignoring it, its bytes then remembered as damaged. */
typedef struct {
    int in, out;
    const char *name;
    ZSTD_DCtx *dctx;
    uint8_t *ib, *ob;
    size_t in_cap, out_cap;
    uint64_t in_off; /* next byte of the file to feed */
    uint64_t total;  /* bytes written out */
    uint64_t fc, fd; /* the current frame's start: file, output */
    bool lax;        /* the current frame is read ignoring its checksum */
} stream_dec;

static int lax_mode(stream_dec *s, bool lax) {
    ZSTD_DCtx_reset(s->dctx, ZSTD_reset_session_only);
    s->lax = lax;
    size_t rc = ZSTD_DCtx_setParameter(s->dctx, ZSTD_d_forceIgnoreChecksum,
                                       lax ? ZSTD_d_ignoreChecksum
                                           : ZSTD_d_validateChecksum);
    return ZSTD_isError(rc) ? -1 : 0;
}

static int add_bad(pyspy_zstd_bad *bad, const char *name, uint64_t off,
                   uint64_t len, pyspy_error *err) {
    if (bad->n >= MAX_BAD_RANGES)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is corrupted (more than %d damaged zstd "
                               "frames)",
                               name, MAX_BAD_RANGES);
    pyspy_byte_range *nb = realloc(bad->v, (bad->n + 1) * sizeof *nb);
    if (!nb)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    bad->v = nb;
    bad->v[bad->n++] = (pyspy_byte_range){off, len};
    return 0;
}

static int stream_error(stream_dec *s, size_t code, uint64_t at,
                        pyspy_error *err) {
    return pyspy_error_set(
        err, PYSPY_E_FORMAT,
        "%s is corrupted (zstd frame at file byte 0x%llx, holding core "
        "bytes from 0x%llx: %s by file byte 0x%llx)",
        s->name, (unsigned long long)s->fc, (unsigned long long)s->fd,
        ZSTD_getErrorName(code), (unsigned long long)at);
}

int pyspy_zstd_stream_to_temp(int in, const char *name, bool allow_damaged,
                              pyspy_zstd_bad *bad, uint64_t *size_out,
                              pyspy_error *err) {
    stream_dec s = {.in = in, .name = name};
    s.out = pyspy_temp_fd("core", err);
    if (s.out < 0)
        return -1;
    s.dctx = ZSTD_createDCtx();
    s.in_cap = ZSTD_DStreamInSize();
    s.out_cap = ZSTD_DStreamOutSize();
    s.ib = malloc(s.in_cap);
    s.ob = malloc(s.out_cap);
    int rc = -1;
    size_t last = 1; /* 0 when the last frame ended cleanly */
    if (!s.dctx || !s.ib || !s.ob) {
        pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t n = pread(in, s.ib, s.in_cap, (off_t)s.in_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            pyspy_error_set(err, PYSPY_E_IO, "cannot read %s: %s", s.name,
                            strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        uint64_t base = s.in_off;
        s.in_off += (uint64_t)n;
        ZSTD_inBuffer zin = {s.ib, (size_t)n, 0};
        bool restart = false;
        while (zin.pos < zin.size && !restart) {
            ZSTD_outBuffer zout = {s.ob, s.out_cap, 0};
            last = ZSTD_decompressStream(s.dctx, &zout, &zin);
            if (ZSTD_isError(last)) {
                bool sum = ZSTD_getErrorCode(last) == ZSTD_error_checksum_wrong;
                if (!sum || !allow_damaged || s.lax) {
                    stream_error(&s, last, base + zin.pos, err);
                    goto out;
                }
                /* again from the frame's start, ignoring its checksum */
                if (lax_mode(&s, true) != 0 ||
                    ftruncate(s.out, (off_t)s.fd) != 0 ||
                    lseek(s.out, (off_t)s.fd, SEEK_SET) < 0) {
                    stream_error(&s, last, base + zin.pos, err);
                    goto out;
                }
                s.total = s.fd;
                s.in_off = s.fc;
                restart = true;
                break;
            }
            s.total += zout.pos;
            if (s.total > MAX_ZSTD_CORE) {
                pyspy_error_set(err, PYSPY_E_FORMAT,
                                "%s decompresses to more than %llu GiB", s.name,
                                MAX_ZSTD_CORE >> 30);
                goto out;
            }
            if (pyspy_write_full(s.out, s.ob, zout.pos, "a temporary file",
                                 err) != 0)
                goto out;
            if (last == 0) {
                /* a frame ended: the next starts here */
                if (s.lax &&
                    (add_bad(bad, name, s.fd, s.total - s.fd, err) != 0 ||
                     lax_mode(&s, false) != 0))
                    goto out;
                s.fc = base + zin.pos;
                s.fd = s.total;
            }
        }
    }
    if (last != 0) {
        pyspy_error_set(err, PYSPY_E_FORMAT,
                        "%s is truncated (its zstd frame at file byte 0x%llx "
                        "ends early)",
                        s.name, (unsigned long long)s.fc);
        goto out;
    }
    *size_out = s.total;
    rc = 0;
out:
    ZSTD_freeDCtx(s.dctx);
    free(s.ib);
    free(s.ob);
    if (rc != 0) {
        close(s.out);
        return -1;
    }
    return s.out;
}
