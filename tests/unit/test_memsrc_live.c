/* The live memory source on real processes: a forked copy of this test
 * (known variables at known addresses), and Python interpreters (the
 * _PyRuntime symbol through the module tables, threads stopped and let
 * go). */
#include "analyze/cpython/python.h"
#include "capture/tool/run.h"
#include "capture/elf/symbols.h"
#include "capture/memsrc/ram.h"
#include "capture/process/proc.h"
#include "capture/snapshot/snapshot.h"
#include "testlib.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static char secret[64] = "before fork";

static int fork_child(void) {
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        snprintf(secret, sizeof secret, "written by the child %d", getpid());
        if (write(fds[1], "x", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    char c;
    if (read(fds[0], &c, 1) != 1)
        c = 0;
    close(fds[0]);
    return pid;
}

/* Until the child sleeps in pause(): it has written to the pipe before,
 * and on a loaded machine may still be running when the parent reads. */
static void wait_until_asleep(int pid) {
    for (int i = 0; i < 2000; i++) {
        pyspy_thread *ts = NULL;
        size_t n = 0;
        pyspy_error e = {0};
        bool asleep = pyspy_proc_read_threads(pid, &ts, &n, &e) == 0 &&
                      n == 1 && ts[0].state == 'S';
        free(ts);
        if (asleep)
            return;
        usleep(5000);
    }
}

static void kill_child(int pid) {
    tl_kill_child(pid);
}

/* The first character of the state field of every thread. */
static bool any_thread_stopped(int pid) {
    pyspy_thread *ts;
    size_t n;
    pyspy_error e = {0};
    if (pyspy_proc_read_threads(pid, &ts, &n, &e) != 0)
        return false;
    bool stopped = false;
    for (size_t i = 0; i < n; i++)
        if (ts[i].state == 't' || ts[i].state == 'T')
            stopped = true;
    free(ts);
    return stopped;
}

TEST(reads_a_variable_of_a_child) {
    int pid = fork_child();
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    wait_until_asleep(pid);
    pyspy_memsrc *src = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_memsrc_open_pid(pid, PYSPY_LOCK, &src, &err) == 0);
    if (!src) {
        fprintf(stderr, "  %s\n", err.msg);
        kill_child(pid);
        return;
    }
    char want[64], got[64];
    snprintf(want, sizeof want, "written by the child %d", pid);
    CHECK(pyspy_memsrc_read(src, (uint64_t)(uintptr_t)secret, got, sizeof got,
                            &err) == 0);
    CHECK_STR(got, want);
    CHECK(pyspy_memsrc_read_cstr(src, (uint64_t)(uintptr_t)secret, got,
                                 sizeof got, &err) == 0);
    CHECK_STR(got, want);
    const pyspy_region *r =
        pyspy_memsrc_region_at(src, (uint64_t)(uintptr_t)secret);
    CHECK(r && (r->perms & PYSPY_PERM_W));
    /* the zero page is never mapped */
    CHECK(pyspy_memsrc_read(src, 16, got, 8, &err) == -1);
    CHECK(err.code == PYSPY_E_UNREADABLE);
    CHECK(src->nthreads == 1 && src->threads[0].tid == pid);
    CHECK(src->proc.pid == pid && src->proc.ppid == getpid());
    CHECK(src->auxv && src->auxv_len > 0);
    /* suspend stops it, with registers; resume lets it go */
    CHECK(src->ops->suspend(src, &err) == 0);
    CHECK(pyspy_memsrc_is_stopped(src));
    CHECK(src->nthreads == 1 && src->threads[0].has_regs);
    CHECK(src->threads[0].state == 'S');
    CHECK(src->threads[0].regs[PYSPY_REG_RIP] != 0);
    CHECK(any_thread_stopped(pid));
    src->ops->resume(src);
    CHECK(!any_thread_stopped(pid));
    CHECK(src->ops->refresh(src, &err) == 0);
    pyspy_memsrc_close(src);
    kill_child(pid);
}

#define BIG (64u << 20)

/* A child with a 64 MiB anonymous mapping of which one page was written;
 * *big receives its address. */
static int fork_big_child(uint64_t *big) {
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        snprintf(secret, sizeof secret, "written by the child %d", getpid());
        char *m = mmap(NULL, BIG, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            _exit(1);
        strcpy(m + BIG / 2, "marker page");
        uint64_t a = (uint64_t)(uintptr_t)m;
        if (write(fds[1], &a, sizeof a) != sizeof a)
            _exit(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    if (read(fds[0], big, sizeof *big) != sizeof *big)
        *big = 0;
    close(fds[0]);
    return pid;
}

TEST(ram_copy_outlives_the_process) {
    uint64_t big = 0;
    int pid = fork_big_child(&big);
    CHECK(pid > 0 && big != 0);
    if (pid <= 0)
        return;
    pyspy_memsrc *src = NULL, *view = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_memsrc_open_pid(pid, PYSPY_LOCK, &src, &err) == 0);
    if (!src) {
        kill_child(pid);
        return;
    }
    CHECK(src->ops->suspend(src, &err) == 0);
    CHECK(pyspy_memsrc_view_open(src, PYSPY_FILTER_DEFAULT, &view, &err) == 0);
    if (!view) {
        pyspy_memsrc_close(src);
        kill_child(pid);
        return;
    }
    /* untouched pages cost nothing */
    CHECK(pyspy_memsrc_view_bytes(view) < BIG / 2);
    pyspy_ram_pool pool;
    CHECK(pyspy_ram_pool_init(&pool, 1u << 20, &err) == 0);
    CHECK(pyspy_memsrc_view_copy(view, &pool, &err) == 0);
    src->ops->resume(src);
    kill_child(pid); /* from now on only the copy answers */
    char got[64], want[64];
    snprintf(want, sizeof want, "written by the child %d", pid);
    CHECK(pyspy_memsrc_read(view, (uint64_t)(uintptr_t)secret, got, sizeof got,
                            &err) == 0);
    CHECK_STR(got, want);
    CHECK(pyspy_memsrc_read(view, big + BIG / 2, got, 12, &err) == 0);
    CHECK_STR(got, "marker page");
    static uint8_t page[8192], zeros[8192];
    CHECK(pyspy_memsrc_read(view, big + BIG / 2 - 4096, page, sizeof page,
                            &err) == 0);
    CHECK(memcmp(page, zeros, 4096) == 0);
    CHECK(memcmp(page + 4096, "marker page", 12) == 0);
    /* code pages come from the file: the same bytes as ours */
    CHECK(pyspy_memsrc_read(view, (uint64_t)(uintptr_t)fork_big_child, page, 64,
                            &err) == 0);
    CHECK(memcmp(page, (void *)fork_big_child, 64) == 0);
    pyspy_memsrc_close(view);
    pyspy_memsrc_close(src);
}

/* The region holding addr in the view. */
static const pyspy_region *view_region(pyspy_memsrc *v, const void *addr) {
    return pyspy_memsrc_region_at(v, (uint64_t)(uintptr_t)addr);
}

TEST(coredump_filter_selects_regions) {
    int pid = fork_child();
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    pyspy_memsrc *src = NULL, *v = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_memsrc_open_pid(pid, PYSPY_LOCK, &src, &err) == 0);
    if (!src) {
        kill_child(pid);
        return;
    }
    CHECK(src->ops->suspend(src, &err) == 0);
    /* ELF headers only: our data is absent, the header page present */
    CHECK(pyspy_memsrc_view_open(src, PYSPY_FILTER_ELF_HEADERS, &v, &err) == 0);
    /* (absent file-backed regions may still be read from this host's
     * copy of the file, so presence is checked, not readability) */
    const pyspy_region *r = view_region(v, secret);
    CHECK(r && !r->present);
    char b[8];
    CHECK(pyspy_memsrc_read(v, (uint64_t)(uintptr_t)&b, b, 8, &err) == -1);
    CHECK(err.code == PYSPY_E_UNREADABLE); /* the stack: anonymous */
    const pyspy_module *exe = NULL;
    for (size_t i = 0; i < src->nmodules; i++)
        if (strstr(src->modules[i].path, "test_memsrc_live"))
            exe = &src->modules[i];
    CHECK(exe != NULL);
    if (exe) {
        uint8_t magic[4];
        CHECK(pyspy_memsrc_read(v, exe->start, magic, 4, &err) == 0);
        CHECK(memcmp(magic, ELFMAG, 4) == 0);
        r = pyspy_memsrc_region_at(v, exe->start);
        CHECK(r && r->present && r->end == exe->start + 4096);
        r = pyspy_memsrc_region_at(v, exe->start + 4096);
        CHECK(r == NULL || !r->present);
    }
    pyspy_memsrc_close(v);
    /* anonymous private only: written data yes, code no */
    CHECK(pyspy_memsrc_view_open(src, PYSPY_FILTER_ANON_PRIVATE, &v, &err) ==
          0);
    r = view_region(v, secret);
    CHECK(r && r->present);
    r = view_region(v, (void *)fork_child);
    CHECK(r && !r->present);
    pyspy_memsrc_close(v);
    src->ops->resume(src);
    pyspy_memsrc_close(src);
    kill_child(pid);
}

/* A process's files are where it sees them, /proc/PID/root, also for a
 * copy of its memory, which is no live source itself. */
TEST(ram_view_finds_files_where_the_process_does) {
    int pid = fork_child();
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    pyspy_memsrc *src = NULL, *v = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_memsrc_open_pid(pid, PYSPY_NONBLOCKING, &src, &err) == 0);
    char root[64];
    snprintf(root, sizeof root, "/proc/%d/root", pid);
    if (src) {
        CHECK_STR(pyspy_memsrc_file_root(src), root);
        CHECK(pyspy_memsrc_view_open(src, PYSPY_FILTER_DEFAULT, &v, &err) == 0);
    }
    if (v) {
        CHECK(strcmp(v->ops->kind, src->ops->kind) != 0);
        CHECK_STR(pyspy_memsrc_file_root(v), root);
        CHECK(!pyspy_memsrc_is_stopped(v));
    }
    pyspy_memsrc_close(v);
    pyspy_memsrc_close(src);
    kill_child(pid);
}

TEST(nonexistent_pid) {
    pyspy_memsrc *src = NULL;
    pyspy_error err = {0};
    int pid = fork();
    if (pid == 0)
        _exit(0);
    CHECK(pid > 0);
    if (pid < 0)
        return;
    waitpid(pid, NULL, 0);
    CHECK(pyspy_memsrc_open_pid(pid, PYSPY_LOCK, &src, &err) == -1);
    CHECK(err.code == PYSPY_E_NOPROC);
    CHECK(src == NULL);
}

static const char *py_script =
    "import threading, time, sys\n"
    "def spin():\n"
    "    while True: sum(range(1000))\n"
    "for i in range(2): threading.Thread(target=spin, daemon=True).start()\n"
    "threading.Thread(target=time.sleep, args=(100,), daemon=True).start()\n"
    "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
    "time.sleep(100)\n";

static int spawn_python(const char *exe) {
    if (access(exe, X_OK) != 0)
        return -1;
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execl(exe, exe, "-c", py_script, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[8] = {0};
    if (read(fds[0], buf, 6) != 6) {
        close(fds[0]);
        kill_child(pid);
        return -1;
    }
    close(fds[0]);
    return pid;
}

static void check_python(const char *exe, const char *hint) {
    int pid = spawn_python(exe);
    if (pid < 0) {
        fprintf(stderr, "  (skipped: %s not runnable)\n", exe);
        return;
    }
    pyspy_memsrc *src = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_memsrc_open_pid(pid, PYSPY_LOCK, &src, &err) == 0);
    if (!src) {
        fprintf(stderr, "  %s\n", err.msg);
        kill_child(pid);
        return;
    }
    uint64_t size = 0;
    uint64_t rt = pyspy_memsrc_symbol(src, NULL, "_PyRuntime", &size);
    CHECK(rt != 0 && size > 64);
    CHECK(pyspy_memsrc_symbol(src, hint, "_PyRuntime", NULL) == rt);
    const pyspy_region *r = pyspy_memsrc_region_at(src, rt);
    CHECK(r && r->path && strstr(r->path, hint) && r->build_id_len == 20);
    /* 3.11 _PyRuntimeState starts with _initialized, preinitializing,
     * preinitialized, core_initialized, initialized. */
    int flags[5] = {0};
    CHECK(pyspy_memsrc_read(src, rt, flags, sizeof flags, &err) == 0);
    CHECK(flags[0] == 1 && flags[1] == 0 && flags[2] == 1 && flags[3] == 1 &&
          flags[4] == 1);
    CHECK(src->nthreads == 4);
    for (int round = 0; round < 3; round++) {
        CHECK(src->ops->refresh(src, &err) == 0);
        CHECK(src->ops->suspend(src, &err) == 0);
        CHECK(src->nthreads == 4);
        int running = 0;
        for (size_t i = 0; i < src->nthreads; i++) {
            CHECK(src->threads[i].has_regs && src->threads[i].has_fpregs);
            CHECK(strchr("RSD", src->threads[i].state) != NULL);
            running += src->threads[i].state == 'R';
        }
        (void)running;
        src->ops->resume(src);
        CHECK(!any_thread_stopped(pid));
    }
    pyspy_memsrc_close(src);
    CHECK(!any_thread_stopped(pid));
    kill_child(pid);
}

TEST(debian_python_runtime_symbol) {
    check_python("/usr/bin/python3", "python3");
}

TEST(pyenv_libpython_runtime_symbol) {
    check_python("/root/.pyenv/versions/3.11.7/bin/python3.11",
                 "libpython3.11.so");
}

static pyspy_module *module_named(const pyspy_memsrc *src, const char *part) {
    for (size_t i = 0; i < src->nmodules; i++)
        if (src->modules[i].path && strstr(src->modules[i].path, part))
            return &src->modules[i];
    return NULL;
}

/* A live source reads a library's symbol table when something first asks
 * for it: finding the interpreter leaves libc's unread. */
TEST(symbols_are_read_on_first_use) {
    int pid = spawn_python("/root/.pyenv/versions/3.11.7/bin/python3.11");
    if (pid < 0) {
        fprintf(stderr, "  (skipped: pyenv's 3.11.7 not runnable)\n");
        return;
    }
    pyspy_memsrc *src = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_memsrc_open_pid(pid, PYSPY_NONBLOCKING, &src, &err) == 0);
    if (!src) {
        kill_child(pid);
        return;
    }
    pyspy_module *libc = module_named(src, "/libc.so");
    CHECK(libc && pyspy_module_symbols_pending(libc) && !libc->symbols);
    CHECK(libc && libc->build_id_len == 20 && libc->load_bias != 0);
    pyspy_python py;
    CHECK(pyspy_python_find(src, &py, &err) == 0);
    CHECK(py.module && strstr(py.module->path, "libpython3.11.so"));
    /* Found through the exported table; the big .symtab waits. */
    pyspy_module *lp = py.module ? module_named(src, py.module->path) : NULL;
    CHECK(lp && pyspy_module_symbols_partial(lp) &&
          pyspy_module_symbols_pending(lp) && lp->nsymbols > 1000);
    if (lp) {
        size_t exported = lp->nsymbols;
        /* A static function is only in .symtab: asking reads it. */
        CHECK(pyspy_module_find_dynamic(lp, "list_dealloc") == NULL);
        CHECK(pyspy_module_find_symbol(lp, "list_dealloc") != NULL);
        CHECK(!pyspy_module_symbols_pending(lp) &&
              !pyspy_module_symbols_partial(lp) && lp->nsymbols > exported);
        CHECK(pyspy_module_find_symbol(lp, "_PyRuntime") != NULL);
    }
    CHECK(libc && pyspy_module_symbols_pending(libc) && !libc->symbols);
    if (libc) {
        const pyspy_symbol *s = pyspy_module_find_symbol(libc, "malloc");
        CHECK(s && !pyspy_module_symbols_pending(libc) && libc->nsymbols > 100);
        CHECK(s && s->value + libc->load_bias >= libc->start &&
              s->value + libc->load_bias < libc->end);
        CHECK(!pyspy_module_find_symbol(libc, "no_such_symbol_here"));
    }
    pyspy_python_free(&py);
    pyspy_memsrc_close(src);
    kill_child(pid);
}

/* A deleted executable is read through /proc/PID/map_files, as a
 * container's files are. */
TEST(symbols_of_a_deleted_executable) {
    char exe[] = "/tmp/pyspy-test-python-XXXXXX";
    int out = mkstemp(exe);
    int in = open("/usr/bin/python3.11", O_RDONLY);
    if (out < 0 || in < 0) {
        fprintf(stderr, "  (skipped: no /usr/bin/python3.11)\n");
        if (out >= 0) {
            close(out);
            unlink(exe);
        }
        return;
    }
    char buf[1 << 16];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        CHECK(write(out, buf, (size_t)n) == n);
    close(in);
    fchmod(out, 0700);
    close(out);
    int pid = spawn_python(exe);
    unlink(exe);
    CHECK(pid > 0);
    if (pid < 0)
        return;
    pyspy_memsrc *src = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_memsrc_open_pid(pid, PYSPY_NONBLOCKING, &src, &err) == 0);
    if (src) {
        uint64_t rt = pyspy_memsrc_symbol(src, "(deleted)", "_PyRuntime", NULL);
        CHECK(rt != 0);
        int flags[5] = {0};
        CHECK(pyspy_memsrc_read(src, rt, flags, sizeof flags, &err) == 0);
        CHECK(flags[0] == 1 && flags[4] == 1);
        pyspy_memsrc_close(src);
    }
    kill_child(pid);
}

TEST(nonblocking_never_stops) {
    int pid = spawn_python("/usr/bin/python3");
    if (pid < 0)
        return;
    pyspy_memsrc *src = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_memsrc_open_pid(pid, PYSPY_NONBLOCKING, &src, &err) == 0);
    if (src) {
        CHECK(src->ops->suspend(src, &err) == 0);
        CHECK(!any_thread_stopped(pid));
        CHECK(!src->threads[0].has_regs);
        src->ops->resume(src);
        pyspy_memsrc_close(src);
    }
    kill_child(pid);
}

TEST(already_locked_stays_stopped) {
    int pid = spawn_python("/usr/bin/python3");
    if (pid < 0)
        return;
    kill(pid, SIGSTOP);
    int st;
    waitpid(pid, &st, WUNTRACED);
    pyspy_memsrc *src = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_memsrc_open_pid(pid, PYSPY_ALREADY_LOCKED, &src, &err) == 0);
    if (src) {
        CHECK(src->ops->suspend(src, &err) == 0);
        CHECK(src->nthreads == 4);
        for (size_t i = 0; i < src->nthreads; i++) {
            CHECK(src->threads[i].state == 'T');
            CHECK(src->threads[i].has_regs);
        }
        src->ops->resume(src);
        pyspy_memsrc_close(src);
    }
    usleep(100000);
    pyspy_thread *ts;
    size_t n;
    CHECK(pyspy_proc_read_threads(pid, &ts, &n, &err) == 0);
    for (size_t i = 0; i < n; i++)
        CHECK(ts[i].state == 'T');
    free(ts);
    kill(pid, SIGCONT);
    kill_child(pid);
}

/* The kernel state written to a snapshot is the one from before the
 * stop (every thread is 't' during it): the main thread sleeps in
 * clock_nanosleep, the workers run. */
/* Until the main thread of a spawn_python child sleeps in time.sleep:
 * after printing "ready" it may still wait for the GIL the spinning
 * threads hold (a futex wait) on a loaded machine. */
static bool main_thread_in_sleep(int pid) {
    for (int i = 0; i < 2000; i++) {
        pyspy_thread t = {0};
        if (pyspy_proc_thread_state(pid, pid, &t) == 0 && t.state == 'S' &&
            (t.syscall == SYS_clock_nanosleep || t.syscall == SYS_select))
            return true;
        usleep(5000);
    }
    return false;
}

TEST(snapshot_keeps_state_from_before_the_stop) {
    int pid = spawn_python("/usr/bin/python3");
    if (pid < 0)
        return;
    CHECK(main_thread_in_sleep(pid));
    char path[] = "/tmp/pyspy-test-state-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    pyspy_capture_config cfg = pyspy_capture_config_default();
    cfg.hide_progress = true;
    pyspy_capture_result res;
    pyspy_error err = {0};
    CHECK(pyspy_capture_pid(pid, &cfg, path, NULL, &res, &err) == 0);
    CHECK(res.nthreads == 4 && res.pid == pid && res.file_bytes > 0);
    CHECK(!any_thread_stopped(pid));
    kill_child(pid);
    pyspy_memsrc *snap = NULL;
    CHECK(pyspy_memsrc_open_file(path, &snap, &err) == 0);
    if (snap) {
        CHECK(snap->nthreads == 4);
        bool main_sleeps = false;
        int stopped = 0;
        for (size_t i = 0; i < snap->nthreads; i++) {
            const pyspy_thread *t = &snap->threads[i];
            stopped += t->state == 't' || t->state == 'T';
            if (t->tid == pid)
                main_sleeps =
                    t->state == 'S' && (t->syscall == SYS_clock_nanosleep ||
                                        t->syscall == SYS_select);
            CHECK(t->has_regs);
        }
        CHECK(main_sleeps);
        CHECK(stopped == 0);
        CHECK(snap->proc.pid == pid && snap->proc.lock == PYSPY_LOCK);
        uint64_t rt = pyspy_memsrc_symbol(snap, NULL, "_PyRuntime", NULL);
        int flags[5] = {0};
        CHECK(rt &&
              pyspy_memsrc_read(snap, rt, flags, sizeof flags, &err) == 0);
        CHECK(flags[0] == 1 && flags[4] == 1);
        pyspy_memsrc_close(snap);
    }
    unlink(path);
}

TEST_MAIN(T(reads_a_variable_of_a_child), T(ram_copy_outlives_the_process),
          T(coredump_filter_selects_regions),
          T(ram_view_finds_files_where_the_process_does), T(nonexistent_pid),
          T(debian_python_runtime_symbol), T(pyenv_libpython_runtime_symbol),
          T(nonblocking_never_stops), T(already_locked_stays_stopped),
          T(snapshot_keeps_state_from_before_the_stop),
          T(symbols_of_a_deleted_executable), T(symbols_are_read_on_first_use))
