/* Threads and process facts from /proc: task list, per-thread name,
 * kernel state and current syscall, ppid, exe, cmdline, descendants. */
#include "capture/base/array.h"
#include "capture/process/proc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TIDS (1u << 20)
#define MAX_PROCS (1u << 22)

#define CAP_SYS_PTRACE_BIT 19

/* The four ids of a "Uid:" or "Gid:" line of /proc/PID/status. */
static bool status_ids(const char *status, const char *key, unsigned v[4]) {
    const char *p = strstr(status, key);
    return p && sscanf(p + strlen(key), "%u %u %u %u", &v[0], &v[1], &v[2],
                       &v[3]) == 4;
}

void pyspy_perm_facts_read(int pid, pyspy_perm_facts *f) {
    memset(f, 0, sizeof *f);
    f->our_uid = (unsigned)geteuid();
    f->yama_scope = -1;
    char path[64], *buf = NULL;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    unsigned ids[4];
    if (pyspy_proc_slurp(path, 1 << 16, &buf, NULL) == 0) {
        if (status_ids(buf, "\nUid:", ids)) {
            f->target_uid_known = true;
            f->target_uid = ids[0];
            /* the kernel compares our fs/effective uid with its real,
             * effective and saved ones */
            f->target_same_user = ids[0] == f->our_uid &&
                                  ids[1] == f->our_uid && ids[2] == f->our_uid;
        }
        free(buf);
    }
    if (pyspy_proc_slurp("/proc/self/status", 1 << 16, &buf, NULL) == 0) {
        const char *p = strstr(buf, "\nCapEff:");
        unsigned long long caps = 0;
        if (p && sscanf(p + 8, "%llx", &caps) == 1)
            f->cap_sys_ptrace = (caps >> CAP_SYS_PTRACE_BIT) & 1;
        free(buf);
    }
    if (pyspy_proc_slurp("/proc/sys/kernel/yama/ptrace_scope", 64, &buf,
                         NULL) == 0) {
        int v;
        if (sscanf(buf, "%d", &v) == 1)
            f->yama_scope = v;
        free(buf);
    }
}

void pyspy_perm_advice(const pyspy_perm_facts *f, char *buf, size_t len) {
    if (f->yama_scope >= 3) {
        snprintf(buf, len,
                 "Yama's ptrace_scope is %d, which forbids tracing any "
                 "process, even as root, until the next reboot",
                 f->yama_scope);
    } else if (f->target_uid_known && !f->target_same_user &&
               !f->cap_sys_ptrace) {
        snprintf(buf, len,
                 "it belongs to another user (uid %u, pyspy runs as uid "
                 "%u): tracing another user's process needs root (sudo) or "
                 "CAP_SYS_PTRACE",
                 f->target_uid, f->our_uid);
    } else if (f->yama_scope == 2 && !f->cap_sys_ptrace) {
        snprintf(buf, len,
                 "Yama's ptrace_scope is 2: only root (sudo) or a process "
                 "with CAP_SYS_PTRACE may trace");
    } else if (f->yama_scope == 1 && !f->cap_sys_ptrace) {
        snprintf(buf, len,
                 "Yama's ptrace_scope is 1: only a process's ancestors may "
                 "trace it; run as root (sudo), start the program under "
                 "pyspy (pyspy record -- python ...), or set "
                 "/proc/sys/kernel/yama/ptrace_scope to 0");
    } else if (f->our_uid == 0 && !f->cap_sys_ptrace) {
        snprintf(buf, len,
                 "pyspy runs as root without CAP_SYS_PTRACE (a container "
                 "started without --cap-add SYS_PTRACE?)");
    } else if (f->cap_sys_ptrace) {
        snprintf(buf, len,
                 "pyspy has CAP_SYS_PTRACE, so a security policy forbids it "
                 "(seccomp, SELinux or AppArmor)");
    } else {
        snprintf(buf, len,
                 "the process is not dumpable (a setuid or setgid program, "
                 "or prctl PR_SET_DUMPABLE 0): run as root (sudo)");
    }
}

int pyspy_proc_error(int pid, int errnum, const char *what, pyspy_error *err) {
    if (errnum == ENOENT || errnum == ESRCH)
        return pyspy_error_set(err, PYSPY_E_NOPROC,
                               "process %d not found (or it exited)", pid);
    if (errnum == EACCES || errnum == EPERM) {
        pyspy_perm_facts f;
        pyspy_perm_facts_read(pid, &f);
        char advice[320];
        pyspy_perm_advice(&f, advice, sizeof advice);
        return pyspy_error_set(err, PYSPY_E_PERM,
                               "permission denied to %s of process %d: %s",
                               what, pid, advice);
    }
    return pyspy_error_set(err, PYSPY_E_IO, "cannot %s of process %d: %s", what,
                           pid, strerror(errnum));
}

int pyspy_proc_slurp(const char *path, size_t max, char **out, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    for (;;) {
        if (n == cap && cap < max) {
            size_t nc = cap * 2 > max ? max : cap * 2;
            char *nb = realloc(buf, nc + 1);
            if (!nb)
                break;
            buf = nb;
            cap = nc;
        }
        if (n == cap)
            break;
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *out = buf;
    if (len)
        *len = n;
    return 0;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int pyspy_proc_numeric(const char *s) {
    if (!*s)
        return -1;
    long v = 0;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return -1;
        v = v * 10 + (*s - '0');
        if (v > INT_MAX)
            return -1;
    }
    return (int)v;
}

/* Splits "pid (comm) S rest" at the last ')' since comm may hold any
 * character; returns the text after the state letter. */
const char *pyspy_proc_parse_stat(const char *buf, char name[17], char *state) {
    const char *open = strchr(buf, '(');
    const char *close = strrchr(buf, ')');
    if (!open || !close || close < open || close[1] != ' ' || !close[2])
        return NULL;
    if (name) {
        size_t n = (size_t)(close - open - 1);
        if (n > 16)
            n = 16;
        memcpy(name, open + 1, n);
        name[n] = 0;
    }
    *state = close[2];
    return close + 3;
}

int pyspy_proc_thread_state(int pid, int tid, pyspy_thread *t) {
    pyspy_proc_tasks ts;
    pyspy_proc_tasks_init(&ts, pid, true);
    int rc = pyspy_proc_tasks_state(&ts, tid, t);
    pyspy_proc_tasks_close(&ts);
    return rc;
}

int pyspy_proc_read_threads(int pid, pyspy_thread **out, size_t *nout,
                            pyspy_error *err) {
    pyspy_proc_tasks t;
    pyspy_proc_tasks_init(&t, pid, true);
    int rc = pyspy_proc_tasks_read(&t, out, nout, err);
    pyspy_proc_tasks_close(&t);
    return rc;
}

int pyspy_proc_ns_id(int pid, int tid, int *levels) {
    char path[96], *buf = NULL;
    if (tid > 0)
        snprintf(path, sizeof path, "/proc/%d/task/%d/status", pid, tid);
    else
        snprintf(path, sizeof path, "/proc/%d/status", pid);
    *levels = 0;
    if (pyspy_proc_slurp(path, 16384, &buf, NULL) != 0)
        return 0;
    /* "NSpid:\t7414\t5": from the PID namespace of this /proc down to
     * the thread's own (kernels since 4.1). */
    int id = 0;
    const char *p = strstr(buf, "\nNSpid:");
    if (p) {
        p += 7;
        for (;;) {
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p < '0' || *p > '9')
                break;
            long v = 0;
            for (; *p >= '0' && *p <= '9'; p++)
                if (v <= INT_MAX)
                    v = v * 10 + (*p - '0');
            if (v <= 0 || v > INT_MAX) {
                id = 0;
                *levels = 0;
                break;
            }
            id = (int)v;
            ++*levels;
        }
    }
    free(buf);
    return id;
}

char pyspy_proc_state(int pid) {
    char path[64], *buf = NULL, state = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (pyspy_proc_slurp(path, 4096, &buf, NULL) != 0)
        return 0;
    if (!pyspy_proc_parse_stat(buf, NULL, &state))
        state = 0;
    free(buf);
    return state;
}

static int read_ppid(int pid) {
    char path[64], *buf = NULL, state;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (pyspy_proc_slurp(path, 4096, &buf, NULL) != 0)
        return -1;
    const char *rest = pyspy_proc_parse_stat(buf, NULL, &state);
    int ppid = -1;
    if (!rest || sscanf(rest, "%d", &ppid) != 1)
        ppid = -1;
    free(buf);
    return ppid;
}

void pyspy_process_info_free(pyspy_process_info *info) {
    free(info->exe);
    free(info->cmdline);
    info->exe = info->cmdline = NULL;
}

int pyspy_proc_read_info(int pid, pyspy_process_info *info, pyspy_error *err) {
    memset(info, 0, sizeof *info);
    info->pid = pid;
    info->ppid = read_ppid(pid);
    if (info->ppid < 0)
        return pyspy_proc_error(pid, errno ? errno : ESRCH, "read the state",
                                err);
    int levels;
    info->ns_pid = pyspy_proc_ns_id(pid, 0, &levels);
    char path[64], link[PATH_MAX];
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n > 0) {
        link[n] = 0;
        info->exe = strdup(link);
    }
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    char *buf = NULL;
    size_t len = 0;
    if (pyspy_proc_slurp(path, 1u << 20, &buf, &len) == 0) {
        while (len && buf[len - 1] == 0)
            len--;
        for (size_t i = 0; i < len; i++)
            if (buf[i] == 0)
                buf[i] = ' ';
        buf[len] = 0;
        info->cmdline = buf;
    }
    return 0;
}

int pyspy_proc_descendants(int pid, int **out, size_t *nout, pyspy_error *err) {
    DIR *d = opendir("/proc");
    if (!d)
        return pyspy_error_set(err, PYSPY_E_IO, "cannot list /proc: %s",
                               strerror(errno));
    /* (pid, ppid) pairs of every process, then a closure from pid. */
    int *pids = NULL, *ppids = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL && n < MAX_PROCS) {
        int p = pyspy_proc_numeric(e->d_name);
        if (p <= 0)
            continue;
        int pp = read_ppid(p);
        if (pp <= 0)
            continue;
        if (n == cap) {
            size_t nc = cap;
            int *a = pyspy_array_grow(pids, &nc, cap + 1, sizeof *a, 512);
            if (a)
                pids = a;
            int *b = a ? realloc(ppids, nc * sizeof *b) : NULL;
            if (!a || !b) {
                rc = -1;
                break;
            }
            ppids = b;
            cap = nc;
        }
        pids[n] = p;
        ppids[n] = pp;
        n++;
    }
    closedir(d);
    int *res = rc == 0 ? malloc((n + 1) * sizeof *res) : NULL;
    if (!res) {
        free(pids);
        free(ppids);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    /* Breadth first; each process is taken once, so a pid reused as its
     * own ancestor cannot loop. */
    size_t nres = 0;
    bool *taken = calloc(n + 1, sizeof *taken);
    if (!taken) {
        free(pids);
        free(ppids);
        free(res);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    for (size_t head = 0;; head++) {
        int parent = head == 0 ? pid : (head - 1 < nres ? res[head - 1] : -1);
        if (parent < 0)
            break;
        for (size_t i = 0; i < n; i++)
            if (!taken[i] && ppids[i] == parent && pids[i] != pid) {
                taken[i] = true;
                res[nres++] = pids[i];
            }
    }
    free(taken);
    free(pids);
    free(ppids);
    qsort(res, nres, sizeof *res, cmp_int);
    *out = res;
    *nout = nres;
    return 0;
}

#define MAX_TREE 65536

/* Appends the pids listed in one children file to *v (bounded). */
static int read_children_file(const char *path, int **v, size_t *n,
                              size_t *cap) {
    char *buf = NULL;
    size_t len = 0;
    if (pyspy_proc_slurp(path, 1u << 20, &buf, &len) != 0)
        return -1;
    for (char *p = buf; *p && *n < MAX_TREE;) {
        while (*p == ' ' || *p == '\n')
            p++;
        if (!*p)
            break;
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        p = end;
        if (pid <= 0 || pid > INT32_MAX)
            continue;
        int *nv = pyspy_array_grow(*v, cap, *n + 1, sizeof *nv, 64);
        if (!nv) {
            free(buf);
            return -2;
        }
        *v = nv;
        (*v)[(*n)++] = (int)pid;
    }
    free(buf);
    return 0;
}

int pyspy_proc_children_tree(int pid, int **out, size_t *nout,
                             pyspy_error *err) {
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", pid, pid);
    if (access(path, R_OK) != 0)
        return pyspy_error_set(err, PYSPY_E_UNSUPPORTED,
                               "no /proc/%d/task/%d/children", pid, pid);
    /* res is the queue: res[0..head) expanded, the rest still to be. A
     * process is listed by one thread of its parent only, and children
     * form a tree, so nothing repeats unless pids were reused meanwhile;
     * the bound stops any loop that could make. */
    int *res = NULL;
    size_t n = 0, cap = 0;
    for (size_t head = 0; head <= n && n < MAX_TREE; head++) {
        int parent = head == 0 ? pid : res[head - 1];
        snprintf(path, sizeof path, "/proc/%d/task", parent);
        DIR *d = opendir(path);
        if (!d)
            continue; /* gone meanwhile */
        struct dirent *e;
        int rc = 0;
        while ((e = readdir(d)) != NULL && rc != -2) {
            int tid = pyspy_proc_numeric(e->d_name);
            if (tid <= 0)
                continue;
            snprintf(path, sizeof path, "/proc/%d/task/%d/children", parent,
                     tid);
            rc = read_children_file(path, &res, &n, &cap);
        }
        closedir(d);
        if (rc == -2) {
            free(res);
            return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        }
    }
    if (n > 1)
        qsort(res, n, sizeof *res, cmp_int);
    size_t w = 0; /* a reused pid may have been listed twice */
    for (size_t i = 0; i < n; i++)
        if ((w == 0 || res[w - 1] != res[i]) && res[i] != pid)
            res[w++] = res[i];
    *out = res;
    *nout = w;
    return 0;
}
