/* Running the program given after `--` for record and top. */
#ifndef PYSPY_ANALYZE_SPAWN_H
#define PYSPY_ANALYZE_SPAWN_H

#include <pyspy.h>

typedef struct pyspy_spawned {
    int pid;
    int capture_fd; /* unlinked temp file holding its output, -1 if none */
} pyspy_spawned;

/* Forks and execs argv[0] (searched in PATH). Returns once the exec has
 * happened, or -1 with "Failed to create process 'x': reason". With
 * capture, stdin is /dev/null and stdout/stderr go to a temp file;
 * otherwise the program shares our terminal. */
int pyspy_spawn(char **argv, bool capture, pyspy_spawned *out,
                pyspy_error *err);

/* Ends it: kills it if still running (no dangling processes, as py-spy
 * does), reaps it unless already reaped (status_known), and with
 * capture prints its output on stderr when it failed or show_output. */
void pyspy_spawn_finish(pyspy_spawned *s, bool status_known, int *status,
                        bool show_output);

/* "exited with status 3", "was killed by signal 9 (Killed)". */
void pyspy_describe_status(int status, char *buf, size_t len);

#endif
