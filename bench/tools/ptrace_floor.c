/* What any Lock-mode sampler must pay on this machine, whatever it does
 * between: per tick, a timed sleep and wake-up, and (with --ptrace) one
 * PTRACE_SEIZE + PTRACE_INTERRUPT + waitpid + PTRACE_DETACH of the
 * target's main thread. Prints CPU microseconds per tick. Built and run
 * by bench/record against the same target as the profilers.
 *
 *   ptrace_floor PID RATE TICKS [--ptrace]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

static double cpu_seconds(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)r.ru_utime.tv_sec + (double)r.ru_stime.tv_sec +
           (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: ptrace_floor PID RATE TICKS [--ptrace]\n");
        return 2;
    }
    int pid = atoi(argv[1]);
    long rate = atol(argv[2]), ticks = atol(argv[3]);
    int use_ptrace = argc > 4 && strcmp(argv[4], "--ptrace") == 0;
    if (pid <= 0 || rate <= 0 || ticks <= 0)
        return 2;
    long period = 1000000000L / rate;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    double t0 = cpu_seconds();
    for (long i = 0; i < ticks; i++) {
        next.tv_nsec += period;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        if (!use_ptrace)
            continue;
        if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) != 0) {
            fprintf(stderr, "ptrace_floor: seize %d: %s\n", pid,
                    strerror(errno));
            return 1;
        }
        ptrace(PTRACE_INTERRUPT, pid, NULL, NULL);
        int st;
        while (waitpid(pid, &st, __WALL) < 0 && errno == EINTR)
            ;
        ptrace(PTRACE_DETACH, pid, NULL, NULL);
    }
    printf("%.2f\n", (cpu_seconds() - t0) / (double)ticks * 1e6);
    return 0;
}
