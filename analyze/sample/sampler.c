/* The sampling loop: absolute deadlines on CLOCK_MONOTONIC, one walk of
 * every target per tick, new Python descendants picked up at the tick
 * after they appear, targets dropped when they exit. */
#include "capture/base/clock.h"
#include "analyze/sample/sampler.h"
#include "analyze/cpython/python.h"
#include "analyze/sample/cache.h"
#include "analyze/walk/cache.h"
#include "capture/process/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_TARGETS 256
/* Attempts before a non-Python descendant is ignored, the first a tick
 * after it appears, then after 10, 20, 40 ms ... up to a second apart
 * (about 4 s in all: an exec'd interpreter may take that long to start
 * on a loaded machine). */
#define MAX_TRIES 10
#define RETRY_FIRST_US 10000
#define RETRY_MAX_US 1000000
/* Without children files, /proc is scanned this often. */
#define RESCAN_US 1000000
/* Thread names and sys.path: re-read every 10 s, or after 1 s once a
 * thread without a known name shows up. Reading them walks dicts of the
 * target and cost more than the samples in between at 100 Hz. */
#define WALK_REFRESH_US 10000000
#define WALK_MISSING_US 1000000

typedef struct target {
    int pid;
    pyspy_memsrc *src;
    pyspy_python py;
    pyspy_sample_cache *cache; /* NULL: read the source directly */
    pyspy_walk_cache *wcache;  /* NULL: sys.path and names read each walk */
    int fails;                 /* consecutive failed ticks */
} target;

typedef struct tried {
    int pid;
    int attempts;
    int64_t next_us; /* no attempt before */
} tried;

typedef struct sampler {
    const pyspy_sampler_opts *o;
    pyspy_sampler_stats *st;
    /* grown as processes are found: a fixed array of MAX_TARGETS was a
     * megabyte to zero at every start */
    target *targets;
    int ntargets, captargets;
    tried *tried; /* descendants that had no Python (yet) */
    size_t ntried, captried;
    int64_t start_us, last_scan_us;
    /* --subprocesses: the last pid the kernel handed out, as last read;
     * no scan is needed while it stays the same. */
    int loadavg_fd;
    long last_pid;
    bool no_children_files; /* scan /proc every RESCAN_US instead */
} sampler;

static void sleep_until_us(int64_t t) {
    struct timespec ts = {.tv_sec = t / 1000000,
                          .tv_nsec = (t % 1000000) * 1000};
    /* EINTR (Ctrl-C) returns early; the loop checks the stop flag. */
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

size_t pyspy_descendant_pids(int root, int *out, size_t max) {
    int *all = NULL;
    size_t n = 0;
    pyspy_error e = {0};
    if (pyspy_proc_children_tree(root, &all, &n, &e) != 0 &&
        pyspy_proc_descendants(root, &all, &n, &e) != 0)
        return 0;
    if (n > max)
        n = max;
    memcpy(out, all, n * sizeof *out);
    free(all);
    return n;
}

static bool process_gone(sampler *s, int pid) {
    (void)s;
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return true;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    char buf[512];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && (p[2] == 'Z' || p[2] == 'X');
}

/* Opens pid and finds its interpreter; -1 with err when it has none. */
static int attach(sampler *s, int pid, pyspy_error *err) {
    if (s->ntargets >= MAX_TARGETS)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "too many processes");
    if (s->ntargets == s->captargets) {
        int nc = s->captargets ? s->captargets * 2 : 4;
        target *nt = realloc(s->targets, (size_t)nc * sizeof *nt);
        if (!nt)
            return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        s->targets = nt;
        s->captargets = nc;
    }
    target *t = &s->targets[s->ntargets];
    memset(t, 0, sizeof *t);
    if (pyspy_memsrc_open_pid(pid, s->o->lock, &t->src, err))
        return -1;
    pyspy_memsrc_sampling(t->src, s->o->walk.native, !s->o->skip_thread_states);
    if (pyspy_python_find(t->src, &t->py, err)) {
        pyspy_memsrc_close(t->src);
        t->src = NULL;
        return -1;
    }
    t->pid = pid;
    /* Without the cache a sample still works, only slower. */
    t->cache = pyspy_sample_cache_new();
    t->wcache = pyspy_walk_cache_new(WALK_REFRESH_US, WALK_MISSING_US);
    s->ntargets++;
    s->st->nprocs = s->ntargets;
    s->st->nprocs_seen++;
    if (!s->st->python_version[0])
        snprintf(s->st->python_version, sizeof s->st->python_version, "%s",
                 t->py.version);
    return 0;
}

static void detach(sampler *s, int i) {
    target *t = &s->targets[i];
    pyspy_python_free(&t->py);
    pyspy_memsrc_close(t->src);
    pyspy_sample_cache_free(t->cache);
    pyspy_walk_cache_free(t->wcache);
    s->targets[i] = s->targets[--s->ntargets];
    s->st->nprocs = s->ntargets;
}

static bool is_target(sampler *s, int pid) {
    for (int i = 0; i < s->ntargets; i++)
        if (s->targets[i].pid == pid)
            return true;
    return false;
}

static tried *find_tried(sampler *s, int pid) {
    for (size_t i = 0; i < s->ntried; i++)
        if (s->tried[i].pid == pid)
            return &s->tried[i];
    if (s->ntried == s->captried) {
        size_t ncap = s->captried ? s->captried * 2 : 64;
        tried *n = realloc(s->tried, ncap * sizeof *n);
        if (!n)
            return NULL;
        s->tried = n;
        s->captried = ncap;
    }
    s->tried[s->ntried] = (tried){pid, 0, 0};
    return &s->tried[s->ntried++];
}

static int cmp_pid(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The last pid handed out (the fifth field of /proc/loadavg), -1 when
 * unknown. Any fork or thread anywhere changes it. */
static long read_last_pid(sampler *s) {
    if (s->loadavg_fd < 0)
        return -1;
    char buf[128];
    ssize_t n = pread(s->loadavg_fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ' ');
    return p ? strtol(p + 1, NULL, 10) : -1;
}

/* --subprocesses: new descendants are found at the tick after they
 * appear, so a child that lives two sample periods is sampled. Of the
 * two ways to learn of them, PTRACE_O_TRACEFORK would keep every process
 * traced for the whole run (no --nonblocking without ptrace, no debugger
 * on it meanwhile, a stop of the parent at every fork); /proc is read
 * instead, and only when the kernel's last pid changed since the last
 * look: one pread per tick while nothing forks. */
static bool scan_due(sampler *s, int64_t now) {
    if (s->no_children_files)
        return now - s->last_scan_us >= RESCAN_US;
    long last = read_last_pid(s);
    if (last >= 0 && last == s->last_pid) {
        /* A retry may still be due. */
        for (size_t i = 0; i < s->ntried; i++)
            if (s->tried[i].attempts < MAX_TRIES && s->tried[i].next_us <= now)
                return true;
        return false;
    }
    s->last_pid = last;
    return true;
}

static void rescan(sampler *s, int64_t now) {
    int kids[MAX_TARGETS * 4];
    int *all = NULL;
    size_t n = 0;
    pyspy_error e = {0};
    s->last_scan_us = now;
    if (s->no_children_files ||
        pyspy_proc_children_tree(s->o->pid, &all, &n, &e) != 0) {
        /* Only a missing children file makes that permanent. */
        if (e.code == PYSPY_E_UNSUPPORTED && pyspy_proc_state(s->o->pid))
            s->no_children_files = true;
        n = pyspy_descendant_pids(s->o->pid, kids,
                                  sizeof kids / sizeof kids[0]);
    } else {
        if (n > sizeof kids / sizeof kids[0])
            n = sizeof kids / sizeof kids[0];
        if (n)
            memcpy(kids, all, n * sizeof *kids);
        free(all);
    }
    /* Processes gone are forgotten: the list stays as long as the tree,
     * however many children came and went. */
    size_t w = 0;
    for (size_t i = 0; i < s->ntried; i++)
        if (bsearch(&s->tried[i].pid, kids, n, sizeof *kids, cmp_pid))
            s->tried[w++] = s->tried[i];
    s->ntried = w;
    for (size_t i = 0; i < n; i++) {
        if (is_target(s, kids[i]))
            continue;
        tried *t = find_tried(s, kids[i]);
        /* A fork may not have exec'd Python yet: try again later. */
        if (!t || t->attempts >= MAX_TRIES || now < t->next_us)
            continue;
        int64_t wait = RETRY_FIRST_US << (t->attempts < 10 ? t->attempts : 10);
        t->next_us = now + (wait < RETRY_MAX_US ? wait : RETRY_MAX_US);
        t->attempts++;
        pyspy_error ae = {0};
        if (attach(s, kids[i], &ae) == 0)
            t->attempts = MAX_TRIES;
    }
}

/* A target that exec'd: its interpreter (if any) is a new one, somewhere
 * else. Told by its auxiliary vector, which every exec makes anew. */
static bool execed(const target *t) {
    char path[64], *buf = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "/proc/%d/auxv", t->pid);
    if (!t->src->auxv || pyspy_proc_slurp(path, 1 << 16, &buf, &len) != 0)
        return false;
    bool same = len == t->src->auxv_len && memcmp(buf, t->src->auxv, len) == 0;
    free(buf);
    return !same;
}

/* Forgets target i so that the next scans attach it afresh. */
static void retry_later(sampler *s, int i, int64_t now) {
    int pid = s->targets[i].pid;
    detach(s, i);
    tried *t = find_tried(s, pid);
    if (t) {
        t->attempts = 0;
        t->next_us = now;
    }
}

/* The root: a spawned program may need time to exec and initialise. With
 * subprocesses a root that runs no Python is not an error: it may be a
 * launcher, watched until its children do. */
static int attach_root(sampler *s, pyspy_error *err) {
    const pyspy_sampler_opts *o = s->o;
    int64_t until = pyspy_clock_us() + (int64_t)o->attach_wait_ms * 1000;
    int tries = 0;
    for (;;) {
        pyspy_error_clear(err);
        if (attach(s, o->pid, err) == 0)
            return 0;
        tries++;
        if (o->stop && *o->stop)
            return -1;
        if (err->code == PYSPY_E_PERM || err->code == PYSPY_E_UNSUPPORTED)
            return -1;
        if (process_gone(s, o->pid))
            return -1;
        if (o->subprocesses)
            return 0;
        if (pyspy_clock_us() > until && tries >= 3)
            return -1;
        usleep(tries < 20 ? 5000 : 20000);
    }
}

/* Lock mode walks the running process once before stopping it, and
 * throws the result away. A sample 10 ms after the last one finds every
 * cache cold, ours and the kernel's (the page tables process_vm_readv
 * walks); warm, the walk inside the pause takes a fifth of the time and
 * the target is held ~70 us instead of ~100 per sample at 100 Hz, for
 * some CPU of ours. */
static void warm_up(target *t, const pyspy_walk_opts *wo) {
    if (!t->cache)
        return;
    pyspy_walk_opts w = *wo;
    w.native = false;
    pyspy_traces traces = {0};
    pyspy_error e = {0};
    pyspy_memsrc *view = pyspy_sample_cache_begin(t->cache, t->src);
    pyspy_stack_traces(view, &t->py, &w, &traces, &e);
    pyspy_traces_free(&traces);
}

/* One sample of t handed to on_traces. -1 when t could not be read, or
 * (with *aborted set) when on_traces asked to abort. */
static int sample_target(sampler *s, target *t, int64_t ts, bool *aborted,
                         pyspy_error *err) {
    pyspy_traces traces = {0};
    /* In Lock mode suspend re-reads threads and maps of the stopped
     * process; otherwise the thread states (idle or not) need a refresh. */
    if (s->o->lock != PYSPY_LOCK && pyspy_memsrc_refresh(t->src, err))
        return -1;
    pyspy_walk_opts wo = s->o->walk;
    wo.cache = t->wcache;
    wo.cold_src = t->src;
    if (s->o->lock == PYSPY_LOCK)
        warm_up(t, &wo);
    int rc = 0;
    /* At most twice: in Lock mode a thread left running because it slept
     * may have woken during the walk (checked after the resume, outside
     * the pause) and torn it; the next suspend stops every thread. */
    for (int attempt = 0; attempt < 2; attempt++) {
        if (pyspy_memsrc_suspend(t->src, err))
            return -1;
        pyspy_memsrc *view =
            t->cache ? pyspy_sample_cache_begin(t->cache, t->src) : t->src;
        rc = pyspy_stack_traces(view, &t->py, &wo, &traces, err);
        pyspy_memsrc_resume(t->src);
        if (s->o->lock != PYSPY_LOCK)
            break;
        s->st->paused_ns += t->src->proc.pause_ns;
        if (attempt == 0)
            s->st->pauses++;
        if (rc != 0 || attempt == 1 || pyspy_memsrc_check_sleepers(t->src))
            break;
        pyspy_traces_free(&traces);
        memset(&traces, 0, sizeof traces);
        s->st->rewalks++;
    }
    if (rc)
        return -1;
    if (!traces.pid)
        traces.pid = t->pid;
    for (size_t i = 0; i < traces.ntraces; i++)
        if (!traces.traces[i].pid)
            traces.traces[i].pid = t->pid;
    s->st->samples += traces.ntraces;
    rc = s->o->on_traces ? s->o->on_traces(s->o->ctx, &traces, ts) : 0;
    pyspy_traces_free(&traces);
    if (rc) {
        *aborted = true;
        return -1;
    }
    return 0;
}

static void cleanup(sampler *s) {
    while (s->ntargets)
        detach(s, s->ntargets - 1);
    free(s->targets);
    s->targets = NULL;
    free(s->tried);
    s->tried = NULL;
    if (s->loadavg_fd >= 0)
        close(s->loadavg_fd);
    s->loadavg_fd = -1;
}

int pyspy_sampler_run(const pyspy_sampler_opts *o, pyspy_sampler_stats *st,
                      pyspy_error *err) {
    sampler s = {.o = o, .st = st, .loadavg_fd = -1};
    memset(st, 0, sizeof *st);
    st->pid = o->pid;
    int64_t period = 1000000 / (int64_t)(o->rate ? o->rate : 1);
    if (period < 1)
        period = 1;
    if (attach_root(&s, err)) {
        cleanup(&s);
        return -1;
    }
    pyspy_error_clear(err);
    if (o->on_attached)
        o->on_attached(o->ctx, st);
    s.start_us = pyspy_clock_us();
    s.last_scan_us = s.start_us;
    /* -d is wall-clock time from the first tick: no tick starts at or
     * after the end, so a run overruns it by at most one sample. 0 takes
     * none, as in py-spy. */
    int64_t end_us =
        o->timed && o->duration_us < INT64_MAX - s.start_us
            ? s.start_us + (o->duration_us > 0 ? o->duration_us : 0)
            : INT64_MAX;
    if (o->subprocesses) {
        s.loadavg_fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
        s.last_pid = read_last_pid(&s);
        rescan(&s, s.start_us);
    }
    int64_t tick = 0;
    for (;;) {
        int64_t deadline = s.start_us + tick * period;
        int64_t now = pyspy_clock_us();
        if (now < deadline) {
            sleep_until_us(deadline < end_us ? deadline : end_us);
            now = pyspy_clock_us();
        }
        if (o->stop && *o->stop) {
            st->reason = PYSPY_STOP_SIGNAL;
            break;
        }
        if (now >= end_us) {
            st->reason = PYSPY_STOP_DURATION;
            break;
        }
        if (now < deadline)
            continue; /* woken early by a signal that did not stop us */
        int64_t behind = now - deadline;
        if (behind >= period) {
            /* A tick's slot went by while the last one ran (or while we
             * were not scheduled): its sample is skipped, not caught up
             * in a burst of samples a few microseconds apart, and the
             * rate achieved is what it is (st->missed says how far
             * short). */
            st->late++;
            if (behind > st->max_late_us)
                st->max_late_us = behind;
            int64_t slot = (now - s.start_us) / period;
            st->missed += (uint64_t)(slot - tick);
            tick = slot;
        }
        if (o->subprocesses && scan_due(&s, now))
            rescan(&s, now);
        int64_t ts = now - s.start_us;
        for (int i = 0; i < s.ntargets; i++) {
            target *t = &s.targets[i];
            pyspy_error e = {0};
            bool aborted = false;
            int rc = sample_target(&s, t, ts, &aborted, &e);
            if (aborted) {
                st->reason = PYSPY_STOP_ERROR;
                pyspy_error_set(err, PYSPY_E_GENERIC, "%s",
                                "aborted while recording");
                cleanup(&s);
                return -1;
            }
            if (rc == 0) {
                t->fails = 0;
                continue;
            }
            if (process_gone(&s, t->pid)) {
                detach(&s, i--);
                continue;
            }
            st->errors++;
            t->fails++;
            /* A child caught between its fork and its exec. */
            if (o->subprocesses && t->pid != o->pid && t->fails >= 2 &&
                execed(t)) {
                retry_later(&s, i--, now);
                continue;
            }
        }
        st->ticks++;
        tick++;
        st->elapsed_us = pyspy_clock_us() - s.start_us;
        if (o->on_tick) {
            int c = o->on_tick(o->ctx, st);
            if (c) {
                st->reason = c > 0 ? PYSPY_STOP_CALLBACK : PYSPY_STOP_ERROR;
                break;
            }
        }
        if (s.ntargets == 0) {
            /* With subprocesses a launcher may still start Python kids. */
            bool root_alive = !process_gone(&s, o->pid);
            if (!o->subprocesses || !root_alive) {
                st->reason = PYSPY_STOP_EXITED;
                break;
            }
        }
    }
    st->elapsed_us = pyspy_clock_us() - s.start_us;
    cleanup(&s);
    return 0;
}
