/* pyspy_out_open / commit / abort: a file appears under its name only
 * whole, never writes through a symlink another user owns, and a failure
 * leaves the old file and nothing else. */
#include "capture/base/file_io.h"
#include "capture/base/out_file.h"
#include "testlib.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static const char *at(const char *name) {
    static char p[4][192];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static void put(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

static char *get(const char *path) {
    static char buf[256];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = 0;
    return buf;
}

/* The entries of a folder, sorted and joined with spaces. */
static char *listing(const char *d) {
    static char out[1024];
    struct dirent **v;
    int n = scandir(d, &v, NULL, alphasort);
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(v[i]->d_name, ".") && strcmp(v[i]->d_name, "..")) {
            if (out[0])
                strncat(out, " ", sizeof out - strlen(out) - 1);
            strncat(out, v[i]->d_name, sizeof out - strlen(out) - 1);
        }
        free(v[i]);
    }
    if (n >= 0)
        free(v);
    return out;
}

static void clean(void) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s/*  %s/.[!.]*", dir, dir);
    CHECK(system(cmd) == 0);
}

static int write_via(const char *path, const char *text, mode_t mode,
                     pyspy_error *err) {
    pyspy_out_file o;
    if (pyspy_out_open(&o, path, mode, err) != 0)
        return -1;
    if (pyspy_write_full(o.fd, text, strlen(text), path, err) != 0) {
        pyspy_out_abort(&o);
        return -1;
    }
    return pyspy_out_commit(&o, err);
}

TEST(writes_and_replaces) {
    clean();
    pyspy_error err = {0};
    CHECK(write_via(at("a.txt"), "one", 0666, &err) == 0);
    CHECK_STR(get(at("a.txt")), "one");
    struct stat st;
    CHECK(stat(at("a.txt"), &st) == 0 && (st.st_mode & 0777) == 0644);
    CHECK(write_via(at("a.txt"), "two", 0600, &err) == 0);
    CHECK_STR(get(at("a.txt")), "two");
    CHECK(stat(at("a.txt"), &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK_STR(listing(dir), "a.txt");
}

TEST(nothing_until_commit_and_abort_leaves_nothing) {
    clean();
    put(at("a.txt"), "old");
    pyspy_out_file o;
    pyspy_error err = {0};
    CHECK(pyspy_out_open(&o, at("a.txt"), 0666, &err) == 0);
    CHECK(pyspy_write_full(o.fd, "partial", 7, "a.txt", &err) == 0);
    CHECK_STR(get(at("a.txt")), "old");
    CHECK_STR(listing(dir), "a.txt"); /* unnamed until commit */
    pyspy_out_abort(&o);
    pyspy_out_abort(&o); /* twice is harmless */
    CHECK_STR(get(at("a.txt")), "old");
    CHECK_STR(listing(dir), "a.txt");
}

/* A link another user owns may have been planted: refused. */
TEST(foreign_symlink_at_the_name_is_refused_not_followed) {
    if (geteuid() != 0) {
        printf("# skip: a link owned by another user needs root to make\n");
        return;
    }
    clean();
    put(at("victim"), "secret");
    CHECK(symlink("victim", at("out")) == 0);
    CHECK(symlink("nowhere/new", at("dangling")) == 0);
    CHECK(lchown(at("out"), 65534, 65534) == 0);
    CHECK(lchown(at("dangling"), 65534, 65534) == 0);
    pyspy_error err = {0};
    CHECK(write_via(at("out"), "data", 0666, &err) == -1);
    CHECK(strstr(err.msg, "is a symbolic link owned by another user") != NULL);
    CHECK(strstr(err.msg, at("out")) != NULL);
    err = (pyspy_error){0};
    CHECK(write_via(at("dangling"), "data", 0666, &err) == -1);
    CHECK(strstr(err.msg, "is a symbolic link") != NULL);
    struct stat st;
    CHECK(lstat(at("out"), &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(lstat(at("dangling"), &st) == 0 && S_ISLNK(st.st_mode));
    CHECK_STR(get(at("victim")), "secret");
    CHECK_STR(listing(dir), "dangling out victim");
}

/* The caller's own link is followed: the file it names is replaced whole
 * and the link stays; a dangling one is refused. */
TEST(own_symlink_is_followed_and_kept) {
    clean();
    put(at("mine"), "old");
    CHECK(symlink("mine", at("out")) == 0);
    CHECK(symlink("nowhere/new", at("dangling")) == 0);
    pyspy_error err = {0};
    CHECK(write_via(at("out"), "data", 0666, &err) == 0);
    struct stat st;
    CHECK(lstat(at("out"), &st) == 0 && S_ISLNK(st.st_mode));
    CHECK_STR(get(at("mine")), "data");
    err = (pyspy_error){0};
    CHECK(write_via(at("dangling"), "data", 0666, &err) == -1);
    CHECK(strstr(err.msg, "does not exist") != NULL);
    CHECK_STR(listing(dir), "dangling mine out");
}

/* A symlink that appears after the output was opened is replaced by the
 * rename, still never followed. */
TEST(symlink_planted_while_writing_is_replaced) {
    clean();
    put(at("victim"), "secret");
    pyspy_out_file o;
    pyspy_error err = {0};
    CHECK(pyspy_out_open(&o, at("out"), 0666, &err) == 0);
    CHECK(symlink("victim", at("out")) == 0);
    CHECK(pyspy_write_full(o.fd, "data", 4, "out", &err) == 0);
    CHECK(pyspy_out_commit(&o, &err) == 0);
    struct stat st;
    CHECK(lstat(at("out"), &st) == 0 && S_ISREG(st.st_mode));
    CHECK_STR(get(at("out")), "data");
    CHECK_STR(get(at("victim")), "secret");
    CHECK_STR(listing(dir), "out victim");
}

/* /dev/null and terminals are written in place, and so is a FIFO with a
 * reader (a pipe); one nothing reads is refused without waiting. */
TEST(devices_and_read_fifos_are_written) {
    clean();
    pyspy_error err = {0};
    CHECK(write_via("/dev/null", "data", 0666, &err) == 0);
    struct stat st;
    CHECK(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode));
    CHECK(mkfifo(at("fifo"), 0600) == 0);
    err = (pyspy_error){0};
    CHECK(write_via(at("fifo"), "data", 0666, &err) == -1);
    CHECK(strstr(err.msg, "nothing reads from") != NULL);
    int rd = open(at("fifo"), O_RDONLY | O_NONBLOCK);
    CHECK(rd >= 0);
    err = (pyspy_error){0};
    CHECK(write_via(at("fifo"), "data", 0666, &err) == 0);
    char buf[8] = {0};
    CHECK(read(rd, buf, sizeof buf) == 4 && memcmp(buf, "data", 4) == 0);
    close(rd);
    CHECK(stat(at("fifo"), &st) == 0 && S_ISFIFO(st.st_mode));
    CHECK_STR(listing(dir), "fifo");
}

/* Where the filesystem has no O_TMPFILE: a named temporary beside the
 * output, O_EXCL, renamed when whole; aborted, it is removed. */
TEST(named_fallback) {
    clean();
    put(at("a.txt"), "old");
    pyspy_out_file o;
    pyspy_error err = {0};
    CHECK(pyspy_out_open_named(&o, at("a.txt"), 0600, &err) == 0);
    CHECK(o.tmp && strncmp(o.tmp, at(".a.txt."), strlen(at(".a.txt."))) == 0);
    CHECK(pyspy_write_full(o.fd, "new", 3, "a.txt", &err) == 0);
    CHECK_STR(get(at("a.txt")), "old");
    CHECK(pyspy_out_commit(&o, &err) == 0);
    CHECK_STR(get(at("a.txt")), "new");
    struct stat st;
    CHECK(stat(at("a.txt"), &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK_STR(listing(dir), "a.txt");
    CHECK(pyspy_out_open_named(&o, at("a.txt"), 0600, &err) == 0);
    CHECK(pyspy_write_full(o.fd, "partial", 7, "a.txt", &err) == 0);
    pyspy_out_abort(&o);
    CHECK_STR(get(at("a.txt")), "new");
    CHECK_STR(listing(dir), "a.txt");
}

/* The check before the work: what the open would refuse, and nothing
 * created. */
TEST(check_says_what_open_would_refuse) {
    clean();
    pyspy_error err = {0};
    CHECK(pyspy_out_check(at("fresh"), &err) == 0);
    CHECK(pyspy_out_check("/dev/null", &err) == 0);
    CHECK(symlink("nowhere", at("link")) == 0);
    CHECK(pyspy_out_check(at("link"), &err) == -1);
    CHECK(strstr(err.msg, "is a symbolic link") != NULL);
    CHECK(pyspy_out_check(at("missing/x"), &err) == -1);
    CHECK(strstr(err.msg, "No such file") != NULL);
    put(at("file"), "x");
    CHECK(pyspy_out_check(at("file/x"), &err) == -1);
    CHECK(strstr(err.msg, "Not a directory") != NULL);
    CHECK_STR(listing(dir), "file link");
}

static int fill_fails(FILE *f, void *ctx, pyspy_error *err) {
    (void)ctx;
    fputs("half", f);
    return pyspy_error_set(err, PYSPY_E_GENERIC, "the writer gave up");
}

static int fill_ok(FILE *f, void *ctx, pyspy_error *err) {
    (void)err;
    fputs(ctx, f);
    return 0;
}

TEST(write_through_a_stream) {
    clean();
    put(at("a.txt"), "old");
    pyspy_error err = {0};
    CHECK(pyspy_out_write(at("a.txt"), 0666, fill_fails, NULL, &err) == -1);
    char want[256];
    snprintf(want, sizeof want, "writing '%s': the writer gave up",
             at("a.txt"));
    CHECK_STR(err.msg, want);
    CHECK_STR(get(at("a.txt")), "old");
    CHECK_STR(listing(dir), "a.txt");
    CHECK(pyspy_out_write(at("a.txt"), 0666, fill_ok, "whole", &err) == 0);
    CHECK_STR(get(at("a.txt")), "whole");
    CHECK_STR(listing(dir), "a.txt");
}

TEST(a_folder_at_the_name_fails_and_leaves_nothing) {
    clean();
    CHECK(mkdir(at("d"), 0700) == 0);
    pyspy_error err = {0};
    CHECK(write_via(at("d"), "data", 0666, &err) == -1);
    CHECK(strstr(err.msg, "Is a directory") != NULL);
    CHECK(strstr(err.msg, at("d")) != NULL);
    CHECK_STR(listing(dir), "d");
    CHECK_STR(listing(at("d")), "");
    err = (pyspy_error){0};
    CHECK(write_via(at("missing/x"), "data", 0666, &err) == -1);
    CHECK(strstr(err.msg, "No such file") != NULL);
}

TEST(temp_names_sit_beside_the_output) {
    char *t = pyspy_temp_name_for("/a/b/out.svg");
    CHECK(t && strncmp(t, "/a/b/.out.svg.", 14) == 0 && strlen(t) == 20);
    free(t);
    t = pyspy_temp_name_for("out.svg");
    CHECK(t && strncmp(t, ".out.svg.", 9) == 0 && strlen(t) == 15);
    free(t);
}

/* In a child, in a private mount namespace: fn's failures as exit 1. */
static void in_own_mounts(const char *what, int (*fn)(void)) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) != 0 ||
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
            _exit(77);
        _exit(fn());
    }
    int st = 0;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st));
    if (WEXITSTATUS(st) == 77)
        printf("# %s: no private mount namespace here; checked nothing\n",
               what);
    else
        CHECK(WEXITSTATUS(st) == 0);
}

/* Without /proc the unnamed file cannot be linked by its /proc name: by
 * its descriptor where the capability allows (root), else its data goes
 * to a named temporary renamed over the output. Either way the result is
 * the same. */
static int no_proc(void) {
    if (umount2("/proc", MNT_DETACH) != 0)
        return 77;
    int bad = tl_failed_checks;
    put(at("a.txt"), "old");
    pyspy_error err = {0};
    CHECK(write_via(at("a.txt"), "new", 0666, &err) == 0);
    CHECK(write_via(at("b.txt"), "fresh", 0666, &err) == 0);
    CHECK_STR(get(at("a.txt")), "new");
    CHECK_STR(get(at("b.txt")), "fresh");
    CHECK_STR(listing(dir), "a.txt b.txt");
    return tl_failed_checks != bad;
}

TEST(without_proc_it_is_still_linked_in) {
    clean();
    in_own_mounts("without_proc_it_is_still_linked_in", no_proc);
}

/* ENOSPC: the old file intact, no partial or temporary one. */
static int full(void) {
    char small[96];
    snprintf(small, sizeof small, "%s/small", dir);
    if (mount("tmpfs", small, "tmpfs", 0, "size=16k") != 0)
        return 77;
    int bad = tl_failed_checks;
    char old[192];
    snprintf(old, sizeof old, "%s/out.svg", small);
    put(old, "previous");
    static char big[64 << 10];
    memset(big, 'x', sizeof big);
    big[sizeof big - 1] = 0;
    pyspy_error err = {0};
    CHECK(write_via(old, big, 0666, &err) == -1);
    char want[256];
    snprintf(want, sizeof want, "no space left on device writing %s", old);
    CHECK_STR(err.msg, want);
    CHECK_STR(get(old), "previous");
    CHECK_STR(listing(small), "out.svg");
    umount(small);
    return tl_failed_checks != bad;
}

TEST(no_space_keeps_the_old_file) {
    clean();
    CHECK(mkdir(at("small"), 0700) == 0);
    in_own_mounts("no_space_keeps_the_old_file", full);
}

static void setup(void) {
    umask(022);
    snprintf(dir, sizeof dir, "/tmp/pyspy-out-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
}

static void teardown(void) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

TEST_MAIN(T(setup), T(writes_and_replaces),
          T(nothing_until_commit_and_abort_leaves_nothing),
          T(foreign_symlink_at_the_name_is_refused_not_followed),
          T(own_symlink_is_followed_and_kept),
          T(symlink_planted_while_writing_is_replaced),
          T(devices_and_read_fifos_are_written), T(named_fallback),
          T(write_through_a_stream), T(check_says_what_open_would_refuse),
          T(a_folder_at_the_name_fails_and_leaves_nothing),
          T(temp_names_sit_beside_the_output),
          T(without_proc_it_is_still_linked_in), T(no_space_keeps_the_old_file),
          T(teardown))
