/* Lean snapshots at the level of the capture library: the recording
 * source keeps what was read through it, the lean writer stores only
 * those pages, and the reader shows the original regions, serves the kept
 * pages as they were and says "absent" for the others, never zeros. */
#include "testlib.h"

#include "capture/memsrc/recording.h"
#include "capture/snapshot/snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define PAGE 4096u

typedef struct {
    uint8_t *data[3];
} mem_impl;

static int mem_read(pyspy_memsrc *src, uint64_t addr, void *buf, size_t len,
                    pyspy_error *err) {
    mem_impl *m = src->impl;
    const pyspy_region *r = pyspy_memsrc_region_at(src, addr);
    if (!r || !r->present || addr + len > r->end)
        return pyspy_error_set(err, PYSPY_E_UNREADABLE, "unreadable 0x%llx",
                               (unsigned long long)addr);
    memcpy(buf, m->data[r - src->regions] + (addr - r->start), len);
    return 0;
}

static const pyspy_memsrc_ops mem_ops = {.kind = "test", .read = mem_read};

static pyspy_region regions[] = {
    {.start = 0x10000,
     .end = 0x18000,
     .perms = PYSPY_PERM_R | PYSPY_PERM_W,
     .present = true},
    {.start = 0x20000,
     .end = 0x23000,
     .file_offset = 0x1000,
     .perms = PYSPY_PERM_R,
     .present = true,
     .path = "/usr/lib/fake.so"},
    {.start = 0x30000, .end = 0x31000, .perms = PYSPY_PERM_R, .present = false},
};
#define NREG (sizeof regions / sizeof regions[0])

static pyspy_thread thread = {
    .tid = 42, .name = "main", .state = 'S', .has_regs = true};

static void build(pyspy_memsrc *src, mem_impl *m) {
    memset(src, 0, sizeof *src);
    for (size_t i = 0; i < NREG; i++) {
        size_t n = regions[i].end - regions[i].start;
        m->data[i] = malloc(n);
        for (size_t k = 0; k < n; k++)
            m->data[i][k] = (uint8_t)(k * 7 + i + 1);
    }
    src->ops = &mem_ops;
    src->impl = m;
    src->regions = regions;
    src->nregions = NREG;
    src->threads = &thread;
    src->nthreads = 1;
    src->proc.pid = 42;
    src->origin = "test";
}

static char path[64];

TEST(lean_keeps_what_was_read_and_nothing_else) {
    mem_impl m;
    pyspy_memsrc src;
    build(&src, &m);
    pyspy_error err = {0};
    pyspy_memsrc *rec = NULL;
    CHECK(pyspy_memsrc_recording_open(&src, false, &rec, &err) == 0);
    uint8_t buf[64];
    /* one read within a page, one across two, one of the file mapping */
    CHECK(pyspy_memsrc_read(rec, 0x10010, buf, 8, &err) == 0);
    CHECK(pyspy_memsrc_read(rec, 0x13ff8, buf, 16, &err) == 0);
    CHECK(pyspy_memsrc_read(rec, 0x21000, buf, 8, &err) == 0);
    CHECK(memcmp(buf, m.data[1] + 0x1000, 8) == 0);
    /* a region absent from the source stays unreadable */
    CHECK(pyspy_memsrc_read(rec, 0x30000, buf, 8, &err) == -1);
    const uint64_t *pages = NULL;
    size_t n = 0;
    CHECK(pyspy_memsrc_recording_pages(rec, &pages, &n, &err) == 0);
    CHECK(n == 4);
    if (n == 4) {
        CHECK(pages[0] == 0x10000 && pages[1] == 0x13000);
        CHECK(pages[2] == 0x14000 && pages[3] == 0x21000);
    }
    snprintf(path, sizeof path, "/tmp/pyspy-lean-%d.core.zst", (int)getpid());
    pyspy_snapshot_opts o = {.hide_progress = true};
    pyspy_snapshot_stats st = {0};
    CHECK(pyspy_snapshot_write_lean(rec, pages, n, &o, path, &st, &err) == 0);
    CHECK(st.memory_bytes == 4 * PAGE);
    pyspy_memsrc_close(rec);

    pyspy_memsrc *f = NULL;
    CHECK(pyspy_memsrc_open_file(path, &f, &err) == 0);
    if (!f)
        return;
    /* the regions as the process had them, not the runs */
    CHECK(f->nregions == NREG);
    for (size_t i = 0; i < NREG && i < f->nregions; i++) {
        CHECK(f->regions[i].start == regions[i].start);
        CHECK(f->regions[i].end == regions[i].end);
        CHECK(f->regions[i].present == regions[i].present);
    }
    if (f->nregions > 1) {
        CHECK_STR(f->regions[1].path, "/usr/lib/fake.so");
        CHECK(f->regions[1].file_offset == 0x1000);
    }
    CHECK(f->nthreads == 1 && f->threads[0].tid == 42);
    /* kept pages read back as they were, across a run's pages too */
    CHECK(pyspy_memsrc_read(f, 0x13f00, buf, 64, &err) == 0);
    CHECK(memcmp(buf, m.data[0] + 0x3f00, 64) == 0);
    CHECK(pyspy_memsrc_read(f, 0x14ff0, buf, 16, &err) == 0);
    CHECK(memcmp(buf, m.data[0] + 0x4ff0, 16) == 0);
    CHECK(pyspy_memsrc_read(f, 0x21ff8, buf, 8, &err) == 0);
    CHECK(memcmp(buf, m.data[1] + 0x1ff8, 8) == 0);
    /* pages not kept are absent, in a present region: an error that says
     * so, not zeros; a read running from a kept page into one too */
    pyspy_error_clear(&err);
    CHECK(pyspy_memsrc_read(f, 0x12000, buf, 8, &err) == -1);
    CHECK(err.code == PYSPY_E_UNREADABLE);
    CHECK(strstr(err.msg, "absent") != NULL);
    CHECK(pyspy_memsrc_read(f, 0x14ff8, buf, 16, &err) == -1);
    CHECK(pyspy_memsrc_read(f, 0x20000, buf, 8, &err) == -1);
    CHECK(pyspy_memsrc_read(f, 0x17ff8, buf, 8, &err) == -1);
    CHECK(pyspy_memsrc_read(f, 0x30000, buf, 8, &err) == -1);
    pyspy_memsrc_close(f);
    /* PYSPY_LEAN_SEED=FILE keeps it: the fuzz corpus's lean seed */
    const char *keep = getenv("PYSPY_LEAN_SEED");
    if (keep)
        CHECK(rename(path, keep) == 0);
    unlink(path);
    for (size_t i = 0; i < NREG; i++)
        free(m.data[i]);
}

/* Pages read before a suspend are read again before its resume: what a
 * lean snapshot keeps is what the target held while stopped. */
static int suspends, resumes;
static int count_suspend(pyspy_memsrc *src, pyspy_error *err) {
    (void)src;
    (void)err;
    suspends++;
    return 0;
}
static void count_resume(pyspy_memsrc *src) {
    (void)src;
    resumes++;
}
static const pyspy_memsrc_ops stop_ops = {.kind = "test",
                                          .read = mem_read,
                                          .suspend = count_suspend,
                                          .resume = count_resume};

TEST(pages_read_before_the_stop_are_read_again) {
    mem_impl m;
    pyspy_memsrc src;
    build(&src, &m);
    src.ops = &stop_ops;
    pyspy_error err = {0};
    pyspy_memsrc *rec = NULL;
    CHECK(pyspy_memsrc_recording_open(&src, false, &rec, &err) == 0);
    uint8_t b = 0;
    CHECK(pyspy_memsrc_read(rec, 0x10000, &b, 1, &err) == 0);
    CHECK(b == m.data[0][0]);
    m.data[0][0] = 0xee; /* the target ran on */
    CHECK(pyspy_memsrc_suspend(rec, &err) == 0);
    m.data[0][1] = 0xdd; /* seen: read after the stop */
    CHECK(pyspy_memsrc_read(rec, 0x10001, &b, 1, &err) == 0);
    CHECK(b == 0xdd);
    pyspy_memsrc_resume(rec);
    CHECK(suspends == 1 && resumes == 1);
    m.data[0][0] = 0x11; /* after the stop: not seen */
    CHECK(pyspy_memsrc_read(rec, 0x10000, &b, 1, &err) == 0);
    CHECK(b == 0xee);
    pyspy_memsrc_close(rec);
    for (size_t i = 0; i < NREG; i++)
        free(m.data[i]);
}

TEST_MAIN(T(lean_keeps_what_was_read_and_nothing_else),
          T(pages_read_before_the_stop_are_read_again))
