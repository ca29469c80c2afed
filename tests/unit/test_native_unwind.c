/* Native unwinding through the memory-source seam: a forked child of this
 * binary stopped in a known chain of C functions, and hostile sources
 * (garbage registers, forged ELF headers, self-referencing stacks). */
#include "analyze/native/unwind.h"
#include "testlib.h"

#include <elf.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) static void level3(int fd) {
    /* Tells the parent we are in place, then sleeps here. */
    if (write(fd, "x", 1) != 1)
        _exit(1);
    for (;;) {
        struct timespec ts = {1000, 0};
        nanosleep(&ts, NULL);
    }
}

__attribute__((noinline)) static void level2(int fd) {
    level3(fd);
    __asm__ volatile("" ::: "memory"); /* not a tail call */
}

__attribute__((noinline)) static void level1(int fd) {
    level2(fd);
    __asm__ volatile("" ::: "memory");
}

static int index_of(const pyspy_native_frame *f, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (f[i].name && strcmp(f[i].name, name) == 0)
            return (int)i;
    return -1;
}

TEST(live_child_unwinds_through_its_c_functions) {
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child < 0) {
        close(p[0]);
        close(p[1]);
        return;
    }
    if (child == 0) {
        close(p[0]);
        level1(p[1]);
        _exit(0);
    }
    close(p[1]);
    char c;
    CHECK(read(p[0], &c, 1) == 1);
    close(p[0]);
    pyspy_memsrc *src = NULL;
    pyspy_error err = {0};
    int rc = pyspy_memsrc_open_pid(child, PYSPY_LOCK, &src, &err);
    CHECK(rc == 0);
    /* The child may still be on its way into nanosleep: retry a while. */
    bool done = false;
    for (int attempt = 0; rc == 0 && attempt < 100 && !done; attempt++) {
        if (src->ops->suspend && src->ops->suspend(src, &err) < 0)
            break;
        pyspy_native_frame *f = NULL;
        size_t n = 0;
        if (pyspy_native_unwind(src, child, &f, &n, &err) == 0) {
            int s = index_of(f, n, "clock_nanosleep");
            if (s < 0)
                s = index_of(f, n, "nanosleep");
            int a = index_of(f, n, "level3"), b = index_of(f, n, "level2"),
                l1 = index_of(f, n, "level1"), m = index_of(f, n, "main");
            if (s >= 0) {
                done = true;
                CHECK(a > s && b > a && l1 > b && m > l1);
                if (a >= 0)
                    CHECK(f[a].module &&
                          strstr(f[a].module, "test_native_unwind"));
            }
        }
        pyspy_native_frames_free(f, n);
        if (src->ops->resume)
            src->ops->resume(src);
        if (!done)
            usleep(50000);
    }
    CHECK(done);
    if (rc == 0)
        pyspy_memsrc_close(src);
    tl_kill_child(child);
    pyspy_native_release();
}

/* A hostile source: one page of memory the test fills, a module whose
 * "ELF header" lives there, and a thread whose registers point into it. */
typedef struct fake {
    uint8_t page[4096];
} fake;

static int fake_read(pyspy_memsrc *src, uint64_t addr, void *buf, size_t len,
                     pyspy_error *err) {
    fake *f = src->impl;
    if (addr < 0x10000 || addr + len > 0x10000 + sizeof f->page ||
        addr + len < addr)
        return pyspy_error_set(err, PYSPY_E_UNREADABLE, "unreadable");
    memcpy(buf, f->page + (addr - 0x10000), len);
    return 0;
}

static const pyspy_memsrc_ops fake_ops = {.kind = "core", .read = fake_read};

static void hostile_case(void (*fill)(fake *, pyspy_thread *)) {
    static fake f;
    memset(&f, 0, sizeof f);
    pyspy_thread t;
    memset(&t, 0, sizeof t);
    t.tid = 7;
    t.has_regs = true;
    pyspy_region r = {.start = 0x10000,
                      .end = 0x11000,
                      .present = true,
                      .perms = PYSPY_PERM_R | PYSPY_PERM_X,
                      .path = "/nonexistent/libhostile.so"};
    pyspy_module m = {
        .path = "/nonexistent/libhostile.so", .start = 0x10000, .end = 0x11000};
    fill(&f, &t);
    pyspy_memsrc src = {.ops = &fake_ops,
                        .impl = &f,
                        .regions = &r,
                        .nregions = 1,
                        .threads = &t,
                        .nthreads = 1,
                        .modules = &m,
                        .nmodules = 1};
    src.proc.pid = 7;
    pyspy_native_frame *fr = NULL;
    size_t n = 0;
    pyspy_error err = {0};
    CHECK(pyspy_native_unwind(&src, 7, &fr, &n, &err) == 0);
    CHECK(n >= 1 && n <= PYSPY_MAX_NATIVE_FRAMES);
    pyspy_native_frames_free(fr, n);
    CHECK(pyspy_native_unwind(&src, 8, &fr, &n, &err) < 0);
    pyspy_native_release();
}

static void fill_garbage(fake *f, pyspy_thread *t) {
    for (size_t i = 0; i < sizeof f->page; i++)
        f->page[i] = (uint8_t)(i * 131 + 7);
    for (int i = 0; i < PYSPY_NREGS; i++)
        t->regs[i] = 0x10000 + (uint64_t)i * 64;
}

/* A plausible header whose segments claim far more than exists. */
static void fill_forged_elf(fake *f, pyspy_thread *t) {
    Elf64_Ehdr *eh = (Elf64_Ehdr *)f->page;
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_ident[EI_VERSION] = EV_CURRENT;
    eh->e_type = ET_DYN;
    eh->e_machine = EM_X86_64;
    eh->e_version = EV_CURRENT;
    eh->e_phoff = sizeof *eh;
    eh->e_phentsize = sizeof(Elf64_Phdr);
    eh->e_phnum = 3;
    eh->e_ehsize = sizeof *eh;
    Elf64_Phdr *ph = (Elf64_Phdr *)(f->page + sizeof *eh);
    ph[0] = (Elf64_Phdr){.p_type = PT_LOAD,
                         .p_offset = 0,
                         .p_vaddr = 0,
                         .p_filesz = 0x10000000,
                         .p_memsz = 0x10000000};
    ph[1] = (Elf64_Phdr){.p_type = PT_DYNAMIC,
                         .p_offset = 0x800,
                         .p_vaddr = 0xfffffffffffff000ull,
                         .p_filesz = 0x100};
    ph[2] = (Elf64_Phdr){.p_type = PT_GNU_EH_FRAME,
                         .p_offset = 0x900,
                         .p_vaddr = 0x900,
                         .p_filesz = 0x7fffffff};
    /* a stack whose frame pointer points at itself */
    uint64_t *stack = (uint64_t *)(f->page + 0xc00);
    stack[0] = 0x10c00;
    stack[1] = 0x10100;
    t->regs[PYSPY_REG_RIP] = 0x10100;
    t->regs[PYSPY_REG_RSP] = 0x10c00;
    t->regs[PYSPY_REG_RBP] = 0x10c00;
}

static void fill_huge_phnum(fake *f, pyspy_thread *t) {
    fill_forged_elf(f, t);
    Elf64_Ehdr *eh = (Elf64_Ehdr *)f->page;
    eh->e_phnum = 0xffff;
    eh->e_phoff = 0xfffffffffffffff0ull;
}

TEST(hostile_sources_give_a_bounded_stack) {
    hostile_case(fill_garbage);
    hostile_case(fill_forged_elf);
    hostile_case(fill_huge_phnum);
}

/* A source of f's page holding the one module m, mapped by r. */
static pyspy_memsrc one_module(fake *f, pyspy_module *m, pyspy_region *r) {
    *r = (pyspy_region){.start = m->start,
                        .end = m->end,
                        .present = true,
                        .perms = PYSPY_PERM_R | PYSPY_PERM_X,
                        .path = m->path};
    return (pyspy_memsrc){.ops = &fake_ops,
                          .impl = f,
                          .regions = r,
                          .nregions = 1,
                          .modules = m,
                          .nmodules = 1};
}

/* Sessions: one source's modules find the session they were given
 * back in, a second caller meanwhile gets a session of its own, and other
 * modules (or the same modules found elsewhere) another. */
TEST(sessions_by_module_identity) {
    static fake f;
    memset(&f, 0, sizeof f);
    pyspy_module m = {.path = "/nonexistent/libsession.so",
                      .start = 0x10000,
                      .end = 0x11000,
                      .build_id = {1, 2, 3, 4},
                      .build_id_len = 4};
    pyspy_region r;
    pyspy_memsrc a = one_module(&f, &m, &r);
    pyspy_memsrc b = a; /* another snapshot of the same program */
    pyspy_error err = {0};
    pyspy_native_session *s1 = pyspy_native_get(&a, &err);
    pyspy_native_session *s2 = pyspy_native_get(&b, &err);
    CHECK(s1 && s2 && s1 != s2);
    pyspy_native_put(s2);
    pyspy_native_session *s3 = pyspy_native_get(&a, &err);
    CHECK(s3 == s2);
    pyspy_native_put(s1);
    pyspy_native_put(s3);
    pyspy_native_session *again = pyspy_native_get(&b, &err);
    CHECK(again == s1 || again == s2);
    pyspy_native_put(again);
    pyspy_module other = m;
    other.build_id[0] = 9;
    b.modules = &other;
    pyspy_native_session *s4 = pyspy_native_get(&b, &err);
    CHECK(s4 && s4 != s1 && s4 != s2);
    pyspy_native_put(s4);
    other = m;
    other.load_bias = 0x1000;
    pyspy_native_session *s5 = pyspy_native_get(&b, &err);
    CHECK(s5 && s5 != s1 && s5 != s2 && s5 != s4);
    pyspy_native_put(s5);
    pyspy_native_release();
}

static bool write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

/* A module without a build-id is its file: the same path holding another
 * file (a rebuilt library, a new inode) is another session, the same
 * file the same session, and a path with no file keeps its session too. */
TEST(sessions_of_files_without_build_id) {
    static fake f;
    memset(&f, 0, sizeof f);
    const char *tmp = getenv("TMPDIR");
    char dir[4096], lib[4200], next[4200];
    snprintf(dir, sizeof dir, "%s/test_native_unwind-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(lib, sizeof lib, "%s/libnobuildid.so", dir);
    snprintf(next, sizeof next, "%s/libnobuildid.so.new", dir);
    CHECK(write_file(lib, "first build"));
    pyspy_module m = {.path = lib, .start = 0x10000, .end = 0x11000};
    pyspy_region r;
    pyspy_memsrc a = one_module(&f, &m, &r);
    pyspy_error err = {0};
    pyspy_native_session *s1 = pyspy_native_get(&a, &err);
    CHECK(s1 != NULL);
    pyspy_native_put(s1);
    pyspy_native_session *s2 = pyspy_native_get(&a, &err);
    CHECK(s2 == s1);
    pyspy_native_put(s2);
    CHECK(write_file(next, "second build") && rename(next, lib) == 0);
    pyspy_native_session *s3 = pyspy_native_get(&a, &err);
    CHECK(s3 && s3 != s1);
    pyspy_native_put(s3);
    CHECK(unlink(lib) == 0);
    pyspy_native_session *s4 = pyspy_native_get(&a, &err);
    CHECK(s4 && s4 != s1 && s4 != s3);
    pyspy_native_put(s4);
    pyspy_native_session *s5 = pyspy_native_get(&a, &err);
    CHECK(s5 == s4);
    pyspy_native_put(s5);
    CHECK(rmdir(dir) == 0);
    pyspy_native_release();
}

TEST_MAIN(T(live_child_unwinds_through_its_c_functions),
          T(hostile_sources_give_a_bounded_stack),
          T(sessions_by_module_identity), T(sessions_of_files_without_build_id))
