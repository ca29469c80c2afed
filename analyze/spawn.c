/* fork/exec of the profiled program; a close-on-exec pipe tells the
 * parent whether the exec happened (and errno if it did not). */
#include "analyze/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

int pyspy_spawn(char **argv, bool capture, pyspy_spawned *out,
                pyspy_error *err) {
    out->pid = 0;
    out->capture_fd = -1;
    if (!argv || !argv[0])
        return pyspy_error_set(err, PYSPY_E_USAGE, "no program to run");
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC))
        return pyspy_error_set(err, PYSPY_E_IO, "pipe: %s", strerror(errno));
    if (capture && (out->capture_fd = make_capture_file()) < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return pyspy_error_set(err, PYSPY_E_IO,
                               "cannot create a file for the program's "
                               "output: %s",
                               strerror(errno));
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pipefd[0]);
        close(pipefd[1]);
        return pyspy_error_set(err, PYSPY_E_GENERIC,
                               "Failed to create process '%s': %s", argv[0],
                               strerror(e));
    }
    if (pid == 0) {
        close(pipefd[0]);
        signal(SIGINT, SIG_DFL);
        if (capture) {
            int null = open("/dev/null", O_RDONLY);
            if (null >= 0)
                dup2(null, 0);
            dup2(out->capture_fd, 1);
            dup2(out->capture_fd, 2);
        }
        execvp(argv[0], argv);
        int e = errno;
        ssize_t w = write(pipefd[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    close(pipefd[1]);
    int child_errno = 0;
    ssize_t n;
    do
        n = read(pipefd[0], &child_errno, sizeof child_errno);
    while (n < 0 && errno == EINTR);
    close(pipefd[0]);
    out->pid = pid;
    if (n == (ssize_t)sizeof child_errno) {
        waitpid(pid, NULL, 0);
        out->pid = 0;
        if (out->capture_fd >= 0)
            close(out->capture_fd);
        out->capture_fd = -1;
        return pyspy_error_set(err, PYSPY_E_GENERIC,
                               "Failed to create process '%s': %s", argv[0],
                               strerror(child_errno));
    }
    return 0;
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

void pyspy_spawn_finish(pyspy_spawned *s, bool status_known, int *status,
                        bool show_output) {
    bool ended_itself = status_known;
    if (s->pid > 0 && !status_known) {
        int st = 0;
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        ended_itself = r == s->pid;
        if (r == 0) {
            kill(s->pid, SIGKILL);
            r = waitpid(s->pid, &st, 0);
        }
        if (r == s->pid && status)
            *status = st;
    }
    /* Still running when we stopped counts as success, as in py-spy. */
    bool failed = ended_itself && status &&
                  !(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
    if (s->capture_fd >= 0) {
        if (show_output || failed)
            dump_output(s->capture_fd);
        close(s->capture_fd);
        s->capture_fd = -1;
    }
    s->pid = 0;
}
