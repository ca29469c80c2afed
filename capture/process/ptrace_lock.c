/* ptrace-stopping a whole process: PTRACE_SEIZE + PTRACE_INTERRUPT for
 * every thread (SEIZE rather than ATTACH so no SIGSTOP is injected that
 * could be mistaken for, or swallow, a real one), waitpid(__WALL) for each
 * stop, and a re-read of the task list until it is stable. */
#include "capture/base/clock.h"
#include "capture/base/array.h"
#include "capture/process/ptrace_lock.h"
#include "capture/process/proc.h"

#include <elf.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PASSES 1000
#define STOP_TIMEOUT_NS (10LL * 1000000000LL)
#define SPIN_NS 200000LL

/* Every tid held by any set, for the signal handler. Entries are written
 * before the count grows, so a handler interrupting an update sees a
 * consistent prefix; a missed tid is detached by the kernel anyway when
 * the tool exits. */
#define REGISTRY_MAX 65536
static volatile int g_held[REGISTRY_MAX];
static volatile sig_atomic_t g_nheld;

static void registry_add(int tid) {
    if (g_nheld < REGISTRY_MAX) {
        g_held[g_nheld] = tid;
        g_nheld = g_nheld + 1;
    }
}

static void registry_remove(int tid) {
    for (sig_atomic_t i = 0; i < g_nheld; i++)
        if (g_held[i] == tid) {
            g_held[i] = g_held[g_nheld - 1];
            g_nheld = g_nheld - 1;
            return;
        }
}

void pyspy_ptrace_emergency_release(void) {
    int saved = errno;
    for (sig_atomic_t i = 0; i < g_nheld; i++)
        ptrace(PTRACE_DETACH, g_held[i], NULL, NULL);
    g_nheld = 0;
    errno = saved;
}

/* Threads we trace but could not detach: PTRACE_DETACH needs a thread in
 * a ptrace-stop, and one killed while we held it (exit_group from a
 * thread left running, a SIGKILL) has left its stop to die, as has one
 * seized and not stopped yet. A traced thread that dies stays a zombie
 * until its tracer waits for it, and its process's leader cannot be
 * reported to its parent before then: a program started by record hung
 * its reaper, and so pyspy, that way. They are waited for here, from the
 * tracing thread; whatever is still listed when we exit the kernel
 * releases. */
#define LOST_MAX 4096
static int g_lost[LOST_MAX];
static size_t g_nlost;

static void lose(int tid) {
    for (size_t i = 0; i < g_nlost; i++)
        if (g_lost[i] == tid)
            return;
    if (g_nlost < LOST_MAX)
        g_lost[g_nlost++] = tid;
}

/* One non-blocking look at each lost thread: collected when it has died
 * (its real parent is told then), detached once it reaches a stop. */
size_t pyspy_ptrace_reap(void) {
    size_t w = 0;
    for (size_t i = 0; i < g_nlost; i++) {
        int tid = g_lost[i], st = 0;
        pid_t r;
        while ((r = waitpid(tid, &st, __WALL | WNOHANG)) < 0 && errno == EINTR)
            ;
        bool keep = r == 0;
        if (r == tid && WIFSTOPPED(st)) {
            int sig = ((unsigned)st >> 16) == 0 && WSTOPSIG(st) != SIGTRAP
                          ? WSTOPSIG(st)
                          : 0;
            /* Failing, it left the stop again (killed): collect it. */
            keep = ptrace(PTRACE_DETACH, tid, NULL, (void *)(long)sig) != 0;
        }
        if (keep)
            g_lost[w++] = tid;
    }
    g_nlost = w;
    return w;
}

size_t pyspy_ptrace_lost(void) {
    return g_nlost;
}

/* Linear: on a stop's first pass the sets are empty; only a later pass
 * (threads appeared during the stop) searches them. */
static bool has_tid(const int *v, size_t n, int tid) {
    for (size_t i = 0; i < n; i++)
        if (v[i] == tid)
            return true;
    return false;
}

bool pyspy_ptrace_holds(const pyspy_ptrace_set *set, int tid) {
    return has_tid(set->tids, set->n, tid);
}

static int set_add(pyspy_ptrace_set *set, int tid) {
    if (set->n == set->cap) {
        size_t nc = set->cap;
        int *t = pyspy_array_grow(set->tids, &nc, set->cap + 1, sizeof *t, 64);
        if (!t)
            return -1;
        set->tids = t;
        int *s = realloc(set->resig, nc * sizeof *s);
        if (!s)
            return -1;
        set->resig = s;
        set->cap = nc;
    }
    set->tids[set->n] = tid;
    set->resig[set->n] = 0;
    set->n++;
    return 0;
}

static void set_drop(pyspy_ptrace_set *set, size_t i) {
    registry_remove(set->tids[i]);
    set->tids[i] = set->tids[set->n - 1];
    set->resig[i] = set->resig[set->n - 1];
    set->n--;
}

void pyspy_ptrace_release(pyspy_ptrace_set *set) {
    for (size_t i = 0; i < set->n; i++) {
        /* A signal that arrived while we held the thread is handed back,
         * so stopping it never swallows the target's signals. */
        if (ptrace(PTRACE_DETACH, set->tids[i], NULL,
                   (void *)(long)set->resig[i]) != 0) {
            /* Not in a stop: dying, or seized and still running (then
             * the interrupt makes it stop, so it can be let go). */
            ptrace(PTRACE_INTERRUPT, set->tids[i], NULL, NULL);
            lose(set->tids[i]);
        }
        registry_remove(set->tids[i]);
    }
    if (g_nlost)
        pyspy_ptrace_reap();
    free(set->tids);
    free(set->resig);
    free(set->left);
    set->tids = NULL;
    set->resig = NULL;
    set->left = NULL;
    set->n = set->cap = set->nleft = set->leftcap = 0;
}

static bool leaves(const pyspy_ptrace_set *set, int tid) {
    return has_tid(set->left, set->nleft, tid);
}

static int leave(pyspy_ptrace_set *set, int tid) {
    if (pyspy_array_reserve(&set->left, &set->leftcap, set->nleft + 1,
                            sizeof *set->left, 16) != 0)
        return -1;
    set->left[set->nleft++] = tid;
    return 0;
}

static bool thread_gone(pyspy_proc_tasks *tasks, int tid) {
    pyspy_thread t;
    return pyspy_proc_tasks_state(tasks, tid, &t) != 0 || t.state == 'Z' ||
           t.state == 'X';
}

/* One non-blocking look at tid: 1 = stopped, 0 = gone, 2 = nothing yet.
 * Only with check_gone is /proc asked whether a silent thread died. */
static int poll_stop(pyspy_proc_tasks *tasks, int tid, int *resig,
                     bool check_gone) {
    int st = 0;
    pid_t r;
    while ((r = waitpid(tid, &st, __WALL | WNOHANG)) < 0 && errno == EINTR)
        ;
    if (r < 0)
        return 0; /* ECHILD: gone and reaped */
    if (r == tid) {
        if (WIFEXITED(st) || WIFSIGNALED(st))
            return 0;
        if (WIFSTOPPED(st)) {
            int event = (unsigned)st >> 16;
            /* A signal-delivery-stop instead of our interrupt: keep the
             * signal to deliver it on detach. */
            if (event == 0 && WSTOPSIG(st) != SIGTRAP)
                *resig = WSTOPSIG(st);
            return 1;
        }
        return 2;
    }
    /* A thread killed meanwhile may never report to us before the
     * others are reaped (a dying leader waits for its group). */
    if (!check_gone || !thread_gone(tasks, tid))
        return 2;
    /* A zombie leader reports only once its group is empty: until then
     * it stays ours to wait for. */
    if (waitpid(tid, &st, __WALL | WNOHANG) == 0)
        lose(tid);
    return 0;
}

/* Sleeps until a tracee reports (SIGCHLD, blocked by the caller) or
 * 1 ms passes; false on the timeout. Spinning on waitpid instead cost
 * most of a sample's CPU while a running thread took its time to stop. */
static bool wait_chld(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGCHLD);
    struct timespec ts = {0, 1000000};
    return sigtimedwait(&s, NULL, &ts) == SIGCHLD;
}

/* Waits for the stops of set->tids[first..]; the ones that turn out to be
 * gone are dropped. All are polled in turn so that dead threads are
 * reaped and cannot hold up the report of their leader. */
static int wait_stops(pyspy_ptrace_set *set, pyspy_proc_tasks *tasks,
                      size_t first, int64_t deadline, int *stuck) {
    size_t pending = set->n - first;
    bool *done = calloc(pending ? pending : 1, sizeof *done);
    if (!done)
        return -1;
    size_t left = pending;
    bool check_gone = false;
    int64_t spin_from = pyspy_clock_ns();
    while (left > 0) {
        bool progress = false;
        for (size_t k = 0; k < pending; k++) {
            if (done[k])
                continue;
            size_t i = first + k;
            int r = poll_stop(tasks, set->tids[i], &set->resig[i], check_gone);
            if (r == 2)
                continue;
            done[k] = true;
            left--;
            progress = true;
            if (r == 0)
                set->tids[i] = -set->tids[i]; /* dropped below */
        }
        if (left == 0 || progress)
            continue;
        if (pyspy_clock_ns() > deadline) {
            for (size_t k = 0; k < pending; k++)
                if (!done[k])
                    *stuck = set->tids[first + k];
            free(done);
            return -1;
        }
        /* A running thread stops within microseconds of the interrupt;
         * sleeping through that lets this CPU go idle, and waking it
         * again (a VM exit on this machine) kept the target stopped for
         * ~150 us more per sample. So poll briefly before sleeping. */
        if (pyspy_clock_ns() - spin_from < SPIN_NS)
            continue;
        check_gone = !wait_chld();
    }
    free(done);
    for (size_t i = first; i < set->n;) {
        if (set->tids[i] < 0) {
            set->tids[i] = -set->tids[i];
            set_drop(set, i);
        } else {
            i++;
        }
    }
    return 0;
}

static int tracer_message(int pid, int tid, pyspy_error *err) {
    char path[64], *buf = NULL;
    int tracer = 0;
    snprintf(path, sizeof path, "/proc/%d/task/%d/status", pid, tid);
    if (pyspy_proc_slurp(path, 1 << 16, &buf, NULL) == 0) {
        char *p = strstr(buf, "TracerPid:");
        if (p)
            tracer = atoi(p + 10);
        free(buf);
    }
    if (tracer > 0)
        return pyspy_error_set(err, PYSPY_E_PERM,
                               "process %d is already traced by process %d "
                               "(a debugger?); use --nonblocking, or "
                               "--already-locked if it is stopped",
                               pid, tracer);
    return pyspy_proc_error(pid, EPERM, "attach to the threads", err);
}

static int stop_all(int pid, pyspy_ptrace_set *set, pyspy_proc_tasks *tasks,
                    unsigned flags, pyspy_ptrace_seen_fn seen, void *ctx,
                    pyspy_error *err) {
    int64_t deadline = pyspy_clock_ns() + STOP_TIMEOUT_NS;
    for (int pass = 0; pass < MAX_PASSES; pass++) {
        /* Every thread the kernel counts is held: nothing new to list. (A
         * held thread cannot exit unseen: it is stopped, and one killed
         * is dropped from the set, making the counts differ.) */
        if (pass > 0 &&
            pyspy_proc_tasks_count(tasks) == (long)(set->n + set->nleft))
            break;
        int *tids = NULL;
        size_t n = 0;
        int rc = pass == 0 ? pyspy_proc_tasks_list_quick(tasks, &tids, &n, err)
                           : pyspy_proc_tasks_list(tasks, &tids, &n, err);
        if (rc != 0) {
            pyspy_ptrace_release(set);
            return -1;
        }
        size_t first_new = set->n;
        for (size_t i = 0; i < n; i++) {
            int tid = tids[i];
            if (pyspy_ptrace_holds(set, tid) || leaves(set, tid))
                continue;
            char st = seen ? seen(ctx, tid) : 0;
            if (!seen) {
                pyspy_thread t;
                st = pyspy_proc_tasks_state(tasks, tid, &t) == 0 ? t.state : 0;
            }
            /* An exited thread (a leader gone with pthread_exit) never
             * reports a stop. */
            if (st == 'Z' || st == 'X')
                continue;
            if ((flags & PYSPY_PTRACE_LEAVE_SLEEPERS) &&
                (st == 'S' || st == 'D')) {
                if (leave(set, tid) != 0) {
                    free(tids);
                    pyspy_ptrace_release(set);
                    return pyspy_error_set(err, PYSPY_E_GENERIC,
                                           "out of memory");
                }
                continue;
            }
            if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) != 0) {
                int e = errno;
                if (e == ESRCH)
                    continue; /* exited meanwhile */
                free(tids);
                pyspy_ptrace_release(set);
                if (e == EPERM)
                    return tracer_message(pid, tid, err);
                return pyspy_proc_error(pid, e, "attach to the threads", err);
            }
            if (set_add(set, tid) != 0) {
                ptrace(PTRACE_DETACH, tid, NULL, NULL);
                free(tids);
                pyspy_ptrace_release(set);
                return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
            }
            registry_add(tid);
        }
        free(tids);
        /* Interrupted together once all are seized: the pause starts with
         * the first interrupt, and the state reads and seizes of the
         * other threads are kept out of it. */
        for (size_t i = first_new; i < set->n; i++) {
            if (!set->first_stop_ns)
                set->first_stop_ns = pyspy_clock_ns();
            ptrace(PTRACE_INTERRUPT, set->tids[i], NULL, NULL);
        }
        if (set->n == first_new && (pass > 0 || set->n > 0))
            break; /* no new thread: the list is stable */
        int stuck = 0;
        if (wait_stops(set, tasks, first_new, deadline, &stuck) != 0) {
            pyspy_ptrace_release(set);
            if (!stuck)
                return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
            return pyspy_error_set(err, PYSPY_E_GENERIC,
                                   "thread %d of process %d did not stop "
                                   "within 10 s (uninterruptible sleep?)",
                                   stuck, pid);
        }
    }
    if (set->n + set->nleft == 0) {
        pyspy_ptrace_release(set);
        return pyspy_proc_error(pid, ESRCH, "stop the threads", err);
    }
    return 0;
}

static _Thread_local unsigned chld_depth;
static _Thread_local sigset_t chld_old;

void pyspy_ptrace_hold_sigchld(bool on) {
    if (on) {
        if (chld_depth++ == 0) {
            sigset_t chld;
            sigemptyset(&chld);
            sigaddset(&chld, SIGCHLD);
            pthread_sigmask(SIG_BLOCK, &chld, &chld_old);
        }
    } else if (chld_depth > 0 && --chld_depth == 0) {
        pthread_sigmask(SIG_SETMASK, &chld_old, NULL);
    }
}

int pyspy_ptrace_stop_all(int pid, pyspy_ptrace_set *set,
                          pyspy_proc_tasks *tasks, unsigned flags,
                          pyspy_ptrace_seen_fn seen, void *ctx,
                          pyspy_error *err) {
    memset(set, 0, sizeof *set);
    set->pid = pid;
    pyspy_proc_tasks own;
    if (!tasks) {
        pyspy_proc_tasks_init(&own, pid, false);
        tasks = &own;
    }
    /* SIGCHLD stays pending for wait_chld instead of being discarded. */
    pyspy_ptrace_hold_sigchld(true);
    int rc = stop_all(pid, set, tasks, flags, seen, ctx, err);
    pyspy_ptrace_hold_sigchld(false);
    if (tasks == &own)
        pyspy_proc_tasks_close(&own);
    return rc;
}

void pyspy_ptrace_read_regs(int tid, pyspy_thread *t) {
    struct user_regs_struct regs;
    struct iovec iov = {&regs, sizeof regs};
    t->has_regs = false;
    t->has_fpregs = false;
    if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &iov) == 0 &&
        iov.iov_len == sizeof regs) {
        _Static_assert(sizeof regs == PYSPY_NREGS * sizeof(uint64_t),
                       "user_regs_struct is NT_PRSTATUS pr_reg");
        memcpy(t->regs, &regs, sizeof regs);
        t->has_regs = true;
    }
    struct user_fpregs_struct fp;
    struct iovec fiov = {&fp, sizeof fp};
    _Static_assert(sizeof fp == sizeof t->fpregs, "user_fpregs_struct");
    if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_FPREGSET, &fiov) == 0 &&
        fiov.iov_len == sizeof fp) {
        memcpy(t->fpregs, &fp, sizeof fp);
        t->has_fpregs = true;
    }
}
