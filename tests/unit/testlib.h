/* Minimal unit-test harness: each test file defines TEST(name) functions
 * and ends with TEST_MAIN(list...). Output is TAP-like ("ok - name" /
 * "not ok - name") followed by "N passed, N failed", which
 * tools/run-tests adds up. */
#ifndef PYSPY_TESTLIB_H
#define PYSPY_TESTLIB_H
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>

static int tl_failed_checks;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, \
                    #cond);                                                    \
            tl_failed_checks++;                                                \
        }                                                                      \
    } while (0)

#define CHECK_STR(a, b)                                                        \
    do {                                                                       \
        const char *tl_a = (a), *tl_b = (b);                                   \
        if (!tl_a || !tl_b || strcmp(tl_a, tl_b) != 0) {                       \
            fprintf(stderr, "  %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
                    tl_a ? tl_a : "(null)", tl_b ? tl_b : "(null)");           \
            tl_failed_checks++;                                                \
        }                                                                      \
    } while (0)

/* Kills and reaps a child that fork gave the test. Any other pid is
 * refused: a failed fork leaves -1, and kill(-1, SIGKILL) would kill
 * every process the user owns (kill(0, ...) the test's own group). */
static inline void tl_kill_child(pid_t pid) {
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

#define TEST(name) static void name(void)

typedef struct {
    const char *name;
    void (*fn)(void);
} tl_case;

#define T(name)                                                                \
    { #name, name }

#define TEST_MAIN(...)                                                         \
    int main(void) {                                                           \
        tl_case cases[] = {__VA_ARGS__};                                       \
        int passed = 0, failed = 0;                                            \
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {          \
            int before = tl_failed_checks;                                     \
            cases[i].fn();                                                     \
            if (tl_failed_checks == before) {                                  \
                printf("ok - %s\n", cases[i].name);                            \
                passed++;                                                      \
            } else {                                                           \
                printf("not ok - %s\n", cases[i].name);                        \
                failed++;                                                      \
            }                                                                  \
        }                                                                      \
        printf("%d passed, %d failed\n", passed, failed);                      \
        return failed ? 1 : 0;                                                 \
    }
#endif
