/* Idle or active, from what the kernel recorded about a thread at capture
 * time; and py-spy's frame-based fallback. */
#include "analyze/walk/internal.h"

#include <string.h>
#include <sys/syscall.h>

/* System calls a thread waits in: sleeping, lock and condition waits,
 * I/O multiplexing, blocking reads and accepts, child waits. */
static const long blocking_syscalls[] = {
    SYS_futex,           SYS_nanosleep,
    SYS_clock_nanosleep, SYS_select,
    SYS_pselect6,        SYS_poll,
    SYS_ppoll,           SYS_epoll_wait,
    SYS_epoll_pwait,     SYS_read,
    SYS_readv,           SYS_pread64,
    SYS_recvfrom,        SYS_recvmsg,
    SYS_recvmmsg,        SYS_accept,
    SYS_accept4,         SYS_wait4,
    SYS_waitid,          SYS_pause,
    SYS_rt_sigsuspend,   SYS_rt_sigtimedwait,
    SYS_msgrcv,          SYS_semop,
    SYS_semtimedop,      SYS_io_getevents,
    SYS_connect,
#ifdef SYS_epoll_pwait2
    SYS_epoll_pwait2,
#endif
#ifdef SYS_futex_waitv
    SYS_futex_waitv,
#endif
};

static bool blocking(long nr) {
    for (size_t i = 0; i < sizeof blocking_syscalls / sizeof *blocking_syscalls;
         i++)
        if (blocking_syscalls[i] == nr)
            return true;
    return false;
}

bool pyspy_thread_active(const pyspy_thread *t) {
    if (!t)
        return true;
    if (t->crashed)
        return true;
    /* The state letter from /proc (live, snapshots): only R runs. */
    if (t->state && strchr("RSDTtZXxIKWP", t->state))
        return t->state == 'R';
    long nr = t->syscall;
    if (nr == -2 && t->has_regs) {
        /* Kernel cores: orig_rax is the system call the thread sat in,
         * or -1 when it was interrupted in user code. */
        nr = (long)(int64_t)t->regs[PYSPY_REG_ORIG_RAX];
        if (nr < 0)
            nr = -1;
    }
    if (nr >= 0)
        return !blocking(nr);
    return true;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

bool pyspy_frames_look_idle(const pyspy_frame *frames, size_t n) {
    if (n == 0 || !frames[0].name || !frames[0].filename)
        return false;
    const char *name = frames[0].name, *file = frames[0].filename;
    if (strcmp(name, "wait") == 0 && ends_with(file, "threading.py"))
        return true;
    if (strcmp(name, "select") == 0 && ends_with(file, "selectors.py"))
        return true;
    if (strcmp(name, "poll") == 0 &&
        (ends_with(file, "asyncore.py") || strstr(file, "zmq") ||
         strstr(file, "gevent") || strstr(file, "tornado")))
        return true;
    return false;
}
