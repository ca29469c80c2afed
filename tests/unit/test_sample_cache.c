/* The per-sample page cache: same bytes as the source, fewer source
 * reads, nothing kept from one sample to the next, unreadable pages and
 * large reads passed through. */
#include "analyze/sample/cache.h"
#include "testlib.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define BASE 0x10000u
#define SIZE (3 * 4096u)

static uint8_t mem[SIZE];
static int source_reads;

static int fake_read(pyspy_memsrc *src, uint64_t addr, void *buf, size_t len,
                     pyspy_error *err) {
    (void)src;
    source_reads++;
    /* The last page is "unmapped". */
    if (addr < BASE || addr + len > BASE + 2 * 4096u)
        return pyspy_error_set(err, PYSPY_E_UNREADABLE, "unreadable");
    memcpy(buf, mem + (addr - BASE), len);
    return 0;
}

static const pyspy_memsrc_ops fake_ops = {.kind = "fake", .read = fake_read};

TEST(same_bytes_fewer_reads) {
    for (size_t i = 0; i < SIZE; i++)
        mem[i] = (uint8_t)(i * 7);
    pyspy_memsrc src = {.ops = &fake_ops};
    src.nthreads = 3; /* mirrored fields */
    pyspy_sample_cache *c = pyspy_sample_cache_new();
    CHECK(c != NULL);
    pyspy_memsrc *v = pyspy_sample_cache_begin(c, &src);
    CHECK(v->nthreads == 3);
    source_reads = 0;
    uint8_t buf[64];
    for (int i = 0; i < 100; i++) {
        uint64_t a = BASE + (uint64_t)(i * 37) % (2 * 4096u - 64);
        CHECK(pyspy_memsrc_read(v, a, buf, sizeof buf, NULL) == 0);
        CHECK(memcmp(buf, mem + (a - BASE), sizeof buf) == 0);
    }
    CHECK(source_reads <= 2); /* two pages filled */
    /* A read across the two pages. */
    CHECK(pyspy_memsrc_read(v, BASE + 4090, buf, 12, NULL) == 0);
    CHECK(memcmp(buf, mem + 4090, 12) == 0);
    /* Unreadable page: an error, like the source. */
    pyspy_error e = {0};
    CHECK(pyspy_memsrc_read(v, BASE + 2 * 4096u + 8, buf, 8, &e) != 0);
    CHECK(e.code == PYSPY_E_UNREADABLE);
    /* Next sample: memory changed, the cache must not serve old bytes. */
    mem[100] ^= 0xff;
    v = pyspy_sample_cache_begin(c, &src);
    CHECK(pyspy_memsrc_read(v, BASE + 100, buf, 1, NULL) == 0);
    CHECK(buf[0] == mem[100]);
    pyspy_sample_cache_free(c);
}

TEST(large_reads_pass_through) {
    pyspy_memsrc src = {.ops = &fake_ops};
    pyspy_sample_cache *c = pyspy_sample_cache_new();
    pyspy_memsrc *v = pyspy_sample_cache_begin(c, &src);
    uint8_t *big = malloc(2 * 4096u);
    source_reads = 0;
    CHECK(pyspy_memsrc_read(v, BASE, big, 2 * 4096u, NULL) == 0);
    CHECK(memcmp(big, mem, 2 * 4096u) == 0);
    /* Near the top of the address space: no wrap-around. */
    CHECK(pyspy_memsrc_read(v, UINT64_MAX - 4, big, 16, NULL) != 0);
    free(big);
    pyspy_sample_cache_free(c);
}

/* A live sample starts by reading the pages the last one touched, in one
 * syscall, and those bytes are the target's memory of now. */
TEST(live_sample_prefetches_last_pages_fresh) {
    /* three pages shared with a child that only waits */
    uint8_t *m = mmap(NULL, 3 * 4096u, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    for (int i = 0; i < 3; i++)
        m[i * 4096] = (uint8_t)(10 + i);
    pid_t pid = fork();
    if (pid == 0) {
        for (;;)
            pause();
    }
    CHECK(pid > 0);
    if (pid < 0) {
        munmap(m, 3 * 4096u);
        return;
    }
    pyspy_memsrc *src = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_memsrc_open_pid(pid, PYSPY_NONBLOCKING, &src, &err) == 0);
    pyspy_sample_cache *c = pyspy_sample_cache_new();
    if (src && c) {
        uint64_t a = (uint64_t)(uintptr_t)m;
        uint8_t b = 0;
        uint64_t reads, fills;
        pyspy_memsrc *v = pyspy_sample_cache_begin(c, src);
        for (int i = 0; i < 3; i++) {
            CHECK(pyspy_memsrc_read(v, a + (uint64_t)i * 4096, &b, 1, NULL) ==
                  0);
            CHECK(b == 10 + i);
        }
        pyspy_sample_cache_stats(c, &reads, &fills);
        CHECK(fills == 3);
        m[4096] = 99; /* the child's memory changes between samples */
        v = pyspy_sample_cache_begin(c, src);
        for (int i = 0; i < 3; i++) {
            CHECK(pyspy_memsrc_read(v, a + (uint64_t)i * 4096, &b, 1, NULL) ==
                  0);
            CHECK(b == (i == 1 ? 99 : 10 + i));
        }
        pyspy_sample_cache_stats(c, &reads, &fills);
        CHECK(fills == 1); /* the prefetch, nothing else */
        /* Only the part of each page the last sample read is fetched
         * ahead: a read beyond it fills that page, with fresh bytes. */
        m[2 * 4096 + 3000] = 77;
        v = pyspy_sample_cache_begin(c, src);
        CHECK(pyspy_memsrc_read(v, a, &b, 1, NULL) == 0 && b == 10);
        CHECK(pyspy_memsrc_read(v, a + 2 * 4096 + 3000, &b, 1, NULL) == 0 &&
              b == 77);
        CHECK(pyspy_memsrc_read(v, a + 2 * 4096, &b, 1, NULL) == 0 && b == 12);
        pyspy_sample_cache_stats(c, &reads, &fills);
        CHECK(fills == 2); /* the prefetch and page 2's fill */
        /* The span grew to cover both reads: the next sample fetches it
         * all ahead and needs nothing more. */
        m[2 * 4096 + 3000] = 78;
        v = pyspy_sample_cache_begin(c, src);
        CHECK(pyspy_memsrc_read(v, a + 2 * 4096 + 3000, &b, 1, NULL) == 0 &&
              b == 78);
        CHECK(pyspy_memsrc_read(v, a + 2 * 4096, &b, 1, NULL) == 0 && b == 12);
        pyspy_sample_cache_stats(c, &reads, &fills);
        CHECK(fills == 1);
    }
    pyspy_sample_cache_free(c);
    pyspy_memsrc_close(src);
    tl_kill_child(pid);
    munmap(m, 3 * 4096u);
}

/* The view stands for its source beyond reads too: a live target's
 * files are found under /proc/PID/root through it (so --native opens a
 * container's own files), and a file's source has no such root. */
TEST(view_finds_files_where_its_source_does) {
    pyspy_memsrc fake = {.ops = &fake_ops};
    pyspy_sample_cache *c = pyspy_sample_cache_new();
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK_STR(pyspy_memsrc_file_root(pyspy_sample_cache_begin(c, &fake)), "");
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        for (;;)
            pause();
    }
    pyspy_memsrc *src = NULL;
    pyspy_error err = {0};
    if (pid > 0)
        CHECK(pyspy_memsrc_open_pid(pid, PYSPY_NONBLOCKING, &src, &err) == 0);
    if (src) {
        char root[64];
        snprintf(root, sizeof root, "/proc/%d/root", (int)pid);
        CHECK_STR(pyspy_memsrc_file_root(pyspy_sample_cache_begin(c, src)),
                  root);
    }
    pyspy_memsrc_close(src);
    pyspy_sample_cache_free(c);
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

TEST_MAIN(T(same_bytes_fewer_reads), T(large_reads_pass_through),
          T(live_sample_prefetches_last_pages_fresh),
          T(view_finds_files_where_its_source_does))
