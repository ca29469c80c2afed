/* Output files that appear under their name only once whole (the scheme
 * and its reasons are in out_file.h). */
#include "capture/base/out_file.h"
#include "capture/base/file_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Tries at a fresh temporary name before giving up: a clash needs another
 * writer picking the same six random characters in the same folder. */
#define NAME_TRIES 100

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

char *pyspy_temp_name_for(const char *path) {
    static const char chars[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static atomic_uint counter;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    size_t n = strlen(path) + 16;
    char *t = malloc(n);
    if (!t)
        return NULL;
    unsigned char r[6];
    if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        /* Only uniqueness is needed (O_EXCL retries on a clash). */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 20) ^
                     (uint64_t)(atomic_fetch_add(&counter, 1) + 1) *
                         0x9e3779b97f4a7c15ull;
        for (size_t i = 0; i < sizeof r; i++, x >>= 8)
            r[i] = (unsigned char)x;
    }
    char suffix[7];
    for (size_t i = 0; i < sizeof r; i++)
        suffix[i] = chars[r[i] % (sizeof chars - 1)];
    suffix[6] = 0;
    snprintf(t, n, "%.*s.%s.%s", dirlen, path, base, suffix);
    return t;
}

static int io_error(pyspy_error *err, int e, const char *what,
                    const char *path) {
    if (e == ENOSPC || e == EDQUOT)
        return pyspy_error_set(err, PYSPY_E_IO,
                               "no space left on device writing %s", path);
    return pyspy_error_set(err, PYSPY_E_IO, "cannot %s %s: %s", what, path,
                           strerror(e));
}

/* Claims a fresh "<dir>/.<name>.XXXXXX" for path: claim(name, ctx) makes
 * it (>= 0) or fails with errno, EEXIST meaning another name is tried.
 * The name is *name_out on success, malloc'd. */
static int claim_temp_name(const char *path, int (*claim)(const char *, void *),
                           void *ctx, char **name_out) {
    for (int tries = 0; tries < NAME_TRIES; tries++) {
        char *tmp = pyspy_temp_name_for(path);
        if (!tmp) {
            errno = ENOMEM;
            return -1;
        }
        int rc = claim(tmp, ctx);
        if (rc >= 0) {
            *name_out = tmp;
            return rc;
        }
        int e = errno;
        free(tmp);
        if (e != EEXIST) {
            errno = e;
            return -1;
        }
    }
    errno = EEXIST;
    return -1;
}

static int create_excl(const char *name, void *ctx) {
    return open(name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                *(const mode_t *)ctx);
}

/* A new "<dir>/.<name>.XXXXXX", never through a symlink or over a file. */
static int open_named_temp(const char *path, mode_t mode, char **tmp_out) {
    return claim_temp_name(path, create_excl, &mode, tmp_out);
}

/* What is at path decides how it is written: nothing or a regular file,
 * the scheme of out_file.h; a character device (/dev/null, a terminal) or
 * a FIFO with a reader (a pipe), straight to it (*device), as there is
 * nothing to replace; anything else is refused before a snapshot's worth
 * of data is written for nothing.
 *
 * A symlink is followed only when it is the caller's own or root's (as
 * /dev/stdout is): one owned by anybody else may have been planted in a
 * shared folder (/tmp) to aim a root-run `record -o` at another file, and
 * is refused. A followed link to a regular file is written as that file
 * (the link stays); it is never replaced, which would turn /dev/stdout or
 * a link the user made into a plain file. */
static int start(pyspy_out_file *o, const char *path, mode_t mode, bool *device,
                 pyspy_error *err) {
    *o = (pyspy_out_file){.fd = -1, .mode = mode};
    *device = false;
    if (!path || !*path)
        return pyspy_error_set(err, PYSPY_E_USAGE, "no output path given");
    struct stat st;
    bool there = lstat(path, &st) == 0;
    if (path[strlen(path) - 1] == '/' || (there && S_ISDIR(st.st_mode)))
        return pyspy_error_set(err, PYSPY_E_IO, "cannot create %s: %s", path,
                               strerror(EISDIR));
    char *resolved = NULL;
    if (there && S_ISLNK(st.st_mode)) {
        if (st.st_uid != geteuid() && st.st_uid != 0)
            return pyspy_error_set(
                err, PYSPY_E_IO,
                "will not write %s: it is a symbolic link owned by another "
                "user (uid %u; give the path of the file it points to)",
                path, (unsigned)st.st_uid);
        if (stat(path, &st) != 0)
            return pyspy_error_set(
                err, PYSPY_E_IO,
                "will not write %s: it is a symbolic link to a file that "
                "does not exist (give the path of the file it should make)",
                path);
        if (S_ISDIR(st.st_mode))
            return pyspy_error_set(err, PYSPY_E_IO, "cannot create %s: %s",
                                   path, strerror(EISDIR));
        o->follow = true;
        if (S_ISREG(st.st_mode)) {
            /* Written beside, and renamed over, the file it names. */
            resolved = realpath(path, NULL);
            if (!resolved)
                return pyspy_error_set(err, PYSPY_E_IO, "cannot resolve %s: %s",
                                       path, strerror(errno));
        }
    }
    if (there && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)))
        *device = true;
    else if (there && !S_ISREG(st.st_mode)) {
        free(resolved);
        return pyspy_error_set(err, PYSPY_E_IO,
                               "will not write %s: it is not a regular file",
                               path);
    }
    o->path = resolved ? resolved : strdup(path);
    if (!o->path)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    return 0;
}

/* O_NONBLOCK and the check after: what was a device when looked at may
 * be a FIFO by now, whose open would wait for a reader. */
static int open_device(pyspy_out_file *o, pyspy_error *err) {
    int fd = open(o->path, O_WRONLY | (o->follow ? 0 : O_NOFOLLOW) | O_NOCTTY |
                               O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ENXIO) {
        pyspy_error_set(err, PYSPY_E_IO,
                        "will not write %s: it is a FIFO that nothing reads "
                        "from",
                        o->path);
        pyspy_out_abort(o);
        return -1;
    }
    if (fd < 0) {
        io_error(err, errno, "open", o->path);
        pyspy_out_abort(o);
        return -1;
    }
    struct stat st;
    int flags = fcntl(fd, F_GETFL);
    if (fstat(fd, &st) != 0 || !(S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) ||
        flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        close(fd);
        pyspy_error_set(err, PYSPY_E_IO,
                        "will not write %s: it is not a regular file", o->path);
        pyspy_out_abort(o);
        return -1;
    }
    o->fd = fd;
    o->device = true;
    return 0;
}

int pyspy_out_check(const char *path, pyspy_error *err) {
    pyspy_out_file o;
    bool device;
    int rc = start(&o, path, 0, &device, err);
    char *dir = rc == 0 && !device ? dir_of(path) : NULL;
    if (rc == 0 && !device && !dir)
        rc = pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    if (dir) {
        /* Only what is certain to fail: a folder we may not look into is
         * for the open to judge, after what comes first (a ptrace
         * permission, say) has had its say. */
        struct stat st;
        int e = stat(dir, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
        if (e == ENOENT || e == ENOTDIR)
            rc = io_error(err, e, "create", path);
        free(dir);
    }
    pyspy_out_abort(&o);
    return rc;
}

int pyspy_out_open_named(pyspy_out_file *o, const char *path, mode_t mode,
                         pyspy_error *err) {
    bool device;
    if (start(o, path, mode, &device, err) != 0)
        return -1;
    if (device)
        return open_device(o, err);
    o->fd = open_named_temp(path, mode, &o->tmp);
    if (o->fd < 0) {
        int e = errno;
        pyspy_out_abort(o);
        return io_error(err, e, "create", path);
    }
    return 0;
}

int pyspy_out_open(pyspy_out_file *o, const char *path, mode_t mode,
                   pyspy_error *err) {
    bool device;
    if (start(o, path, mode, &device, err) != 0)
        return -1;
    if (device)
        return open_device(o, err);
    char *dir = dir_of(path);
    if (!dir) {
        pyspy_out_abort(o);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    /* Without O_EXCL: that flag would forbid linking the file in. */
    o->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
    int e = errno;
    free(dir);
    /* EOPNOTSUPP: the filesystem has none; EISDIR, EINVAL: a kernel
     * without it. */
    if (o->fd < 0 && (e == EOPNOTSUPP || e == EISDIR || e == EINVAL)) {
        pyspy_out_abort(o);
        return pyspy_out_open_named(o, path, mode, err);
    }
    if (o->fd < 0) {
        pyspy_out_abort(o);
        return io_error(err, e, "create", path);
    }
    return 0;
}

/* Links the unnamed file fd at name, never replacing what is there
 * (EEXIST). */
static int link_fd(int fd, const char *name) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW) == 0)
        return 0;
    if (errno == EEXIST)
        return -1;
    /* No /proc: the same by the descriptor itself, which the kernel
     * allows only with CAP_DAC_READ_SEARCH. */
    int e = errno;
    if (linkat(fd, "", AT_FDCWD, name, AT_EMPTY_PATH) == 0)
        return 0;
    if (errno != EEXIST)
        errno = e;
    return -1;
}

static int link_claim(const char *name, void *ctx) {
    return link_fd(*(const int *)ctx, name);
}

/* The unnamed file under a fresh temporary name beside the final one. */
static int link_temp(pyspy_out_file *o) {
    return claim_temp_name(o->path, link_claim, &o->fd, &o->tmp);
}

/* The unnamed file's data into a named temporary, where it cannot be
 * linked (no /proc and no capability, or a filesystem without links). */
static int copy_to_named(pyspy_out_file *o, pyspy_error *err) {
    char *tmp = NULL;
    int out = open_named_temp(o->path, o->mode, &tmp);
    if (out < 0)
        return io_error(err, errno, "create", o->path);
    enum { BUF = 1 << 16 };
    char *buf = malloc(BUF);
    int rc = buf ? 0 : pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    for (off_t off = 0; rc == 0;) {
        ssize_t n = pread(o->fd, buf, BUF, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = io_error(err, errno, "write", o->path);
        if (n <= 0)
            break;
        rc = pyspy_write_full(out, buf, (size_t)n, o->path, err);
        off += n;
    }
    free(buf);
    if (rc == 0 && fsync(out) != 0 && errno != EINVAL)
        rc = io_error(err, errno, "write", o->path);
    if (close(out) != 0 && rc == 0)
        rc = io_error(err, errno, "write", o->path);
    if (rc != 0) {
        unlink(tmp);
        free(tmp);
        return rc;
    }
    close(o->fd);
    o->fd = -1;
    o->tmp = tmp;
    return 0;
}

/* Gives the unnamed file a name: the final one when it is free (*done:
 * nothing is left to do, nor to clean up should we die now), else a
 * temporary one in o->tmp, to be renamed over the final one. */
static int name_it(pyspy_out_file *o, bool *done, pyspy_error *err) {
    if (link_fd(o->fd, o->path) == 0) {
        *done = true;
        return 0;
    }
    /* A name taken (a file, a symlink) is replaced, by rename. */
    if (errno == EEXIST && link_temp(o) == 0)
        return 0;
    int e = errno;
    if (e == ENOENT || e == EPERM || e == EOPNOTSUPP || e == EXDEV ||
        e == EINVAL || e == EMLINK)
        return copy_to_named(o, err);
    return io_error(err, e, "write", o->path);
}

/* The new name itself made durable, not only the data. Best effort: a
 * folder that cannot be opened or synced loses nothing already written. */
static void sync_dir(const char *path) {
    char *dir = dir_of(path);
    int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int pyspy_out_commit(pyspy_out_file *o, pyspy_error *err) {
    if (o->fd < 0 || !o->path)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "output not open");
    if (o->device) {
        int c = close(o->fd);
        o->fd = -1;
        int rc = c != 0 ? io_error(err, errno, "write", o->path) : 0;
        pyspy_out_abort(o);
        return rc;
    }
    int rc = 0;
    bool done = false;
    /* EINVAL: a file that cannot be synced (a pipe, some special files);
     * nothing is lost by going on. */
    if (fsync(o->fd) != 0 && errno != EINVAL)
        rc = io_error(err, errno, "write", o->path);
    if (rc == 0 && !o->tmp)
        rc = name_it(o, &done, err);
    if (o->fd >= 0) {
        int c = close(o->fd);
        o->fd = -1;
        if (c != 0 && rc == 0) {
            rc = io_error(err, errno, "write", o->path);
            /* The name was free, and the file under it is ours. */
            if (done)
                unlink(o->path);
        }
    }
    if (rc == 0 && o->tmp) {
        if (rename(o->tmp, o->path) != 0)
            rc = io_error(err, errno, "write", o->path);
        else {
            free(o->tmp);
            o->tmp = NULL;
        }
    }
    if (rc == 0)
        sync_dir(o->path);
    pyspy_out_abort(o);
    return rc;
}

void pyspy_out_abort(pyspy_out_file *o) {
    if (o->fd >= 0)
        close(o->fd);
    o->fd = -1;
    if (o->tmp)
        unlink(o->tmp);
    free(o->tmp);
    free(o->path);
    o->tmp = o->path = NULL;
}

static ssize_t stream_write(void *cookie, const char *buf, size_t n) {
    pyspy_out_file *o = cookie;
    /* fopencookie's contract: 0, never negative, for an error. */
    if (o->write_failed ||
        pyspy_write_full(o->fd, buf, n, o->path, &o->write_err) != 0) {
        o->write_failed = true;
        errno = EIO;
        return 0;
    }
    return (ssize_t)n;
}

FILE *pyspy_out_stream(pyspy_out_file *o) {
    cookie_io_functions_t io = {.write = stream_write};
    FILE *f = fopencookie(o, "w", io);
    if (f)
        setvbuf(f, NULL, _IOFBF, 1 << 16);
    return f;
}

int pyspy_out_write(const char *path, mode_t mode,
                    int (*fill)(FILE *f, void *ctx, pyspy_error *err),
                    void *ctx, pyspy_error *err) {
    pyspy_out_file o;
    if (pyspy_out_open(&o, path, mode, err) != 0)
        return -1;
    FILE *f = pyspy_out_stream(&o);
    if (!f) {
        int e = errno;
        pyspy_out_abort(&o);
        return io_error(err, e, "write", path);
    }
    pyspy_error why = {0};
    int rc = fill(f, ctx, &why);
    int e = fclose(f) != 0 ? errno : 0;
    /* The stream knows why a write failed; the writer only that one
     * did. */
    if (o.write_failed)
        rc = pyspy_error_set(err, o.write_err.code, "%s", o.write_err.msg);
    else if (rc != 0)
        rc = pyspy_error_set(err, why.code, "writing '%s': %s", path, why.msg);
    else if (e != 0)
        rc = io_error(err, e, "write", path);
    if (rc != 0) {
        pyspy_out_abort(&o);
        return -1;
    }
    return pyspy_out_commit(&o, err);
}
