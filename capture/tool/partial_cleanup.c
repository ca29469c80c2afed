/* Removing a half-written snapshot from a signal handler. The writer's
 * data normally sits in an unnamed O_TMPFILE that vanishes with the
 * process; only where the filesystem has none (or for the instant between
 * linking it under a temporary name and renaming that over an existing
 * file) is there a "<dir>/.<name>.XXXXXX" (capture/base/out_file.c) to
 * remove. A handler may only use async-signal-safe calls, so the
 * directory is scanned with getdents64 and names are compared by hand. */
#include "capture/tool/run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static char g_dir[4096];
static char g_prefix[512]; /* ".<name>." */
static volatile sig_atomic_t g_armed;

void pyspy_capture_mark_writing(const char *path) {
    g_armed = 0;
    if (!path)
        return;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dl = slash ? (size_t)(slash - path) : 0;
    if (dl >= sizeof g_dir || strlen(base) + 3 > sizeof g_prefix)
        return;
    if (slash && dl == 0) {
        g_dir[0] = '/';
        g_dir[1] = 0;
    } else if (slash) {
        memcpy(g_dir, path, dl);
        g_dir[dl] = 0;
    } else {
        g_dir[0] = '.';
        g_dir[1] = 0;
    }
    g_prefix[0] = '.';
    memcpy(g_prefix + 1, base, strlen(base));
    g_prefix[strlen(base) + 1] = '.';
    g_prefix[strlen(base) + 2] = 0;
    g_armed = 1;
}

struct linux_dirent64 {
    unsigned long long d_ino;
    long long d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

void pyspy_capture_remove_partial(void) {
    if (!g_armed)
        return;
    int saved = errno;
    int fd = open(g_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        errno = saved;
        return;
    }
    size_t pl = strlen(g_prefix);
    /* 8-byte aligned: dirent records hold 64-bit fields */
    static long long buf[1024];
    for (int rounds = 0; rounds < 100000; rounds++) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            struct linux_dirent64 *d =
                (struct linux_dirent64 *)((char *)buf + off);
            if (d->d_reclen == 0)
                break;
            if (strncmp(d->d_name, g_prefix, pl) == 0 &&
                strlen(d->d_name) == pl + 6)
                unlinkat(fd, d->d_name, 0);
            off += d->d_reclen;
        }
    }
    close(fd);
    errno = saved;
}
