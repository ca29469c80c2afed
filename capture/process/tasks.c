/* A process's threads through files kept open: the sampler's look at
 * which threads exist and whether each runs costs one getdents and one
 * pread per thread, not an open/read/close of each file (measured: those
 * were a third of a sample's CPU time). A thread's files stop answering
 * once it exits, and are closed at the next listing that lacks it. */
#include "capture/base/array.h"
#include "capture/process/proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_TIDS (1u << 20)

void pyspy_proc_tasks_init(pyspy_proc_tasks *t, int pid, bool syscalls) {
    memset(t, 0, sizeof *t);
    t->pid = pid;
    t->dir_fd = -1;
    t->syscalls = syscalls;
    t->leader_threads = -1;
    t->ns_nested = -1;
}

static void file_close(pyspy_task_file *f) {
    if (f->stat_fd >= 0)
        close(f->stat_fd);
    if (f->syscall_fd >= 0)
        close(f->syscall_fd);
    if (f->sched_fd >= 0)
        close(f->sched_fd);
}

void pyspy_proc_tasks_close(pyspy_proc_tasks *t) {
    for (size_t i = 0; i < t->n; i++)
        file_close(&t->v[i]);
    free(t->v);
    free(t->last);
    if (t->dir_fd >= 0)
        close(t->dir_fd);
    pyspy_proc_tasks_init(t, t->pid, t->syscalls);
}

void pyspy_proc_tasks_drop_syscalls(pyspy_proc_tasks *t) {
    t->syscalls = false;
    for (size_t i = 0; i < t->n; i++) {
        if (t->v[i].syscall_fd >= 0)
            close(t->v[i].syscall_fd);
        t->v[i].syscall_fd = -1;
    }
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static int open_dir(pyspy_proc_tasks *t) {
    if (t->dir_fd < 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/task", t->pid);
        t->dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    return t->dir_fd;
}

long pyspy_proc_tasks_count(pyspy_proc_tasks *t) {
    struct stat st;
    if (open_dir(t) < 0 || fstat(t->dir_fd, &st) != 0 || st.st_nlink < 3)
        return -1;
    return (long)st.st_nlink - 2;
}

int pyspy_proc_tasks_list(pyspy_proc_tasks *t, int **out, size_t *nout,
                          pyspy_error *err) {
    if (t->dir_fd < 0) {
        if (open_dir(t) < 0)
            return pyspy_proc_error(t->pid, errno, "list the threads", err);
    } else if (lseek(t->dir_fd, 0, SEEK_SET) != 0) {
        return pyspy_proc_error(t->pid, errno, "list the threads", err);
    }
    int *tids = NULL;
    size_t n = 0, cap = 0;
    _Alignas(8) char buf[8192];
    for (;;) {
        long got = syscall(SYS_getdents64, t->dir_fd, buf, sizeof buf);
        if (got < 0) {
            int e = errno;
            free(tids);
            return pyspy_proc_error(t->pid, e, "list the threads", err);
        }
        if (got == 0)
            break;
        for (long off = 0; off < got && n < MAX_TIDS;) {
            struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
            if (d->d_reclen == 0 || off + d->d_reclen > got)
                break;
            off += d->d_reclen;
            int tid = pyspy_proc_numeric(d->d_name);
            if (tid <= 0)
                continue;
            if (pyspy_array_reserve(&tids, &cap, n + 1, sizeof *tids, 64) !=
                0) {
                free(tids);
                return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
            }
            tids[n++] = tid;
        }
    }
    if (n == 0) {
        free(tids);
        return pyspy_proc_error(t->pid, ESRCH, "list the threads", err);
    }
    qsort(tids, n, sizeof *tids, cmp_int);
    /* Files of threads not listed any more are closed. */
    t->gen++;
    for (size_t i = 0; i < t->n; i++)
        if (bsearch(&t->v[i].tid, tids, n, sizeof *tids, cmp_int))
            t->v[i].seen = t->gen;
    size_t w = 0; /* keeps the files sorted by tid */
    for (size_t i = 0; i < t->n; i++) {
        if (t->v[i].seen != t->gen)
            file_close(&t->v[i]);
        else
            t->v[w++] = t->v[i];
    }
    t->n = w;
    int *keep = malloc(n * sizeof *keep);
    free(t->last);
    t->last = keep;
    t->nlast = keep ? n : 0;
    if (keep)
        memcpy(keep, tids, n * sizeof *keep);
    *out = tids;
    *nout = n;
    return 0;
}

int pyspy_proc_tasks_list_quick(pyspy_proc_tasks *t, int **out, size_t *n,
                                pyspy_error *err) {
    if (t->nlast && pyspy_proc_tasks_count(t) == (long)t->nlast) {
        int *copy = malloc(t->nlast * sizeof *copy);
        if (copy) {
            memcpy(copy, t->last, t->nlast * sizeof *copy);
            *out = copy;
            *n = t->nlast;
            return 0;
        }
    }
    return pyspy_proc_tasks_list(t, out, n, err);
}

static int open_task_file(int pid, int tid, const char *name) {
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task/%d/%s", pid, tid, name);
    return open(path, O_RDONLY | O_CLOEXEC);
}

/* The open files of a thread, kept sorted by tid: a sample looks up every
 * thread, and a linear search made that quadratic in the thread count. */
static pyspy_task_file *file_of(pyspy_proc_tasks *t, int tid) {
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->v[mid].tid == tid)
            return &t->v[mid];
        if (t->v[mid].tid < tid)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pyspy_array_reserve(&t->v, &t->cap, t->n + 1, sizeof *t->v, 16) != 0)
        return NULL;
    pyspy_task_file nf = {
        .tid = tid, .seen = t->gen, .sched_fd = -1, .ns_tid = tid};
    /* Inside a container Python knows its threads by the namespace's ids;
     * the status read happens once per thread, and only there. */
    if (t->ns_nested < 0) {
        int levels;
        pyspy_proc_ns_id(t->pid, 0, &levels);
        t->ns_nested = levels > 1;
    }
    if (t->ns_nested) {
        int levels;
        nf.ns_tid = pyspy_proc_ns_id(t->pid, tid, &levels);
    }
    nf.stat_fd = open_task_file(t->pid, tid, "stat");
    nf.syscall_fd = t->syscalls ? open_task_file(t->pid, tid, "syscall") : -1;
    if (nf.stat_fd < 0) {
        file_close(&nf);
        return NULL;
    }
    memmove(&t->v[lo + 1], &t->v[lo], (t->n - lo) * sizeof *t->v);
    t->v[lo] = nf;
    t->n++;
    return &t->v[lo];
}

/* The whole (small) file from offset 0, NUL-terminated. */
static ssize_t reread(int fd, char *buf, size_t size) {
    ssize_t r;
    while ((r = pread(fd, buf, size - 1, 0)) < 0 && errno == EINTR)
        ;
    if (r >= 0)
        buf[r] = 0;
    return r;
}

/* The n-th space-separated number after the state letter of a stat line
 * (num_threads is the 17th), -1 if there is none. sscanf with sixteen
 * skipped fields was 3 % of a sampler's CPU. */
static long nth_field(const char *p, int n) {
    for (int i = 1; i < n; i++) {
        while (*p == ' ')
            p++;
        while (*p && *p != ' ')
            p++;
        if (!*p)
            return -1;
    }
    while (*p == ' ')
        p++;
    if (*p < '0' || *p > '9')
        return -1;
    long v = 0;
    for (; *p >= '0' && *p <= '9' && v < (1L << 40); p++)
        v = v * 10 + (*p - '0');
    return v;
}

int pyspy_proc_tasks_state(pyspy_proc_tasks *t, int tid, pyspy_thread *out) {
    pyspy_task_file *f = file_of(t, tid);
    if (!f)
        return -1;
    char buf[1024];
    char state = 0;
    const char *rest;
    if (reread(f->stat_fd, buf, sizeof buf) <= 0 ||
        !(rest = pyspy_proc_parse_stat(buf, out->name, &state)))
        return -1;
    if (tid == t->pid)
        t->leader_threads = nth_field(rest, 17);
    out->tid = tid;
    out->ns_tid = f->ns_tid;
    out->state = state;
    out->syscall = -2;
    if (t->syscalls && f->syscall_fd >= 0 &&
        reread(f->syscall_fd, buf, 512) > 0) {
        long nr;
        if (strncmp(buf, "running", 7) == 0)
            out->syscall = -1;
        else if (sscanf(buf, "%ld", &nr) == 1)
            out->syscall = nr < 0 ? -1 : nr;
    }
    return 0;
}

int pyspy_proc_tasks_sched(pyspy_proc_tasks *t, int tid, uint64_t *run_ns,
                           uint64_t *slices) {
    pyspy_task_file *f = file_of(t, tid);
    if (!f)
        return -1;
    if (f->sched_fd < 0)
        f->sched_fd = open_task_file(t->pid, tid, "schedstat");
    char buf[128];
    unsigned long long run, wait, n;
    if (f->sched_fd < 0 || reread(f->sched_fd, buf, sizeof buf) <= 0 ||
        sscanf(buf, "%llu %llu %llu", &run, &wait, &n) != 3)
        return -1;
    *run_ns = run;
    *slices = n;
    return 0;
}

int pyspy_proc_tasks_read(pyspy_proc_tasks *t, pyspy_thread **out, size_t *nout,
                          pyspy_error *err) {
    int *tids;
    size_t n;
    if (pyspy_proc_tasks_list(t, &tids, &n, err) != 0)
        return -1;
    pyspy_thread *ts = calloc(n, sizeof *ts);
    if (!ts) {
        free(tids);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (pyspy_proc_tasks_state(t, tids[i], &ts[k]) == 0)
            k++;
    free(tids);
    if (k == 0) {
        free(ts);
        return pyspy_proc_error(t->pid, ESRCH, "list the threads", err);
    }
    *out = ts;
    *nout = k;
    return 0;
}
