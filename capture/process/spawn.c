/* fork/exec of the profiled program under a reaper process. A
 * close-on-exec pipe tells whether the exec happened (and errno if it did
 * not); a second pipe carries the program's pid and, at its end, its wait
 * status from the reaper; a third, ours to write, asks the reaper to kill
 * the program (a byte, or its end closing when we die). Only the reaper
 * signals the program: until it has reaped it the pid cannot be reused,
 * where a kill from here could reach another process that got the pid. */
#include "capture/process/spawn.h"
#include "capture/base/clock.h"
#include "capture/process/ptrace_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long the program may take to end once it was sent SIGKILL. */
#define FINISH_WAIT_MS 10000

static int make_capture_file(void) {
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/pyspy-output-XXXXXX",
             dir && *dir ? dir : "/tmp");
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path);
    return fd;
}

static bool write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

static bool read_all(int fd, void *p, size_t n) {
    char *c = p;
    while (n) {
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        c += r;
        n -= (size_t)r;
    }
    return true;
}

/* In the grandchild: never returns. */
static void exec_program(char **argv, bool capture, int capture_fd,
                         int exec_fd) {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (capture) {
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        dup2(capture_fd, 1);
        dup2(capture_fd, 2);
    }
    execvp(argv[0], argv);
    int e = errno;
    write_all(exec_fd, &e, sizeof e);
    _exit(127);
}

static int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

/* In the reaper: waits for the program, killing it when asked on ctl_fd
 * (or when ctl_fd's other end closes: pyspy is gone). Returns its wait
 * status. */
static int wait_program(pid_t pid, int ctl_fd) {
    int status = 0, pidfd = open_pidfd(pid);
    bool asked = false;
    for (;;) {
        pid_t r = waitpid(pid, &status, asked ? 0 : WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            break;
        if (asked)
            continue;
        struct pollfd p[2] = {{.fd = ctl_fd, .events = POLLIN},
                              {.fd = pidfd, .events = POLLIN}};
        /* Without a pidfd (kernels before 5.3) the exit is polled for. */
        int n = poll(p, pidfd >= 0 ? 2 : 1, pidfd >= 0 ? -1 : 100);
        if (n > 0 && p[0].revents) {
            kill(pid, SIGKILL);
            asked = true;
        } else if (n > 0 && p[1].revents) {
            /* It exited; a tracer may still hold its zombie, and then
             * only the tracer's wait lets ours return. */
            asked = true;
        }
    }
    if (pidfd >= 0)
        close(pidfd);
    return status;
}

/* In the reaper: never returns. Ctrl-C reaches the whole process group;
 * the reaper ignores it so it is still there to report the status. */
static void reap(char **argv, bool capture, int capture_fd, int exec_fd,
                 int status_fd, int ctl_fd) {
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    pid_t pid = fork();
    if (pid == 0)
        exec_program(argv, capture, capture_fd, exec_fd);
    /* pyspy gone: the write fails instead of killing us first. */
    signal(SIGPIPE, SIG_IGN);
    close(exec_fd);
    int ipid = (int)pid;
    write_all(status_fd, &ipid, sizeof ipid);
    if (pid < 0)
        _exit(1);
    int status = wait_program(pid, ctl_fd);
    write_all(status_fd, &status, sizeof status);
    _exit(0);
}

static void close_pair(int p[2]) {
    close(p[0]);
    close(p[1]);
}

int pyspy_spawn(char **argv, bool capture, pyspy_spawned *out,
                pyspy_error *err) {
    *out = (pyspy_spawned){0, 0, -1, -1, -1, false, 0};
    if (!argv || !argv[0])
        return pyspy_error_set(err, PYSPY_E_USAGE, "no program to run");
    int exec_pipe[2], status_pipe[2], ctl_pipe[2];
    if (pipe2(exec_pipe, O_CLOEXEC))
        return pyspy_error_set(err, PYSPY_E_IO, "pipe: %s", strerror(errno));
    if (pipe2(status_pipe, O_CLOEXEC)) {
        int e = errno;
        close_pair(exec_pipe);
        return pyspy_error_set(err, PYSPY_E_IO, "pipe: %s", strerror(e));
    }
    if (pipe2(ctl_pipe, O_CLOEXEC)) {
        int e = errno;
        close_pair(exec_pipe);
        close_pair(status_pipe);
        return pyspy_error_set(err, PYSPY_E_IO, "pipe: %s", strerror(e));
    }
    if (capture && (out->capture_fd = make_capture_file()) < 0) {
        int e = errno;
        close_pair(exec_pipe);
        close_pair(status_pipe);
        close_pair(ctl_pipe);
        return pyspy_error_set(err, PYSPY_E_IO,
                               "cannot create a file for the program's "
                               "output: %s",
                               strerror(e));
    }
    fflush(NULL);
    pid_t reaper = fork();
    if (reaper == 0) {
        close(exec_pipe[0]);
        close(status_pipe[0]);
        close(ctl_pipe[1]);
        reap(argv, capture, out->capture_fd, exec_pipe[1], status_pipe[1],
             ctl_pipe[0]);
    }
    int fork_errno = errno;
    close(exec_pipe[1]);
    close(status_pipe[1]);
    close(ctl_pipe[0]);
    int pid = -1, child_errno = 0;
    if (reaper < 0 || !read_all(status_pipe[0], &pid, sizeof pid) || pid < 0) {
        close(exec_pipe[0]);
        close(status_pipe[0]);
        close(ctl_pipe[1]);
        if (reaper > 0)
            waitpid(reaper, NULL, 0);
        if (out->capture_fd >= 0)
            close(out->capture_fd);
        out->capture_fd = -1;
        return pyspy_error_set(err, PYSPY_E_GENERIC,
                               "Failed to create process '%s': %s", argv[0],
                               strerror(reaper < 0 ? fork_errno : EAGAIN));
    }
    /* EOF: the exec happened (the pipe closed on exec). */
    bool failed = read_all(exec_pipe[0], &child_errno, sizeof child_errno);
    close(exec_pipe[0]);
    out->pid = pid;
    out->reaper_pid = reaper;
    out->status_fd = status_pipe[0];
    out->ctl_fd = ctl_pipe[1];
    if (failed) {
        int st;
        pyspy_spawn_finish(out, &st, false, NULL);
        return pyspy_error_set(err, PYSPY_E_GENERIC,
                               "Failed to create process '%s': %s", argv[0],
                               strerror(child_errno));
    }
    return 0;
}

bool pyspy_spawn_ended(pyspy_spawned *s, int *status) {
    if (!s->ended && s->status_fd >= 0) {
        struct pollfd p = {.fd = s->status_fd, .events = POLLIN};
        if (poll(&p, 1, 0) > 0 &&
            read_all(s->status_fd, &s->status, sizeof s->status))
            s->ended = true;
    }
    if (s->ended && status)
        *status = s->status;
    return s->ended;
}

void pyspy_describe_status(int status, char *buf, size_t len) {
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "ended (status 0x%x)", (unsigned)status);
}

static void dump_output(int fd) {
    char buf[8192];
    ssize_t n;
    if (lseek(fd, 0, SEEK_SET) < 0)
        return;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        if (fwrite(buf, 1, (size_t)n, stderr) != (size_t)n)
            break;
}

static int64_t now_ms(void) {
    return pyspy_clock_ns() / 1000000;
}

/* The status from the reaper, waiting at most timeout_ms, and no longer
 * once *interrupt changes. Threads of the program that we traced and
 * could not let go are collected meanwhile: the reaper's wait returns
 * only after ours. */
static bool wait_status(pyspy_spawned *s, int64_t timeout_ms,
                        const volatile sig_atomic_t *interrupt) {
    int64_t until = now_ms() + timeout_ms;
    sig_atomic_t seen = interrupt ? *interrupt : 0;
    for (;;) {
        pyspy_ptrace_reap();
        struct pollfd p = {.fd = s->status_fd, .events = POLLIN};
        int n = poll(&p, 1, pyspy_ptrace_lost() ? 5 : 50);
        if (n > 0)
            return read_all(s->status_fd, &s->status, sizeof s->status);
        if (n < 0 && errno != EINTR)
            return false;
        if ((interrupt && *interrupt != seen) || now_ms() >= until)
            return false;
    }
}

bool pyspy_spawn_finish(pyspy_spawned *s, int *status, bool show_output,
                        const volatile sig_atomic_t *interrupt) {
    bool ended = pyspy_spawn_ended(s, NULL), gave_up = false;
    if (s->ctl_fd >= 0) {
        /* Still running: the reaper kills it (no dangling processes, as
         * py-spy does). */
        if (!ended && s->status_fd >= 0 && s->pid > 0)
            write_all(s->ctl_fd, "k", 1);
        close(s->ctl_fd);
        s->ctl_fd = -1;
    }
    if (!ended && s->status_fd >= 0 && s->pid > 0) {
        /* It may have ended on its own just before: only our SIGKILL
         * counts as "still running". */
        if (wait_status(s, FINISH_WAIT_MS, interrupt))
            ended = !(WIFSIGNALED(s->status) && WTERMSIG(s->status) == SIGKILL);
        else
            gave_up = true;
    }
    if (s->status_fd >= 0)
        close(s->status_fd);
    s->status_fd = -1;
    if (s->reaper_pid > 0) {
        /* Its wait for the program is interruptible: it ends, and the
         * program goes to init, which reaps it once nothing traces it
         * (at the latest when we exit). */
        if (gave_up) {
            kill(s->reaper_pid, SIGKILL);
            fprintf(stderr,
                    "pyspy: program %d did not end within %d s of being "
                    "killed; not waiting for it\n",
                    s->pid, FINISH_WAIT_MS / 1000);
        }
        while (waitpid(s->reaper_pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (ended && status)
        *status = s->status;
    /* Still running when we stopped counts as success, as in py-spy. */
    bool failed =
        ended && !(WIFEXITED(s->status) && WEXITSTATUS(s->status) == 0);
    if (s->capture_fd >= 0) {
        if (show_output || failed)
            dump_output(s->capture_fd);
        close(s->capture_fd);
        s->capture_fd = -1;
    }
    s->pid = 0;
    s->reaper_pid = 0;
    return ended;
}

char *pyspy_program_text(const char *prefix, char *const *argv, int argc) {
    size_t len = strlen(prefix) + 1;
    for (int i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    char *s = malloc(len);
    if (!s)
        return NULL;
    size_t o = (size_t)snprintf(s, len, "%s", prefix);
    for (int i = 0; i < argc; i++)
        o += (size_t)snprintf(s + o, len - o, "%s%s", o ? " " : "", argv[i]);
    return s;
}
