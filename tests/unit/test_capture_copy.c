/* The parts of a capture's pause: which pages the pagemap says only the
 * process holds (guard pages never), and the copy spread over threads
 * (pieces of one big region folded back into one result per pair). */
#include "capture/memsrc/ram.h"
#include "capture/process/pagemap.h"
#include "capture/snapshot/snapshot.h"
#include "testlib.h"

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096u

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

static bool bit(const uint64_t *bits, unsigned i) {
    return bits[i / 64] >> (i % 64) & 1;
}

TEST(pagemap_counts_touched_pages_and_no_guard) {
    char *m = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    m[0] = m[5 * PG] = m[6 * PG + 17] = m[63 * PG] = 1;
    bool guard = madvise(m + 10 * PG, PG, MADV_GUARD_INSTALL) == 0;
    int fd = open("/proc/self/pagemap", O_RDONLY);
    CHECK(fd >= 0);
    uint64_t *bits = NULL;
    CHECK(pyspy_pagemap_own_pages(fd, (uint64_t)(uintptr_t)m, 64, false, &bits,
                                  NULL) == 0);
    for (unsigned i = 0; bits && i < 64; i++)
        CHECK(bit(bits, i) == (i == 0 || i == 5 || i == 6 || i == 63));
    if (!guard)
        fprintf(stderr, "  (MADV_GUARD_INSTALL not in this kernel: the guard "
                        "page case is not exercised)\n");
    free(bits);
    munmap(m, 64 * PG);
    close(fd);
}

TEST(pagemap_file_mapping_counts_written_copies_only) {
    char path[] = "/tmp/pyspy-pagemap-XXXXXX";
    int f = mkstemp(path);
    CHECK(f >= 0);
    static char page[PG];
    for (int i = 0; i < 4; i++)
        CHECK(write(f, page, PG) == PG);
    char *m = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, f, 0);
    CHECK(m != MAP_FAILED);
    volatile char c = m[0] + m[PG]; /* present, the file's */
    (void)c;
    m[2 * PG] = 7; /* a private copy */
    int fd = open("/proc/self/pagemap", O_RDONLY);
    uint64_t *bits = NULL;
    bool anon = false;
    CHECK(pyspy_pagemap_own_pages(fd, (uint64_t)(uintptr_t)m, 4, true, &bits,
                                  &anon) == 0);
    CHECK(anon);
    for (unsigned i = 0; bits && i < 4; i++)
        CHECK(bit(bits, i) == (i == 2));
    free(bits);
    munmap(m, 4 * PG);
    close(fd);
    close(f);
    unlink(path);
}

#define BIG (96u << 20)

/* A child holding a 96 MiB mapping whose every page names itself, and an
 * unmapped hole after its first page; *addr receives the mapping. */
static int fork_patterned_child(uint64_t *addr) {
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
        char *m = mmap(NULL, BIG + 2 * PG, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            _exit(1);
        munmap(m + BIG, PG);
        for (uint64_t off = 0; off < BIG; off += PG)
            *(uint64_t *)(m + off) = off ^ 0x5a5a5a5a5a5aULL;
        uint64_t a = (uint64_t)(uintptr_t)m;
        if (write(fds[1], &a, sizeof a) != sizeof a)
            _exit(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    if (read(fds[0], addr, sizeof *addr) != sizeof *addr)
        *addr = 0;
    close(fds[0]);
    return pid;
}

TEST(parallel_copy_of_a_big_region) {
    uint64_t a = 0;
    int pid = fork_patterned_child(&a);
    CHECK(pid > 0 && a != 0);
    if (pid <= 0)
        return;
    pyspy_memsrc *src = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_memsrc_open_pid(pid, PYSPY_NONBLOCKING, &src, &err) == 0);
    uint8_t *buf = malloc(BIG);
    static uint8_t small[PG], hole[2 * PG];
    CHECK(buf != NULL);
    if (src && buf) {
        struct iovec l[3] = {{buf, BIG}, {hole, sizeof hole}, {small, PG}};
        struct iovec r[3] = {{(void *)(uintptr_t)a, BIG},
                             {(void *)(uintptr_t)(a + BIG - PG), sizeof hole},
                             {(void *)(uintptr_t)(a + 7 * PG), PG}};
        bool ok[3] = {0};
        CHECK(pyspy_memsrc_readv(src, l, r, 3, ok) == 2);
        CHECK(ok[0] && !ok[1] && ok[2]);
        size_t bad = 0;
        for (uint64_t off = 0; off < BIG; off += PG)
            bad += *(uint64_t *)(buf + off) != (off ^ 0x5a5a5a5a5a5aULL);
        CHECK(bad == 0);
        CHECK(*(uint64_t *)small == ((7 * PG) ^ 0x5a5a5a5a5a5aULL));
    }
    free(buf);
    pyspy_memsrc_close(src);
    tl_kill_child(pid);
}

#define HUGE_MAP (512ull << 20)

/* A child with a 512 MiB mapping of which three pages were written: the
 * view of so much address space is decided on two threads (the regions
 * split by size), and the tables joined must still hold every page. */
TEST(view_of_much_address_space_keeps_every_page) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        char *m = mmap(NULL, HUGE_MAP, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED)
            _exit(1);
        strcpy(m, "first page");
        strcpy(m + HUGE_MAP / 2 + 8, "middle page");
        strcpy(m + HUGE_MAP - PG, "last page");
        uint64_t a = (uint64_t)(uintptr_t)m;
        if (write(fds[1], &a, sizeof a) != sizeof a)
            _exit(1);
        for (;;)
            pause();
    }
    uint64_t a = 0;
    CHECK(read(fds[0], &a, sizeof a) == sizeof a);
    pyspy_memsrc *src = NULL, *view = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_memsrc_open_pid(pid, PYSPY_LOCK, &src, &err) == 0);
    if (src && src->ops->suspend(src, &err) == 0 &&
        pyspy_memsrc_view_open(src, PYSPY_FILTER_DEFAULT, &view, &err) == 0) {
        CHECK(pyspy_memsrc_view_bytes(view) < (64u << 20));
        CHECK(pyspy_memsrc_view_copy(view, NULL, &err) == 0);
        src->ops->resume(src);
        char got[16];
        CHECK(pyspy_memsrc_read(view, a, got, 11, &err) == 0);
        CHECK(memcmp(got, "first page", 11) == 0);
        CHECK(pyspy_memsrc_read(view, a + HUGE_MAP / 2 + 8, got, 12, &err) ==
              0);
        CHECK(memcmp(got, "middle page", 12) == 0);
        CHECK(pyspy_memsrc_read(view, a + HUGE_MAP - PG, got, 10, &err) == 0);
        CHECK(memcmp(got, "last page", 10) == 0);
        /* an untouched page reads as zeros */
        CHECK(pyspy_memsrc_read(view, a + 3 * PG, got, 8, &err) == 0);
        CHECK(memcmp(got, "\0\0\0\0\0\0\0\0", 8) == 0);
        /* the regions are in address order */
        for (size_t i = 1; i < view->nregions; i++)
            CHECK(view->regions[i - 1].end <= view->regions[i].start);
    }
    pyspy_memsrc_close(view);
    pyspy_memsrc_close(src);
    tl_kill_child(pid);
    close(fds[0]);
    close(fds[1]);
}

TEST_MAIN(T(pagemap_counts_touched_pages_and_no_guard),
          T(view_of_much_address_space_keeps_every_page),
          T(pagemap_file_mapping_counts_written_copies_only),
          T(parallel_copy_of_a_big_region))
