/* Stopping every thread of a process with ptrace, reading registers, and
 * letting it go again -- also from a signal handler.
 * (capture/process/ptrace_lock.c)
 */
#ifndef PYSPY_CAPTURE_PTRACE_LOCK_H
#define PYSPY_CAPTURE_PTRACE_LOCK_H

#include "capture/process/proc.h"
#include <pyspy.h>

typedef struct pyspy_ptrace_set {
    int pid;
    int *tids;  /* threads we are attached to and that are stopped */
    int *resig; /* signal to hand back on detach (0 = none) */
    size_t n, cap;
    int64_t first_stop_ns; /* CLOCK_MONOTONIC of the first interrupt */
    /* threads left running because they slept (PYSPY_PTRACE_LEAVE_SLEEPERS) */
    int *left;
    size_t nleft, leftcap;
} pyspy_ptrace_set;

/* Threads the seen callback reports asleep ('S', 'D') are not stopped:
 * stopping one wakes it, and a sampler can prove instead that it did not
 * run (the live source's check_sleepers). */
#define PYSPY_PTRACE_LEAVE_SLEEPERS 1u

/* Called for each thread just before it is stopped, so its kernel state
 * is read while it still runs; returns that state letter (0: unknown). */
typedef char (*pyspy_ptrace_seen_fn)(void *ctx, int tid);

/* Seizes and interrupts every thread of pid and waits for each stop;
 * re-reads the task list until no new thread appears, so threads created
 * during the attach are stopped too. On failure everything attached so
 * far is released. tasks: the process's kept-open thread files (NULL:
 * opened for this call). */
int pyspy_ptrace_stop_all(int pid, pyspy_ptrace_set *set,
                          pyspy_proc_tasks *tasks, unsigned flags,
                          pyspy_ptrace_seen_fn seen, void *ctx,
                          pyspy_error *err);
/* Keeps SIGCHLD blocked in the calling thread (on) or lets it go again
 * (off); nested holds pair up, and the thread's mask is restored when the
 * last one goes. stop_all holds it while it waits for stops; a live
 * source serving a sampler holds it from its sampling hint to its close
 * instead of paying two mask changes per sample. Nothing here relies on
 * a SIGCHLD handler. */
void pyspy_ptrace_hold_sigchld(bool on);
/* Registers (NT_PRSTATUS) and FPU state (NT_FPREGSET) of a stopped
 * thread. */
void pyspy_ptrace_read_regs(int tid, pyspy_thread *t);
/* Detaches every thread (a group-stopped process stays stopped). A
 * thread that cannot be detached (it died while held, or has not reached
 * its stop yet) is kept on a list for pyspy_ptrace_reap. */
void pyspy_ptrace_release(pyspy_ptrace_set *set);
/* Waits, without blocking, for the threads release could not detach:
 * each that died is collected (only then can its parent reap its
 * process), each that stopped is detached. Returns how many are left;
 * call it again until 0 before waiting on anything that waits for the
 * target. Not async-signal-safe; from the tracing thread. */
size_t pyspy_ptrace_reap(void);
/* How many such threads are listed now. */
size_t pyspy_ptrace_lost(void);
bool pyspy_ptrace_holds(const pyspy_ptrace_set *set, int tid);

/* Async-signal-safe: detaches whatever any set currently holds. For
 * SIGINT/SIGTERM/SIGHUP handlers. */
void pyspy_ptrace_emergency_release(void);

#endif
