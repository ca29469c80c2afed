/* The kept-open view of a process's threads: the count from one fstat,
 * listings that follow threads coming and going, states read in place,
 * and the quick listing that trusts an unchanged count. */
#include "capture/process/proc.h"
#include "testlib.h"

#include <pthread.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go_home;
static int tids[2];

static void *sleeper(void *arg) {
    int *slot = arg;
    pthread_mutex_lock(&mu);
    *slot = (int)syscall(SYS_gettid);
    pthread_cond_broadcast(&cv);
    while (!go_home)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static bool listed(const int *v, size_t n, int tid) {
    for (size_t i = 0; i < n; i++)
        if (v[i] == tid)
            return true;
    return false;
}

TEST(follows_threads_coming_and_going) {
    pyspy_proc_tasks t;
    pyspy_proc_tasks_init(&t, getpid(), false);
    long before = pyspy_proc_tasks_count(&t);
    CHECK(before >= 1);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, sleeper, &tids[i]);
    pthread_mutex_lock(&mu);
    while (!tids[0] || !tids[1])
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    CHECK(pyspy_proc_tasks_count(&t) == before + 2);
    int *v = NULL;
    size_t n = 0;
    pyspy_error err = {0};
    CHECK(pyspy_proc_tasks_list(&t, &v, &n, &err) == 0);
    CHECK((long)n == before + 2);
    CHECK(listed(v, n, getpid()) && listed(v, n, tids[0]) &&
          listed(v, n, tids[1]));
    free(v);
    pyspy_thread st = {0};
    /* until the sleeper is inside its wait (it may still be on its way) */
    for (int i = 0; i < 200; i++) {
        if (pyspy_proc_tasks_state(&t, tids[0], &st) == 0 && st.state == 'S')
            break;
        usleep(10000);
    }
    CHECK(pyspy_proc_tasks_state(&t, tids[0], &st) == 0);
    CHECK(st.tid == tids[0] && st.state == 'S');
    CHECK(st.syscall == -2); /* not asked for */
    /* twice through the same open file */
    CHECK(pyspy_proc_tasks_state(&t, tids[0], &st) == 0 && st.state == 'S');
    CHECK(pyspy_proc_tasks_state(&t, getpid(), &st) == 0 && st.state == 'R');
    CHECK(t.leader_threads == before + 2); /* from the leader's stat */
    /* unchanged count: the quick listing is the last one */
    CHECK(pyspy_proc_tasks_list_quick(&t, &v, &n, &err) == 0);
    CHECK((long)n == before + 2 && listed(v, n, tids[1]));
    free(v);
    pthread_mutex_lock(&mu);
    go_home = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    /* A joined thread's task can linger a moment in /proc: join returns
     * when the kernel clears its tid, before the task is released. */
    for (int i = 0; i < 200 && pyspy_proc_tasks_count(&t) != before; i++)
        usleep(10000);
    CHECK(pyspy_proc_tasks_count(&t) == before);
    /* the gone thread's kept file no longer answers */
    CHECK(pyspy_proc_tasks_state(&t, tids[0], &st) != 0);
    CHECK(pyspy_proc_tasks_list_quick(&t, &v, &n, &err) == 0);
    CHECK((long)n == before && !listed(v, n, tids[0]));
    free(v);
    CHECK(t.n <= (size_t)before); /* files of gone threads closed */
    pyspy_proc_tasks_close(&t);
}

TEST(syscalls_when_asked) {
    pyspy_thread st = {0};
    CHECK(pyspy_proc_thread_state(getpid(), getpid(), &st) == 0);
    /* reading its own file, the thread sits in that read */
    CHECK(st.state == 'R' && st.syscall >= 0);
}

/* A sampler that stops asking for syscalls closes the files it kept. */
TEST(dropping_syscalls_closes_their_files) {
    pyspy_proc_tasks t;
    pyspy_proc_tasks_init(&t, getpid(), true);
    pyspy_thread st = {0};
    CHECK(pyspy_proc_tasks_state(&t, getpid(), &st) == 0);
    CHECK(st.syscall >= 0);
    CHECK(t.n == 1 && t.v[0].syscall_fd >= 0);
    int fd = t.v[0].syscall_fd;
    pyspy_proc_tasks_drop_syscalls(&t);
    CHECK(t.v[0].syscall_fd == -1);
    CHECK(fcntl(fd, F_GETFD) == -1); /* closed */
    CHECK(pyspy_proc_tasks_state(&t, getpid(), &st) == 0);
    CHECK(st.state == 'R' && st.syscall == -2);
    pyspy_proc_tasks_close(&t);
}

TEST(gone_process) {
    pyspy_proc_tasks t;
    pyspy_proc_tasks_init(&t, 1 << 30, false);
    int *v = NULL;
    size_t n = 0;
    pyspy_error err = {0};
    CHECK(pyspy_proc_tasks_list(&t, &v, &n, &err) != 0);
    CHECK(err.code == PYSPY_E_NOPROC);
    CHECK(pyspy_proc_tasks_count(&t) == -1);
    pyspy_proc_tasks_close(&t);
}

/* Many threads looked up in an order unlike the listing's, some gone in
 * between: each answer is for the thread asked about (the files are kept
 * sorted by tid and searched). */
#define MANY 48
static int many_tids[MANY];

TEST(many_threads_in_any_order) {
    pyspy_proc_tasks t;
    pyspy_proc_tasks_init(&t, getpid(), false);
    pthread_t th[MANY];
    go_home = 0;
    for (int i = 0; i < MANY; i++)
        pthread_create(&th[i], NULL, sleeper, &many_tids[i]);
    pthread_mutex_lock(&mu);
    for (int i = 0; i < MANY; i++)
        while (!many_tids[i])
            pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    for (int round = 0; round < 2; round++)
        for (int i = MANY - 1; i >= 0; i -= (round ? 3 : 1)) {
            pyspy_thread st = {0};
            CHECK(pyspy_proc_tasks_state(&t, many_tids[i], &st) == 0);
            CHECK(st.tid == many_tids[i] && st.state != 0);
        }
    pyspy_thread st = {0};
    CHECK(pyspy_proc_tasks_state(&t, getpid(), &st) == 0 &&
          st.tid == getpid() && st.state == 'R');
    pthread_mutex_lock(&mu);
    go_home = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < MANY; i++)
        pthread_join(th[i], NULL);
    /* Gone threads: a listing drops their files, the rest still answer. */
    int *v = NULL;
    size_t n = 0;
    pyspy_error err = {0};
    CHECK(pyspy_proc_tasks_list(&t, &v, &n, &err) == 0);
    for (size_t i = 0; i < n; i++) {
        pyspy_thread s2 = {0};
        CHECK(pyspy_proc_tasks_state(&t, v[i], &s2) == 0 && s2.tid == v[i]);
    }
    CHECK(pyspy_proc_tasks_state(&t, many_tids[0], &st) != 0);
    free(v);
    pyspy_proc_tasks_close(&t);
}

TEST_MAIN(T(follows_threads_coming_and_going), T(syscalls_when_asked),
          T(dropping_syscalls_closes_their_files), T(many_threads_in_any_order),
          T(gone_process))
