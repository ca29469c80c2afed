/* Turning what a user names as a core or snapshot into a descriptor of a
 * regular file: the file itself, or, for a stream (stdin as "-", a pipe,
 * a FIFO, a character device), an unlinked temporary copy of it. Nothing
 * here blocks for good: the open never waits for a FIFO's writer, a
 * stream that brings no first bytes within a grace period is an error,
 * and its first bytes must be an ELF core or a zstd stream of one
 * before anything is spooled. */
#include "capture/memsrc/input.h"
#include "capture/base/clock.h"
#include "capture/base/file_io.h"
#include "capture/core/reader.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <zstd.h>

#define SPOOL_CHUNK (1u << 20)
/* A FIFO nobody has opened for writing, or a device that gives nothing,
 * is given this long to start; someone starting the writer right after
 * pyspy (`pyspy dump f & cat x > f`) is not refused, and nothing waits
 * for good. */
#define FIRST_BYTES_GRACE_MS 2000
/* Enough for an ELF header, or to decompress one out of a zstd stream. */
#define HEAD_BYTES (128u << 10)

static const char *other_compression(const uint8_t *m, size_t n) {
    if (n >= 4 && m[0] == 0xfd && m[1] == '7' && m[2] == 'z' && m[3] == 'X')
        return "xz";
    if (n >= 4 && m[0] == 0x04 && m[1] == 0x22 && m[2] == 0x4d && m[3] == 0x18)
        return "lz4";
    if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b)
        return "gzip";
    return NULL;
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

int pyspy_input_check_head(const uint8_t *h, size_t n, bool complete,
                           const char *name, pyspy_error *err) {
    if (n == 0)
        return pyspy_error_set(err, PYSPY_E_FORMAT, "%s is empty", name);
    if (n >= 4 && le32(h) == ZSTD_MAGICNUMBER) {
        /* The ELF header is the stream's first bytes: decompress them. A
         * frame whose first block is not in hand yet passes unchecked. */
        uint8_t out[64];
        ZSTD_DCtx *d = ZSTD_createDCtx();
        if (!d)
            return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        ZSTD_inBuffer in = {h, n, 0};
        ZSTD_outBuffer o = {out, sizeof out, 0};
        size_t rc = 0;
        while (o.pos < o.size && in.pos < in.size) {
            rc = ZSTD_decompressStream(d, &o, &in);
            if (ZSTD_isError(rc) || rc == 0)
                break;
        }
        ZSTD_freeDCtx(d);
        if (ZSTD_isError(rc))
            return pyspy_error_set(err, PYSPY_E_FORMAT,
                                   "%s is corrupted (zstd: %s in its first "
                                   "frame)",
                                   name, ZSTD_getErrorName(rc));
        if (o.pos == 0 && !complete)
            return 0;
        return pyspy_core_check_ehdr(out, o.pos, name, err);
    }
    const char *how = other_compression(h, n);
    if (how)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is %s-compressed; decompress it first (%s "
                               "-d)",
                               name, how, how);
    if (n < 20 && !complete && memcmp(h, "\177ELF", n < 4 ? n : 4) == 0)
        return 0;
    return pyspy_core_check_ehdr(h, n, name, err);
}

static int64_t now_ms(void) {
    return pyspy_clock_us() / 1000;
}

/* Reads what is there now into buf (fd is non-blocking): >0 bytes, 0 at
 * the end, -1 with errno (EAGAIN: nothing yet). */
static ssize_t read_some(int fd, uint8_t *buf, size_t cap) {
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n < 0 && errno == EINTR)
            continue;
        return n;
    }
}

/* How a stream says it has nothing yet, and whether that can last. */
typedef enum {
    STREAM_PIPE,  /* a pipe or socket: the end is the end; a writer is
                     there, so waiting for data is waiting for it */
    STREAM_FIFO,  /* a named FIFO: it reads as ended until a writer
                     opens it, so that end is believed only once a
                     writer was seen or the grace period is over */
    STREAM_DEVICE /* a device: one that gives nothing (a terminal line,
                     a sensor) gets the grace period for its first bytes */
} stream_kind;

/* The stream's first bytes, up to cap: what arrives before the end, or
 * at least enough to judge the stream by. */
static int read_head(int fd, stream_kind kind, const char *name, uint8_t *buf,
                     size_t cap, size_t *got, bool *ended, pyspy_error *err) {
    int64_t deadline = now_ms() + FIRST_BYTES_GRACE_MS;
    bool writer_seen = kind != STREAM_FIFO;
    *got = 0;
    *ended = false;
    while (*got < cap) {
        ssize_t n = read_some(fd, buf + *got, cap - *got);
        if (n > 0) {
            *got += (size_t)n;
            writer_seen = true;
            continue;
        }
        if (n < 0 && errno != EAGAIN)
            return pyspy_error_set(err, PYSPY_E_IO, "cannot read %s: %s", name,
                                   strerror(errno));
        if (n == 0 && writer_seen) {
            *ended = true;
            return 0;
        }
        if (n < 0)
            writer_seen = true; /* EAGAIN on a FIFO: a writer holds it */
        if (*got >= 64)
            return 0; /* enough to judge it by; the rest is spooled */
        int wait = -1;
        if (kind == STREAM_DEVICE || !writer_seen) {
            int64_t left = deadline - now_ms();
            if (left <= 0)
                return pyspy_error_set(
                    err, PYSPY_E_IO,
                    kind == STREAM_FIFO
                        ? "%s is a FIFO that nothing writes to (waited %d s)"
                        : "%s gives no data (waited %d s)",
                    name, FIRST_BYTES_GRACE_MS / 1000);
            wait = left > 100 ? 100 : (int)left;
        }
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, wait);
        if (r < 0 && errno != EINTR)
            return pyspy_error_set(err, PYSPY_E_IO, "cannot read %s: %s", name,
                                   strerror(errno));
        /* A FIFO reports a hang-up only once a writer has come and gone. */
        if (r > 0 && (p.revents & POLLHUP))
            writer_seen = true;
    }
    return 0;
}

static int too_big(const char *name, uint64_t asked, uint64_t limit,
                   pyspy_error *err) {
    if (asked)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s holds more than the %llu bytes --max-size "
                               "allows",
                               name, (unsigned long long)limit);
    return pyspy_error_set(err, PYSPY_E_FORMAT,
                           "%s holds more than %llu GiB, the most read from "
                           "a stream (--max-size sets another limit; a file "
                           "is read without one)",
                           name, (unsigned long long)(limit >> 30));
}

/* Spools a stream whose head passed the check into a temporary file. */
static int spool(int fd, const char *name, const uint8_t *head, size_t nhead,
                 bool ended, uint64_t max_size, pyspy_error *err) {
    uint64_t limit = max_size ? max_size : PYSPY_DEFAULT_MAX_STREAM;
    if (nhead > limit)
        return too_big(name, max_size, limit, err);
    int out = pyspy_temp_fd("stream", err);
    if (out < 0)
        return -1;
    if (pyspy_write_full(out, head, nhead, "a temporary copy of the input",
                         err) != 0) {
        close(out);
        return -1;
    }
    /* From here on a stream is read as any reader would: blocking. */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    uint8_t *buf = ended ? NULL : malloc(SPOOL_CHUNK);
    if (!ended && !buf) {
        close(out);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    uint64_t total = nhead;
    while (!ended) {
        ssize_t n = read_some(fd, buf, SPOOL_CHUNK);
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {fd, POLLIN, 0};
            poll(&p, 1, -1);
            continue;
        }
        if (n < 0) {
            pyspy_error_set(err, PYSPY_E_IO, "cannot read %s: %s", name,
                            strerror(errno));
            break;
        }
        if (n == 0) {
            free(buf);
            return out;
        }
        total += (uint64_t)n;
        if (total > limit) {
            too_big(name, max_size, limit, err);
            break;
        }
        if (pyspy_write_full(out, buf, (size_t)n,
                             "a temporary copy of the input", err) != 0)
            break;
    }
    free(buf);
    if (ended)
        return out;
    close(out);
    return -1;
}

/* flags: the descriptor's file status flags before it was made
 * non-blocking, put back since stdin's description is shared with
 * whoever else holds it. */
static int open_stream(int fd, int flags, stream_kind kind, const char *name,
                       uint64_t max_size, pyspy_error *err) {
    uint8_t *head = malloc(HEAD_BYTES);
    int out = -1;
    if (!head) {
        pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    } else {
        size_t n = 0;
        bool ended = false;
        if (read_head(fd, kind, name, head, HEAD_BYTES, &n, &ended, err) == 0 &&
            pyspy_input_check_head(head, n, ended, name, err) == 0)
            out = spool(fd, name, head, n, ended, max_size, err);
    }
    free(head);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags);
    close(fd);
    return out;
}

int pyspy_input_open(const char *path, uint64_t max_size, pyspy_error *err) {
    bool is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "stdin" : path;
    struct stat st;
    if (!is_stdin && stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is a socket; give a core file or snapshot, "
                               "or pipe one in as -",
                               name);
    /* O_NONBLOCK: opening a FIFO would otherwise wait for a writer. */
    int fd = is_stdin ? fcntl(0, F_DUPFD_CLOEXEC, 3)
                      : open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return pyspy_error_set(err, errno == EACCES ? PYSPY_E_PERM : PYSPY_E_IO,
                               "cannot open %s: %s", name, strerror(errno));
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return pyspy_error_set(err, PYSPY_E_IO, "cannot read %s: %s", name,
                               strerror(e));
    }
    if (S_ISREG(st.st_mode)) {
        /* stdin redirected from a file, read from where it stands */
        if (is_stdin && lseek(fd, 0, SEEK_CUR) != 0)
            return open_stream(fd, -1, STREAM_PIPE, name, max_size, err);
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        return fd;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is a directory, not a core file or "
                               "snapshot",
                               name);
    }
    if (isatty(fd)) {
        close(fd);
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is a terminal; give a core file or "
                               "snapshot, or pipe one in",
                               name);
    }
    int flags = -1;
    if (is_stdin) {
        /* non-blocking for the head only (spool turns it back) */
        flags = fcntl(fd, F_GETFL);
        if (flags >= 0)
            fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    }
    /* /dev/stdin of a pipe is the pipe itself (pipefs), not a FIFO */
    struct statfs sf;
    bool pipefs = fstatfs(fd, &sf) == 0 && sf.f_type == PIPEFS_MAGIC;
    stream_kind kind = S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)
                           ? STREAM_DEVICE
                       : S_ISFIFO(st.st_mode) && !pipefs ? STREAM_FIFO
                                                         : STREAM_PIPE;
    return open_stream(fd, flags, kind, name, max_size, err);
}
