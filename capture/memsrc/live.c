/* The live memory source: reads with process_vm_readv (falling back to
 * /proc/PID/mem, which also reaches pages process_vm_readv refuses), the
 * process's regions, threads and modules from /proc, and the lock policy:
 * Lock stops every thread in suspend and lets them go in resume,
 * NonBlocking never stops anything, AlreadyLocked trusts someone else
 * stopped it and only borrows a group-stopped process long enough to read
 * its registers. */
#include "capture/base/array.h"
#include "capture/elf/symbols.h"
#include "capture/memsrc/live.h"
#include "capture/process/proc.h"
#include "capture/process/ptrace_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct live_impl {
    int pid;
    pyspy_lock_mode lock;
    int mem_fd;
    bool vm_ok; /* process_vm_readv usable */
    pyspy_ptrace_set set;
    bool stopped;
    int64_t stop_t0;
    uint64_t maps_sig; /* of the file mappings the modules came from */
    /* kernel states recorded just before each thread was stopped */
    pyspy_thread *pre;
    size_t npre, precap;
    pyspy_proc_tasks tasks;
    bool sampling;  /* serving a sampler: see live_sampling */
    bool held_chld; /* this source keeps SIGCHLD blocked (live_sampling) */
    char root[32];  /* /proc/PID/root */
    /* Sleeping threads left running, with what their schedstat said
     * before the walk (live_check_sleepers). */
    bool leaving, full_next;
    struct sleeper {
        int tid;
        uint64_t run_ns, slices;
    } * sl;
    size_t nsl, slcap;
    bool no_regs;       /* a sampler that needs no registers */
    bool no_states;     /* a sampler that needs no thread states */
    int64_t maps_ns;    /* when the regions were last read */
    int64_t threads_ns; /* when the threads were last counted */
} live_impl;

static const pyspy_memsrc_ops live_ops;

static int64_t clock_ns(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int pyspy_live_pid(const pyspy_memsrc *src) {
    return ((const live_impl *)src->impl)->pid;
}

static bool live_is_stopped(const pyspy_memsrc *src) {
    return ((const live_impl *)src->impl)->stopped;
}

static const char *live_file_root(const pyspy_memsrc *src) {
    return ((const live_impl *)src->impl)->root;
}

/* Opened on first use; the capture reads from several threads, so the
 * first opener wins and a loser closes its copy. */
static int mem_fd(live_impl *li) {
    int fd = __atomic_load_n(&li->mem_fd, __ATOMIC_ACQUIRE);
    if (fd >= 0)
        return fd;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", li->pid);
    int mine = open(path, O_RDONLY | O_CLOEXEC);
    if (mine < 0)
        return -1;
    int expect = -1;
    if (__atomic_compare_exchange_n(&li->mem_fd, &expect, mine, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return mine;
    close(mine);
    return expect;
}

/* /proc/PID/mem takes addresses above 2^63 as unsigned offsets. */
static bool mem_pread(live_impl *li, uint64_t addr, void *buf, size_t len) {
    int fd = mem_fd(li);
    if (fd < 0)
        return false;
    size_t got = 0;
    while (got < len) {
        ssize_t r =
            pread(fd, (char *)buf + got, len - got, (off_t)(addr + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

static int live_read(pyspy_memsrc *src, uint64_t addr, void *buf, size_t len,
                     pyspy_error *err) {
    live_impl *li = src->impl;
    if (li->vm_ok) {
        struct iovec l = {buf, len}, r = {(void *)(uintptr_t)addr, len};
        ssize_t n = process_vm_readv(li->pid, &l, 1, &r, 1, 0);
        if (n == (ssize_t)len)
            return 0;
        if (n < 0 && errno == ESRCH)
            return pyspy_error_set(err, PYSPY_E_NOPROC, "process %d exited",
                                   li->pid);
        if (n < 0 && (errno == ENOSYS || errno == EPERM))
            li->vm_ok = false;
    }
    if (mem_pread(li, addr, buf, len))
        return 0;
    if (li->mem_fd < 0)
        return pyspy_proc_error(li->pid, errno, "read the memory", err);
    return pyspy_error_set(err, PYSPY_E_UNREADABLE,
                           "cannot read %zu bytes at 0x%llx in process %d", len,
                           (unsigned long long)addr, li->pid);
}

static size_t readv_serial(live_impl *li, const struct iovec *local,
                           const struct iovec *remote, size_t n, bool *ok) {
    size_t nok = 0, i = 0;
    while (i < n) {
        size_t batch = n - i > IOV_MAX ? IOV_MAX : n - i;
        ssize_t got = -1;
        if (li->vm_ok)
            got = process_vm_readv(li->pid, local + i, batch, remote + i, batch,
                                   0);
        /* Whole pairs read; the first short one is retried alone through
         * /proc/PID/mem and the batch goes on after it. */
        size_t done = 0;
        while (got > 0 && done < batch &&
               (size_t)got >= local[i + done].iov_len) {
            got -= (ssize_t)local[i + done].iov_len;
            ok[i + done] = true;
            nok++;
            done++;
        }
        if (done < batch) {
            size_t k = i + done;
            ok[k] = mem_pread(li, (uint64_t)(uintptr_t)remote[k].iov_base,
                              local[k].iov_base, local[k].iov_len);
            nok += ok[k];
            done++;
        }
        i += done;
    }
    return nok;
}

/* A copy this large is spread over several threads: the kernel copies
 * page by page, one core cannot saturate memory, and the target's own
 * cores sit idle while it is stopped -- this halves a 1 GiB pause on two
 * cores. Pieces are cut small enough to balance one huge region. */
#define PAR_MIN_BYTES (64ull << 20)
#define PAR_PIECE (4ull << 20)
#define PAR_MAX_THREADS 4

typedef struct readv_job {
    live_impl *li;
    const struct iovec *l, *r;
    bool *ok;
    size_t n;
} readv_job;

static void *readv_worker(void *arg) {
    readv_job *j = arg;
    readv_serial(j->li, j->l, j->r, j->n, j->ok);
    return NULL;
}

static int worker_count(uint64_t bytes) {
    if (bytes < PAR_MIN_BYTES)
        return 1; /* and no sysconf, which reads a file */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 2)
        return 1;
    return cpus > PAR_MAX_THREADS ? PAR_MAX_THREADS : (int)cpus;
}

/* Cuts the pairs into pieces of at most PAR_PIECE bytes, reads them on
 * nw threads, and folds the pieces' results back into ok. -1 when the
 * pieces or threads cannot be had (the caller reads serially). */
static int readv_parallel(live_impl *li, const struct iovec *local,
                          const struct iovec *remote, size_t n, bool *ok,
                          uint64_t bytes, int nw) {
    size_t np = 0;
    for (size_t i = 0; i < n; i++)
        np += (local[i].iov_len + PAR_PIECE - 1) / PAR_PIECE;
    struct iovec *pl = malloc((np ? np : 1) * sizeof *pl);
    struct iovec *pr = malloc((np ? np : 1) * sizeof *pr);
    size_t *owner = malloc((np ? np : 1) * sizeof *owner);
    bool *pok = calloc(np ? np : 1, sizeof *pok);
    int rc = -1;
    if (!pl || !pr || !owner || !pok)
        goto out;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t off = 0; off < local[i].iov_len; off += PAR_PIECE) {
            size_t len = local[i].iov_len - off;
            len = len > PAR_PIECE ? PAR_PIECE : len;
            pl[k] = (struct iovec){(char *)local[i].iov_base + off, len};
            pr[k] = (struct iovec){(char *)remote[i].iov_base + off, len};
            owner[k++] = i;
        }
    readv_job jobs[PAR_MAX_THREADS];
    pthread_t th[PAR_MAX_THREADS];
    bool started[PAR_MAX_THREADS] = {0};
    uint64_t share = bytes / (uint64_t)nw + 1, acc = 0;
    size_t first = 0;
    for (int w = 0; w < nw; w++) {
        size_t end = first;
        while (end < np && (w == nw - 1 || acc < share * (uint64_t)(w + 1)))
            acc += pl[end++].iov_len;
        jobs[w] =
            (readv_job){li, pl + first, pr + first, pok + first, end - first};
        first = end;
    }
    /* Worker 0 is this thread; a thread that cannot start leaves its
     * share to be read here afterwards. */
    for (int w = 1; w < nw; w++)
        started[w] = pthread_create(&th[w], NULL, readv_worker, &jobs[w]) == 0;
    readv_worker(&jobs[0]);
    for (int w = 1; w < nw; w++) {
        if (started[w])
            pthread_join(th[w], NULL);
        else
            readv_worker(&jobs[w]);
    }
    for (size_t i = 0; i < n; i++)
        ok[i] = true;
    for (size_t p = 0; p < np; p++)
        if (!pok[p])
            ok[owner[p]] = false;
    rc = 0;
out:
    free(pl);
    free(pr);
    free(owner);
    free(pok);
    return rc;
}

static size_t live_readv(pyspy_memsrc *src, const struct iovec *local,
                         const struct iovec *remote, size_t n, bool *ok) {
    live_impl *li = src->impl;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += local[i].iov_len;
    int nw = worker_count(bytes);
    if (nw > 1) {
        if (readv_parallel(li, local, remote, n, ok, bytes, nw) == 0) {
            size_t nok = 0;
            for (size_t i = 0; i < n; i++)
                nok += ok[i];
            return nok;
        }
    }
    return readv_serial(li, local, remote, n, ok);
}

/* ------------------------------------------------------------ threads */

static char record_state(void *ctx, int tid) {
    live_impl *li = ctx;
    if (pyspy_array_reserve(&li->pre, &li->precap, li->npre + 1,
                            sizeof *li->pre, 64) != 0)
        return 0;
    pyspy_thread *t = &li->pre[li->npre];
    memset(t, 0, sizeof *t);
    /* schedstat before stat: a thread seen asleep after it has not been
     * on a CPU again until both numbers move */
    uint64_t run = 0, slices = 0;
    bool sched = li->leaving &&
                 pyspy_proc_tasks_sched(&li->tasks, tid, &run, &slices) == 0;
    if (pyspy_proc_tasks_state(&li->tasks, tid, t) != 0)
        return 0;
    li->npre++;
    if (!li->leaving || (t->state != 'S' && t->state != 'D'))
        return t->state;
    if (!sched)
        return '?'; /* cannot be proven to sleep on: stopped */
    if (pyspy_array_reserve(&li->sl, &li->slcap, li->nsl + 1, sizeof *li->sl,
                            16) != 0)
        return '?';
    li->sl[li->nsl++] = (struct sleeper){tid, run, slices};
    return t->state;
}

/* Lock mode for a sampler without native stacks stops only the threads
 * that run: stopping a sleeping one wakes it, costs it a restarted system
 * call, and took most of a sample's pause on a multi-threaded target.
 * What it must prove instead, once the walk is over (before or after
 * resume): each thread left running still sleeps and neither its run
 * time nor its count of times on a CPU moved since before the walk -- it
 * never ran, so its memory is what a stop would have shown. */
static bool live_check_sleepers(pyspy_memsrc *src) {
    live_impl *li = src->impl;
    size_t n = li->nsl;
    li->nsl = 0; /* each suspend's sleepers are checked once */
    for (size_t i = 0; i < n; i++) {
        pyspy_thread t;
        uint64_t run, slices;
        if (pyspy_proc_tasks_state(&li->tasks, li->sl[i].tid, &t) != 0 ||
            (t.state != 'S' && t.state != 'D') ||
            pyspy_proc_tasks_sched(&li->tasks, li->sl[i].tid, &run, &slices) !=
                0 ||
            run != li->sl[i].run_ns || slices != li->sl[i].slices) {
            li->full_next = true;
            return false;
        }
    }
    return true;
}

static int cmp_tid(const void *a, const void *b) {
    const pyspy_thread *x = a, *y = b;
    return (x->tid > y->tid) - (x->tid < y->tid);
}

/* src->threads := the held threads, with the states recorded before the
 * stop, and their registers. */
static int threads_from_set(pyspy_memsrc *src, live_impl *li,
                            pyspy_error *err) {
    size_t n = li->set.n + li->set.nleft;
    pyspy_thread *ts = calloc(n ? n : 1, sizeof *ts);
    if (!ts)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    /* Sorted, so each thread finds its state without a linear search:
     * this runs while the target is stopped. */
    qsort(li->pre, li->npre, sizeof *li->pre, cmp_tid);
    for (size_t i = 0; i < n; i++) {
        int tid = i < li->set.n ? li->set.tids[i] : li->set.left[i - li->set.n];
        pyspy_thread *t = &ts[i];
        t->tid = tid;
        t->state = '?';
        t->syscall = -2;
        pyspy_thread key = {.tid = tid};
        const pyspy_thread *seen = li->npre ? bsearch(&key, li->pre, li->npre,
                                                      sizeof *li->pre, cmp_tid)
                                            : NULL;
        if (seen)
            *t = *seen;
        if (!li->no_regs && i < li->set.n)
            pyspy_ptrace_read_regs(tid, t);
    }
    qsort(ts, n, sizeof *ts, cmp_tid);
    free(src->threads);
    src->threads = ts;
    src->nthreads = n;
    return 0;
}

/* Without states the thread list only has to notice threads coming and
 * going (a Python thread is found through its interpreter anyway, and
 * 3.8+ records its kernel id): ten times a second is plenty, and counting
 * them costs a sample at 100 Hz as much as the rest of its system calls. */
#define SAMPLING_THREADS_NS 100000000LL

/* For a sampler: the same number of threads as last time is taken to be
 * the same threads, which a failed state read (a thread gone and another
 * come) disproves. One fstat and a pread per thread. */
static int restate_threads(pyspy_memsrc *src, live_impl *li) {
    if (!li->sampling || src->nthreads == 0)
        return -1;
    if (li->no_states) {
        int64_t now = clock_ns(CLOCK_MONOTONIC);
        bool recount = now - li->threads_ns >= SAMPLING_THREADS_NS;
        /* Tids and names stay from the last full read. */
        for (size_t i = 0; i < src->nthreads; i++) {
            src->threads[i].state = 0;
            src->threads[i].syscall = -1;
        }
        if (!recount)
            return 0;
        li->threads_ns = now;
        return pyspy_proc_tasks_count(&li->tasks) == (long)src->nthreads ? 0
                                                                         : -1;
    }
    li->tasks.leader_threads = -1;
    for (size_t i = 0; i < src->nthreads; i++) {
        pyspy_thread *t = &src->threads[i];
        int tid = t->tid;
        memset(t, 0, sizeof *t);
        if (pyspy_proc_tasks_state(&li->tasks, tid, t) != 0)
            return -1;
    }
    /* The leader's stat just read says how many threads there are; only
     * without it (the leader gone) is the directory asked. */
    long n = li->tasks.leader_threads >= 0 ? li->tasks.leader_threads
                                           : pyspy_proc_tasks_count(&li->tasks);
    return n == (long)src->nthreads ? 0 : -1;
}

static int reread_threads(pyspy_memsrc *src, live_impl *li, pyspy_error *err) {
    if (restate_threads(src, li) == 0)
        return 0;
    pyspy_thread *ts;
    size_t k;
    if (pyspy_proc_tasks_read(&li->tasks, &ts, &k, err) != 0)
        return -1;
    free(src->threads);
    src->threads = ts;
    src->nthreads = k;
    return 0;
}

/* Each thread's current syscall (which only snapshots record) is not
 * read, nor registers unless need_regs. Without need_states a
 * NonBlocking source does not read each thread's kernel state either
 * (2-40 % of a sample's CPU, measured side by side): threads are left
 * with state 0 and syscall -1, "unknown", which counts as active. */
static void live_sampling(pyspy_memsrc *src, bool need_regs, bool need_states) {
    live_impl *li = src->impl;
    li->sampling = true;
    li->no_regs = !need_regs;
    /* Lock mode reads the states to know which threads sleep. */
    li->no_states = !need_states && li->lock == PYSPY_NONBLOCKING;
    pyspy_proc_tasks_drop_syscalls(&li->tasks);
    /* A sampler stopping the target a thousand times a second keeps
     * SIGCHLD blocked across suspends instead of paying two mask changes
     * per sample (until close). */
    if (li->lock == PYSPY_LOCK && !li->held_chld) {
        pyspy_ptrace_hold_sigchld(true);
        li->held_chld = true;
    }
}

/* ------------------------------------------------------------ regions */

static uint64_t file_maps_sig(const pyspy_memsrc *src) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < src->nregions; i++) {
        const pyspy_region *r = &src->regions[i];
        if (!r->path || r->path[0] != '/' || r->file_offset != 0)
            continue;
        h = (h ^ r->start) * 1099511628211ULL;
        for (const char *p = r->path; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    }
    return h;
}

static int reread_maps(pyspy_memsrc *src, live_impl *li, pyspy_error *err) {
    pyspy_region *rs;
    size_t n;
    if (pyspy_proc_read_maps(li->pid, &rs, &n, err) != 0)
        return -1;
    li->maps_ns = clock_ns(CLOCK_MONOTONIC);
    pyspy_regions_free(src->regions, src->nregions);
    src->regions = rs;
    src->nregions = n;
    uint64_t sig = file_maps_sig(src);
    if (src->modules && sig == li->maps_sig) {
        /* Same files at the same places: carry the build-ids over. */
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; rs[i].path && k < src->nmodules; k++) {
                const pyspy_module *m = &src->modules[k];
                if (rs[i].start >= m->start && rs[i].end <= m->end &&
                    strcmp(m->path, rs[i].path) == 0) {
                    memcpy(rs[i].build_id, m->build_id, sizeof m->build_id);
                    rs[i].build_id_len = m->build_id_len;
                    break;
                }
            }
        return 0;
    }
    li->maps_sig = sig;
    return pyspy_live_load_modules(src, li->pid, err);
}

/* ------------------------------------------------------------ lock */

static bool all_group_stopped(const pyspy_memsrc *src) {
    for (size_t i = 0; i < src->nthreads; i++)
        if (src->threads[i].state != 'T')
            return false;
    return src->nthreads > 0;
}

static int live_suspend(pyspy_memsrc *src, pyspy_error *err) {
    live_impl *li = src->impl;
    if (li->lock == PYSPY_NONBLOCKING || li->stopped)
        return 0;
    if (li->lock == PYSPY_ALREADY_LOCKED) {
        /* Registers need a tracer; a group stop survives our seize and
         * detach, so the process is as stopped afterwards as before. A
         * process stopped by someone else's ptrace is left alone. */
        if (reread_threads(src, li, err) != 0)
            return -1;
        if (!all_group_stopped(src))
            return 0;
        li->npre = 0;
        li->leaving = false;
        pyspy_error e = {0};
        if (pyspy_ptrace_stop_all(li->pid, &li->set, &li->tasks, 0,
                                  record_state, li, &e) == 0) {
            int rc = threads_from_set(src, li, err);
            pyspy_ptrace_release(&li->set);
            return rc;
        }
        return 0;
    }
    li->npre = 0;
    li->nsl = 0;
    /* A sampler without native stacks leaves sleeping threads running
     * unless the last sample caught one waking up. */
    li->leaving = li->sampling && li->no_regs && !li->full_next;
    li->full_next = false;
    if (pyspy_ptrace_stop_all(li->pid, &li->set, &li->tasks,
                              li->leaving ? PYSPY_PTRACE_LEAVE_SLEEPERS : 0,
                              record_state, li, err) != 0)
        return -1;
    li->stopped = true;
    /* The pause the target lives starts with the first interrupt, not
     * with the states read and the seizes before it. */
    li->stop_t0 = li->set.first_stop_ns ? li->set.first_stop_ns
                                        : clock_ns(CLOCK_MONOTONIC);
    src->proc.capture_time_ns = clock_ns(CLOCK_REALTIME);
    /* The map is the one of the last refresh (or open): a sampler
     * refreshes just before; a snapshot calls reread_regions. */
    if (threads_from_set(src, li, err) != 0) {
        pyspy_ptrace_release(&li->set);
        li->stopped = false;
        return -1;
    }
    return 0;
}

static int live_reread_regions(pyspy_memsrc *src, pyspy_error *err) {
    return reread_maps(src, src->impl, err);
}

static void live_resume(pyspy_memsrc *src) {
    live_impl *li = src->impl;
    if (!li->stopped)
        return;
    pyspy_ptrace_release(&li->set);
    li->stopped = false;
    src->proc.pause_ns = (uint64_t)(clock_ns(CLOCK_MONOTONIC) - li->stop_t0);
}

/* A sampler's reads do not go through the regions; only its native
 * unwinding does (a sampler finds the interpreter once, at attach). With
 * it, once a second keeps them fresh enough without re-reading
 * /proc/PID/maps a thousand times a second; without it, never: each read
 * takes the target's mmap lock and costs a sample's worth of our CPU. */
#define SAMPLING_MAPS_NS 1000000000LL

static int live_refresh(pyspy_memsrc *src, pyspy_error *err) {
    live_impl *li = src->impl;
    if (li->stopped)
        return 0;
    if (reread_threads(src, li, err) != 0)
        return -1;
    bool maps_due = !li->sampling ||
                    (!li->no_regs && clock_ns(CLOCK_MONOTONIC) - li->maps_ns >
                                         SAMPLING_MAPS_NS);
    if (maps_due && reread_maps(src, li, err) != 0)
        return -1;
    src->proc.capture_time_ns = clock_ns(CLOCK_REALTIME);
    return 0;
}

static void live_close(pyspy_memsrc *src) {
    if (!src)
        return;
    live_impl *li = src->impl;
    if (li) {
        live_resume(src);
        /* A process that ended while held: its threads we could not
         * detach are collected now if they can be (its parent's wait
         * returns only after ours). */
        pyspy_ptrace_reap();
        if (li->mem_fd >= 0)
            close(li->mem_fd);
        pyspy_proc_tasks_close(&li->tasks);
        if (li->held_chld)
            pyspy_ptrace_hold_sigchld(false);
        free(li->sl);
        free(li->pre);
        free(li);
    }
    pyspy_regions_free(src->regions, src->nregions);
    free(src->threads);
    pyspy_modules_free(src->modules, src->nmodules);
    pyspy_process_info_free(&src->proc);
    free(src->origin);
    free(src->auxv);
    free(src);
}

static const pyspy_memsrc_ops live_ops = {
    .kind = "live",
    .read = live_read,
    .suspend = live_suspend,
    .resume = live_resume,
    .refresh = live_refresh,
    .close = live_close,
    .readv = live_readv,
    .sampling = live_sampling,
    .check_sleepers = live_check_sleepers,
    .file_root = live_file_root,
    .is_stopped = live_is_stopped,
    .reread_regions = live_reread_regions,
};

/* Fails early, with the permission advice, when memory cannot be read. */
static int probe_access(pyspy_memsrc *src, pyspy_error *err) {
    for (size_t i = 0; i < src->nregions; i++) {
        const pyspy_region *r = &src->regions[i];
        if (!(r->perms & PYSPY_PERM_R) || !r->path ||
            strcmp(r->path, "[stack]") != 0)
            continue;
        uint8_t b[8];
        pyspy_error e = {0};
        if (live_read(src, r->end - sizeof b, b, sizeof b, &e) == 0)
            return 0;
        live_impl *li = src->impl;
        if (e.code == PYSPY_E_UNREADABLE)
            return pyspy_proc_error(li->pid, EPERM, "read the memory", err);
        *err = e;
        return -1;
    }
    return 0;
}

int pyspy_memsrc_open_pid(int pid, pyspy_lock_mode lock, pyspy_memsrc **out,
                          pyspy_error *err) {
    if (pid <= 0)
        return pyspy_error_set(err, PYSPY_E_NOPROC, "invalid pid %d", pid);
    if (pid == getpid() && lock == PYSPY_LOCK)
        return pyspy_error_set(err, PYSPY_E_GENERIC,
                               "process %d is this tool itself: it cannot "
                               "stop itself (use --nonblocking)",
                               pid);
    pyspy_memsrc *src = calloc(1, sizeof *src);
    live_impl *li = calloc(1, sizeof *li);
    if (!src || !li) {
        free(src);
        free(li);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    src->ops = &live_ops;
    src->impl = li;
    li->pid = pid;
    li->lock = lock;
    li->mem_fd = -1;
    snprintf(li->root, sizeof li->root, "/proc/%d/root", pid);
    pyspy_proc_tasks_init(&li->tasks, pid, true);
    li->vm_ok = true;
    char origin[32];
    snprintf(origin, sizeof origin, "pid %d", pid);
    src->origin = strdup(origin);
    if (pyspy_proc_read_info(pid, &src->proc, err) != 0)
        goto fail;
    src->proc.lock = lock;
    char st = pyspy_proc_state(pid);
    if (st == 'Z' || st == 'X') {
        pyspy_error_set(err, PYSPY_E_NOPROC, "process %d has exited (%s)", pid,
                        st == 'Z' ? "zombie" : "dead");
        goto fail;
    }
    if (reread_threads(src, li, err) != 0 || reread_maps(src, li, err) != 0 ||
        probe_access(src, err) != 0)
        goto fail;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/auxv", pid);
    size_t alen = 0;
    if (pyspy_proc_slurp(path, 1 << 16, (char **)&src->auxv, &alen) == 0)
        src->auxv_len = alen;
    src->proc.capture_time_ns = clock_ns(CLOCK_REALTIME);
    *out = src;
    return 0;
fail:
    live_close(src);
    return -1;
}
