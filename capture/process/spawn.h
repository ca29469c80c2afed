/* Running the program given after `--` for record and top. */
#ifndef PYSPY_CAPTURE_SPAWN_H
#define PYSPY_CAPTURE_SPAWN_H

#include <pyspy.h>
#include <signal.h>

typedef struct pyspy_spawned {
    int pid;        /* the program */
    int reaper_pid; /* its parent, which reports its exit status */
    int status_fd;  /* reads the program's wait status from the reaper */
    int ctl_fd;     /* a byte written here makes the reaper kill it */
    int capture_fd; /* unlinked temp file holding its output, -1 if none */
    bool ended;     /* its status has been read */
    int status;
} pyspy_spawned;

/* Starts argv[0] (searched in PATH). Returns once the exec has happened,
 * or -1 with "Failed to create process 'x': reason". With capture, stdin
 * is /dev/null and stdout/stderr go to a temp file; otherwise the program
 * shares our terminal.
 *
 * The program is a grandchild: ptrace (Lock mode) would otherwise take
 * its exit status from us, so a small reaper process waits for it and
 * passes the status on. */
int pyspy_spawn(char **argv, bool capture, pyspy_spawned *out,
                pyspy_error *err);

/* Whether the program has ended; fills *status when it has. Never
 * blocks. */
bool pyspy_spawn_ended(pyspy_spawned *s, int *status);

/* Ends it: kills it if still running (no dangling processes, as py-spy
 * does), collects its status, and with capture prints its output on
 * stderr when it failed by itself or show_output. Returns whether the
 * program ended by itself (then *status is its wait status). Never
 * hangs: it gives up on a program that does not end within 10 s of its
 * SIGKILL, or as soon as *interrupt (a signal counter, may be NULL)
 * changes. */
bool pyspy_spawn_finish(pyspy_spawned *s, int *status, bool show_output,
                        const volatile sig_atomic_t *interrupt);

/* "exited with status 3", "was killed by signal 9 (Killed)". */
void pyspy_describe_status(int status, char *buf, size_t len);

/* prefix followed by the program's arguments, one space between words
 * (none before the first when prefix is empty); malloc'd, NULL on OOM. */
char *pyspy_program_text(const char *prefix, char *const *argv, int argc);

#endif
