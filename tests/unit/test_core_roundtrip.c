#include "testlib.h"

#include "capture/snapshot/snapshot.h"

#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/procfs.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

/* ------------------------------------------- an in-memory memory source */

typedef struct {
    uint8_t *data[8]; /* per region, NULL = absent */
    uint64_t fail_at; /* reads touching this address fail ... */
    int fail_code;    /* ... with this code (0 = never) */
} mem_impl;

static int mem_read(pyspy_memsrc *src, uint64_t addr, void *buf, size_t len,
                    pyspy_error *err) {
    mem_impl *m = src->impl;
    if (m->fail_code && addr <= m->fail_at && m->fail_at < addr + len)
        return pyspy_error_set(err, m->fail_code, "injected failure");
    const pyspy_region *r = pyspy_memsrc_region_at(src, addr);
    if (!r || !r->present || addr + len > r->end)
        return pyspy_error_set(err, PYSPY_E_UNREADABLE, "unreadable 0x%llx",
                               (unsigned long long)addr);
    size_t i = (size_t)(r - src->regions);
    memcpy(buf, m->data[i] + (addr - r->start), len);
    return 0;
}

static const pyspy_memsrc_ops mem_ops = {.kind = "test", .read = mem_read};

static pyspy_region regions[] = {
    {0x400000,
     0x403000,
     0,
     PYSPY_PERM_R | PYSPY_PERM_X,
     true,
     "/usr/bin/fakepython",
     {0xab, 0xcd, 0xef},
     3,
     0,
     false},
    {0x600000,
     0x601000,
     0x2000,
     PYSPY_PERM_R | PYSPY_PERM_W,
     true,
     "/usr/bin/fakepython",
     {0},
     0,
     0,
     false},
    {0x601000,
     0x623000,
     0,
     PYSPY_PERM_R | PYSPY_PERM_W,
     true,
     NULL,
     {0},
     0,
     0,
     false},
    {0x700000,
     0x710000,
     0,
     PYSPY_PERM_R,
     false,
     "/usr/lib/big.so",
     {0},
     0,
     0,
     false},
    {0x7f0000000000,
     0x7f0000003000,
     0x1000,
     PYSPY_PERM_R | PYSPY_PERM_W | PYSPY_PERM_SHARED,
     true,
     "/dev/shm/seg",
     {0},
     0,
     0,
     false},
};
#define NREG (sizeof regions / sizeof regions[0])

static pyspy_symbol syms[] = {
    {"PyEval_EvalFrame", 0x1100, 64, STT_FUNC},
    {"_PyRuntime", 0x200500, 4096, STT_OBJECT},
    {"main", 0x1000, 32, STT_FUNC},
};

static pyspy_thread threads[3];
static pyspy_module module;
static uint8_t auxv[4 * 16];
static mem_impl mimpl;
static pyspy_memsrc msrc;

static void build_source(void) {
    memset(&msrc, 0, sizeof msrc);
    mimpl.fail_code = 0;
    for (size_t i = 0; i < NREG; i++) {
        size_t n = regions[i].end - regions[i].start;
        if (!regions[i].present) {
            mimpl.data[i] = NULL;
            continue;
        }
        free(mimpl.data[i]);
        mimpl.data[i] = malloc(n);
        for (size_t k = 0; k < n; k++)
            mimpl.data[i][k] = (uint8_t)(k * 7 + i * 13 + (k >> 12));
    }
    for (int t = 0; t < 3; t++) {
        pyspy_thread *th = &threads[t];
        memset(th, 0, sizeof *th);
        th->tid = 1000 + t;
        th->ns_tid = 1 + t; /* as inside a container */
        snprintf(th->name, sizeof th->name, "worker-%d", t);
        th->state = t == 1 ? 'R' : 'S';
        th->syscall = t == 1 ? -1 : 202;
        th->has_regs = true;
        for (int r = 0; r < PYSPY_NREGS; r++)
            th->regs[r] =
                0x1111111100000000ull * (uint64_t)(t + 1) + (uint64_t)r;
        th->has_fpregs = t != 2;
        for (int b = 0; b < 512; b++)
            th->fpregs[b] = (uint8_t)(b + t);
        th->signal = t == 1 ? 11 : 0;
        th->crashed = t == 1;
    }
    module.path = "/usr/bin/fakepython";
    module.load_bias = 0x3ff000;
    module.start = 0x400000;
    module.end = 0x601000;
    module.build_id[0] = 0xab;
    module.build_id_len = 3;
    module.symbols = syms;
    module.nsymbols = 3;
    uint64_t av[8] = {AT_PAGESZ, 4096,     AT_ENTRY, 0x401000,
                      AT_PHDR,   0x400040, AT_NULL,  0};
    memcpy(auxv, av, sizeof av);

    msrc.ops = &mem_ops;
    msrc.impl = &mimpl;
    msrc.regions = regions;
    msrc.nregions = NREG;
    msrc.threads = threads;
    msrc.nthreads = 3;
    msrc.modules = &module;
    msrc.nmodules = 1;
    msrc.proc.pid = 1000;
    msrc.proc.ppid = 999;
    msrc.proc.exe = "/usr/bin/fakepython";
    msrc.proc.cmdline = "fakepython -c 'import time'";
    msrc.proc.capture_time_ns = 1700000000123456789ll;
    msrc.proc.lock = PYSPY_NONBLOCKING;
    msrc.proc.pause_ns = 4242;
    msrc.proc.ns_pid = 1;
    msrc.origin = "test";
    msrc.auxv = auxv;
    msrc.auxv_len = sizeof auxv;
}

static char dir[64];

static const char *tpath(const char *name) {
    static char p[4][128];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static uint8_t *slurp(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    struct stat st;
    fstat(fd, &st);
    uint8_t *b = malloc((size_t)st.st_size + 1);
    *len = (size_t)read(fd, b, (size_t)st.st_size);
    close(fd);
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t len) {
    int fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, 0600);
    if (len)
        CHECK(write(fd, b, len) == (ssize_t)len);
    close(fd);
}

static const char *write_snapshot(void) {
    build_source();
    const char *p = tpath("snap.core.zst");
    pyspy_snapshot_opts o = {
        .zstd_level = 0, .hide_progress = true, .tool_version = "test-1.0"};
    pyspy_snapshot_stats st = {0};
    pyspy_error err = {0};
    int rc = pyspy_snapshot_write(&msrc, &o, p, &st, &err);
    if (rc != 0)
        fprintf(stderr, "  write: %s\n", err.msg);
    CHECK(rc == 0);
    CHECK(st.file_bytes > 0);
    return p;
}

/* Everything that went in comes out. */
static void compare(pyspy_memsrc *s, const char *kind) {
    CHECK_STR(s->ops->kind, kind);
    CHECK(s->nregions == NREG);
    for (size_t i = 0; i < NREG && i < s->nregions; i++) {
        const pyspy_region *a = &regions[i], *b = &s->regions[i];
        CHECK(a->start == b->start && a->end == b->end);
        CHECK(a->present == b->present);
        CHECK(a->perms == b->perms);
        CHECK(a->file_offset == b->file_offset);
        CHECK((a->path == NULL) == (b->path == NULL));
        if (a->path && b->path)
            CHECK_STR(a->path, b->path);
        CHECK(a->build_id_len == b->build_id_len &&
              memcmp(a->build_id, b->build_id, a->build_id_len) == 0);
    }
    CHECK(s->nthreads == 3);
    for (size_t i = 0; i < 3 && i < s->nthreads; i++) {
        const pyspy_thread *b = &s->threads[i];
        const pyspy_thread *a = NULL;
        for (int k = 0; k < 3; k++)
            if (threads[k].tid == b->tid)
                a = &threads[k];
        CHECK(a != NULL);
        if (!a)
            continue;
        CHECK_STR(a->name, b->name);
        CHECK(a->state == b->state);
        CHECK(a->syscall == b->syscall);
        CHECK(b->has_regs && memcmp(a->regs, b->regs, sizeof a->regs) == 0);
        CHECK(a->has_fpregs == b->has_fpregs);
        if (a->has_fpregs)
            CHECK(memcmp(a->fpregs, b->fpregs, 512) == 0);
        CHECK(a->signal == b->signal);
        CHECK(a->crashed == b->crashed);
        CHECK(a->ns_tid == b->ns_tid);
    }
    /* gdb takes the first NT_PRSTATUS as the current thread */
    CHECK(s->nthreads > 0 && s->threads[0].crashed);
    CHECK(s->proc.pid == 1000 && s->proc.ppid == 999);
    CHECK_STR(s->proc.exe, "/usr/bin/fakepython");
    CHECK_STR(s->proc.cmdline, "fakepython -c 'import time'");
    CHECK(s->proc.capture_time_ns == 1700000000123456789ll);
    CHECK(s->proc.lock == PYSPY_NONBLOCKING);
    CHECK(s->proc.pause_ns == 4242);
    CHECK(s->proc.ns_pid == 1);
    CHECK(s->auxv_len == sizeof auxv &&
          memcmp(s->auxv, auxv, sizeof auxv) == 0);
    CHECK(s->nmodules == 1);
    if (s->nmodules == 1) {
        const pyspy_module *m = &s->modules[0];
        CHECK_STR(m->path, "/usr/bin/fakepython");
        CHECK(m->load_bias == 0x3ff000 && m->start == 0x400000 &&
              m->end == 0x601000);
        CHECK(m->build_id_len == 3 && m->build_id[0] == 0xab);
        CHECK(m->nsymbols == 3);
        uint64_t size = 0;
        CHECK(pyspy_memsrc_symbol(s, "fakepython", "_PyRuntime", &size) ==
              0x200500 + 0x3ff000);
        CHECK(size == 4096);
        CHECK(pyspy_memsrc_symbol(s, NULL, "nope", NULL) == 0);
    }
    /* memory */
    pyspy_error err = {0};
    for (size_t i = 0; i < NREG; i++) {
        if (!regions[i].present)
            continue;
        size_t n = regions[i].end - regions[i].start;
        uint8_t *buf = malloc(n);
        CHECK(pyspy_memsrc_read(s, regions[i].start, buf, n, &err) == 0);
        CHECK(memcmp(buf, mimpl.data[i], n) == 0);
        free(buf);
    }
    /* across two adjacent regions */
    uint8_t two[32];
    CHECK(pyspy_memsrc_read(s, 0x601000 - 16, two, 32, &err) == 0);
    CHECK(memcmp(two, mimpl.data[1] + 0x1000 - 16, 16) == 0);
    CHECK(memcmp(two + 16, mimpl.data[2], 16) == 0);
    uint8_t x[8];
    CHECK(pyspy_memsrc_read(s, 0x700100, x, 8, &err) == -1);
    CHECK(err.code == PYSPY_E_UNREADABLE);
    CHECK(pyspy_memsrc_read(s, 0x500000, x, 8, &err) == -1);
    CHECK(err.code == PYSPY_E_UNREADABLE);
    CHECK(pyspy_memsrc_read(s, 0x402ffc, x, 8, &err) == -1);
    CHECK(err.code == PYSPY_E_UNREADABLE);
}

TEST(snapshot_round_trip) {
    const char *p = write_snapshot();
    struct stat st;
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
    pyspy_memsrc *s = NULL;
    pyspy_error err = {0};
    int rc = pyspy_memsrc_open_file(p, &s, &err);
    if (rc != 0)
        fprintf(stderr, "  open: %s\n", err.msg);
    CHECK(rc == 0);
    if (s) {
        compare(s, "snapshot");
        pyspy_memsrc_close(s);
    }
}

/* zstd -d of a snapshot is a plain core; a plain core compressed as one
 * stream is what systemd-coredump stores. */
static uint8_t *decompressed_core(size_t *len) {
    const char *p = write_snapshot();
    size_t clen;
    uint8_t *c = slurp(p, &clen);
    size_t cap = 64 << 20;
    uint8_t *d = malloc(cap);
    *len = ZSTD_decompress(d, cap, c, clen);
    CHECK(!ZSTD_isError(*len));
    free(c);
    return d;
}

TEST(plain_and_whole_stream_cores) {
    size_t len;
    uint8_t *d = decompressed_core(&len);
    const char *plain = tpath("plain.core");
    spit(plain, d, len);
    pyspy_memsrc *s = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_memsrc_open_file(plain, &s, &err) == 0);
    if (s) {
        compare(s, "core");
        pyspy_memsrc_close(s);
    }
    size_t cap = ZSTD_compressBound(len);
    uint8_t *z = malloc(cap);
    size_t zlen = ZSTD_compress(z, cap, d, len, 3);
    const char *zp = tpath("whole.core.zst");
    spit(zp, z, zlen);
    s = NULL;
    CHECK(pyspy_memsrc_open_file(zp, &s, &err) == 0);
    if (s) {
        compare(s, "zstd-core");
        pyspy_memsrc_close(s);
    }
    /* truncated whole stream */
    spit(zp, z, zlen / 2);
    CHECK(pyspy_memsrc_open_file(zp, &s, &err) == -1);
    CHECK(strstr(err.msg, "truncated") != NULL);
    free(z);
    free(d);
}

TEST(digest_mismatch_names_the_region) {
    size_t len;
    uint8_t *d = decompressed_core(&len);
    /* region 2 (anonymous, 0x601000) starts at 4096 + 0x3000 + 0x1000 */
    d[4096 + 0x4000 + 100] ^= 1;
    const char *plain = tpath("bad.core");
    spit(plain, d, len);
    pyspy_memsrc *s = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_memsrc_open_file(plain, &s, &err) == 0);
    if (s) {
        uint8_t x[8];
        CHECK(pyspy_memsrc_read(s, 0x400000, x, 8, &err) == 0);
        CHECK(pyspy_memsrc_read(s, 0x610000, x, 8, &err) == -1);
        CHECK(err.code == PYSPY_E_FORMAT);
        CHECK(strstr(err.msg, "0x601000-0x623000") != NULL);
        pyspy_memsrc_close(s);
    }
    free(d);
}

TEST(not_a_core_and_truncated) {
    const char *t = tpath("text.txt");
    spit(t, (const uint8_t *)"hello world\n", 12);
    pyspy_memsrc *s = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_memsrc_open_file(t, &s, &err) == -1);
    CHECK(strstr(err.msg, "is not a core file or snapshot") != NULL);
    spit(t, NULL, 0);
    CHECK(pyspy_memsrc_open_file(t, &s, &err) == -1);
    CHECK(strstr(err.msg, "text.txt is empty") != NULL);
    spit(t,
         (const uint8_t *)"\xfd"
                          "7zXZ\0\0\0",
         8);
    CHECK(pyspy_memsrc_open_file(t, &s, &err) == -1);
    CHECK(strstr(err.msg, "is xz-compressed; decompress it first (xz -d)") !=
          NULL);
    CHECK(pyspy_memsrc_open_file(tpath("missing"), &s, &err) == -1);
    CHECK(err.code == PYSPY_E_IO);

    const char *p = write_snapshot();
    size_t clen;
    uint8_t *c = slurp(p, &clen);
    const char *cut = tpath("cut.core.zst");
    spit(cut, c, clen - 1);
    CHECK(pyspy_memsrc_open_file(cut, &s, &err) == -1);
    CHECK(strstr(err.msg, "cut.core.zst is truncated (") != NULL);
    /* a damaged seek table is damage; with allow_damaged the frames
     * still read as one stream, the table named */
    uint8_t *bad = malloc(clen);
    memcpy(bad, c, clen);
    bad[clen - 9] ^= 0x01; /* frame count */
    spit(cut, bad, clen);
    s = NULL;
    CHECK(pyspy_memsrc_open_file(cut, &s, &err) == -1);
    CHECK(strstr(err.msg, "is corrupted (seek table") != NULL);
    pyspy_file_opts lax = {.allow_damaged = true};
    CHECK(pyspy_memsrc_open_file_with(cut, &lax, &s, &err) == 0);
    if (s) {
        compare(s, "zstd-core");
        CHECK(s->damage && strstr(s->damage, "seek table") != NULL);
        pyspy_memsrc_close(s);
    }
    free(bad);
    /* a strange ELF: not a core */
    uint8_t elf[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
    elf[16] = ET_EXEC;
    spit(t, elf, sizeof elf);
    CHECK(pyspy_memsrc_open_file(t, &s, &err) == -1);
    CHECK(strstr(err.msg, "ELF executable, not a core file or snapshot") !=
          NULL);
    free(c);
}

/* Every truncation and byte flip of a plain core gives an error or a
 * source that still answers reads safely: never a crash (ASan watches). */
TEST(hostile_plain_cores) {
    size_t len;
    uint8_t *d = decompressed_core(&len);
    uint8_t *m = malloc(len);
    const char *p = tpath("hostile.core");
    int errors = 0;
    for (size_t cut = 0; cut < len; cut += len / 61 + 1) {
        spit(p, d, cut);
        pyspy_memsrc *s = NULL;
        pyspy_error err = {0};
        if (pyspy_memsrc_open_file(p, &s, &err) == 0)
            pyspy_memsrc_close(s);
        else
            errors++;
    }
    CHECK(errors > 50);
    /* flips in the header, program headers and notes (at the end) */
    uint32_t x = 7;
    for (int round = 0; round < 400; round++) {
        memcpy(m, d, len);
        for (int k = 0; k < 4; k++) {
            x = x * 1103515245u + 12345u;
            size_t at = round % 2 ? (x >> 8) % 64 : len - 1 - (x >> 8) % 8192;
            m[at] ^= (uint8_t)(1u << (x % 8));
        }
        spit(p, m, len);
        pyspy_memsrc *s = NULL;
        pyspy_error err = {0};
        if (pyspy_memsrc_open_file(p, &s, &err) == 0) {
            uint8_t buf[64];
            for (size_t i = 0; i < s->nregions; i++)
                pyspy_memsrc_read(s, s->regions[i].start, buf, sizeof buf,
                                  &err);
            pyspy_memsrc_close(s);
        } else {
            CHECK(err.msg[0] != 0 && strchr(err.msg, '\n') == NULL);
        }
    }
    free(m);
    free(d);
}

TEST(write_errors_leave_no_file) {
    build_source();
    pyspy_snapshot_opts o = {
        .zstd_level = 0, .hide_progress = true, .tool_version = NULL};
    pyspy_error err = {0};
    CHECK(pyspy_snapshot_write(&msrc, &o, "/nonexistent-dir/x.core.zst", NULL,
                               &err) == -1);
    CHECK(err.code == PYSPY_E_IO);
    if (access("/dev/full", W_OK) == 0) {
        /* ENOSPC: /dev/full cannot hold a temp file; use a tiny tmpfs
         * only when available -- here, check the message via a read-only
         * target dir instead */
    }
    /* nothing left behind in the test dir except what we made */
    char cmd[128];
    snprintf(cmd, sizeof cmd,
             "ls -a %s | grep -c '^\\..*XXXX\\|^\\.snap' >/dev/null", dir);
    CHECK(system(cmd) != 0);
}

TEST(unreadable_region_is_recorded_absent) {
    build_source();
    /* the live target unmapped part of region 2 while it was copied */
    mimpl.fail_at = 0x610000;
    mimpl.fail_code = PYSPY_E_UNREADABLE;
    const char *p = tpath("vanished.core.zst");
    pyspy_snapshot_opts o = {
        .zstd_level = 0, .hide_progress = true, .tool_version = NULL};
    pyspy_error err = {0};
    CHECK(pyspy_snapshot_write(&msrc, &o, p, NULL, &err) == 0);
    pyspy_memsrc *s = NULL;
    CHECK(pyspy_memsrc_open_file(p, &s, &err) == 0);
    if (s) {
        CHECK(s->nregions == NREG);
        CHECK(s->regions[2].start == 0x601000 && !s->regions[2].present);
        CHECK(s->regions[1].present && s->regions[4].present);
        uint8_t x[16];
        CHECK(pyspy_memsrc_read(s, 0x601000, x, 16, &err) == -1);
        CHECK(err.code == PYSPY_E_UNREADABLE);
        CHECK(pyspy_memsrc_read(s, 0x7f0000000000, x, 16, &err) == 0);
        CHECK(memcmp(x, mimpl.data[4], 16) == 0);
        pyspy_memsrc_close(s);
    }
    /* any other failure is an error, and leaves no file behind */
    mimpl.fail_code = PYSPY_E_FORMAT;
    const char *q = tpath("broken.core.zst");
    CHECK(pyspy_snapshot_write(&msrc, &o, q, NULL, &err) == -1);
    CHECK(strstr(err.msg, "injected failure") != NULL);
    CHECK(access(q, F_OK) != 0);
    mimpl.fail_code = 0;
}

/* More than 65535 program headers: e_phnum = PN_XNUM and the count in
 * section 0, as the kernel writes it; libelf must agree. */
TEST(many_regions_use_pn_xnum) {
    build_source();
    size_t n = 70000;
    pyspy_region *many = calloc(n, sizeof *many);
    for (size_t i = 0; i < n; i++) {
        many[i].start = 0x10000000 + i * 0x2000;
        many[i].end = many[i].start + 0x1000;
        many[i].perms = PYSPY_PERM_R;
        many[i].present = false;
    }
    /* one present page to read back; mem_read serves region i from
     * data[i] */
    many[5].present = true;
    uint8_t *page = malloc(0x1000);
    memset(page, 0x5a, 0x1000);
    uint8_t *keep[8];
    memcpy(keep, mimpl.data, sizeof keep);
    memset(mimpl.data, 0, sizeof mimpl.data);
    mimpl.data[5] = page;
    msrc.regions = many;
    msrc.nregions = n;
    const char *p = tpath("many.core.zst");
    pyspy_snapshot_opts o = {
        .zstd_level = 1, .hide_progress = true, .tool_version = NULL};
    pyspy_error err = {0};
    CHECK(pyspy_snapshot_write(&msrc, &o, p, NULL, &err) == 0);
    memcpy(mimpl.data, keep, sizeof keep);
    pyspy_memsrc *s = NULL;
    CHECK(pyspy_memsrc_open_file(p, &s, &err) == 0);
    if (s) {
        CHECK(s->nregions == n);
        uint8_t x[8];
        CHECK(pyspy_memsrc_read(s, many[5].start + 8, x, 8, &err) == 0);
        CHECK(x[0] == 0x5a && x[7] == 0x5a);
        CHECK(pyspy_memsrc_read(s, many[6].start, x, 8, &err) == -1);
        pyspy_memsrc_close(s);
    }
    /* libelf's own view of the decompressed core */
    size_t clen;
    uint8_t *c = slurp(p, &clen);
    size_t cap = 64 << 20;
    uint8_t *d = malloc(cap);
    size_t dlen = ZSTD_decompress(d, cap, c, clen);
    CHECK(!ZSTD_isError(dlen));
    elf_version(EV_CURRENT);
    Elf *e = elf_memory((char *)d, dlen);
    size_t phnum = 0;
    CHECK(e && elf_getphdrnum(e, &phnum) == 0 && phnum == n + 1);
    GElf_Ehdr eh;
    CHECK(gelf_getehdr(e, &eh) && eh.e_phnum == PN_XNUM &&
          eh.e_type == ET_CORE);
    if (e)
        elf_end(e);
    free(d);
    free(c);
    free(page);
    free(many);
    msrc.regions = regions;
    msrc.nregions = NREG;
}

/* ENOSPC on a 64 KiB tmpfs in a private mount namespace: one line naming
 * the file, and no temporary file left behind. */
TEST(no_space_left) {
    char small[128];
    snprintf(small, sizeof small, "%s/small", dir);
    mkdir(small, 0700);
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", small, "tmpfs", 0, "size=64k") != 0) {
        printf("# no_space_left: cannot mount a small tmpfs here; "
               "checked nothing\n");
        return;
    }
    build_source();
    /* incompressible memory so the output outgrows 64 KiB */
    uint32_t x = 99;
    for (size_t k = 0; k < 0x22000; k++) {
        x = x * 1103515245u + 12345u;
        mimpl.data[2][k] = (uint8_t)(x >> 24);
    }
    char path[256];
    snprintf(path, sizeof path, "%s/full.core.zst", small);
    pyspy_snapshot_opts o = {
        .zstd_level = 0, .hide_progress = true, .tool_version = NULL};
    pyspy_error err = {0};
    CHECK(pyspy_snapshot_write(&msrc, &o, path, NULL, &err) == -1);
    char want[300];
    snprintf(want, sizeof want, "no space left on device writing %s", path);
    CHECK_STR(err.msg, want);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s)\"", small);
    CHECK(system(cmd) == 0);
    umount(small);
}

TEST(ingest_with_filter) {
    const char *p = write_snapshot();
    const char *q = tpath("filtered.core.zst");
    pyspy_snapshot_opts o = {
        .zstd_level = 0, .hide_progress = true, .tool_version = NULL};
    pyspy_error err = {0};
    CHECK(pyspy_core_ingest_filtered(p, q, &o, PYSPY_FILTER_ANON_PRIVATE, NULL,
                                     &err) == 0);
    pyspy_memsrc *s = NULL;
    CHECK(pyspy_memsrc_open_file(q, &s, &err) == 0);
    if (s) {
        CHECK(s->nregions == NREG);
        /* file text: out; written file data and anonymous: in; shared
         * file: out; absent stays absent */
        CHECK(!s->regions[0].present);
        CHECK(s->regions[1].present);
        CHECK(s->regions[2].present);
        CHECK(!s->regions[3].present);
        CHECK(!s->regions[4].present);
        CHECK(s->nthreads == 3 && s->nmodules == 1);
        pyspy_memsrc_close(s);
    }
    /* no filter: the same shape and bytes as the input */
    CHECK(pyspy_core_ingest(p, q, &o, NULL, &err) == 0);
    s = NULL;
    CHECK(pyspy_memsrc_open_file(q, &s, &err) == 0);
    if (s) {
        compare(s, "snapshot");
        pyspy_memsrc_close(s);
    }
    CHECK(pyspy_core_ingest(tpath("nonexistent"), q, &o, NULL, &err) == -1);
    CHECK(err.code == PYSPY_E_IO);
}

TEST(empty_region_is_dropped) {
    build_source();
    pyspy_region rs[NREG + 1];
    memcpy(rs, regions, 2 * sizeof *rs);
    rs[2] = (pyspy_region){0x601000, 0x601000, 0, PYSPY_PERM_R, true, NULL,
                           {0},      0,        0, false};
    memcpy(rs + 3, regions + 2, (NREG - 2) * sizeof *rs);
    /* mem_read indexes data by region: shift it the same way */
    uint8_t *keep[8];
    memcpy(keep, mimpl.data, sizeof keep);
    memmove(mimpl.data + 3, mimpl.data + 2, (NREG - 2) * sizeof keep[0]);
    mimpl.data[2] = NULL;
    msrc.regions = rs;
    msrc.nregions = NREG + 1;
    const char *p = tpath("empty.core.zst");
    pyspy_snapshot_opts o = {
        .zstd_level = 0, .hide_progress = true, .tool_version = NULL};
    pyspy_error err = {0};
    CHECK(pyspy_snapshot_write(&msrc, &o, p, NULL, &err) == 0);
    memcpy(mimpl.data, keep, sizeof keep);
    msrc.regions = regions;
    msrc.nregions = NREG;
    pyspy_memsrc *s = NULL;
    int rc = pyspy_memsrc_open_file(p, &s, &err);
    if (rc)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK(rc == 0);
    if (s) {
        compare(s, "snapshot");
        pyspy_memsrc_close(s);
    }
}

/* Byte flips anywhere in a compressed snapshot: every outcome is an
 * error line or good data, never a crash. */
TEST(hostile_snapshots) {
    const char *p = write_snapshot();
    size_t clen;
    uint8_t *c = slurp(p, &clen);
    uint8_t *m = malloc(clen);
    const char *q = tpath("hostile.core.zst");
    uint32_t x = 3;
    int failures = 0;
    for (int round = 0; round < 300; round++) {
        memcpy(m, c, clen);
        x = x * 1103515245u + 12345u;
        size_t at = round % 3 ? clen - 1 - (x >> 8) % (clen < 600 ? clen : 600)
                              : (x >> 8) % clen;
        m[at] ^= (uint8_t)(1u << (x % 8));
        spit(q, m, clen);
        pyspy_memsrc *s = NULL;
        pyspy_error err = {0};
        if (pyspy_memsrc_open_file(q, &s, &err) != 0) {
            failures++;
            CHECK(err.msg[0] && !strchr(err.msg, '\n'));
            continue;
        }
        for (size_t i = 0; i < s->nregions; i++) {
            size_t n = s->regions[i].end - s->regions[i].start;
            if (n > (1u << 20))
                n = 1u << 20;
            uint8_t *buf = malloc(n);
            if (pyspy_memsrc_read(s, s->regions[i].start, buf, n, &err) != 0)
                failures++;
            free(buf);
        }
        pyspy_memsrc_close(s);
    }
    CHECK(failures > 100);
    free(m);
    free(c);
}

/* Block digests: a read checks only the blocks it touches, so damage in
 * one block of a big region spares reads elsewhere in it. */
TEST(block_digests_check_what_is_read) {
    build_source();
    size_t big = 3 * (1u << 20) + 4096;
    pyspy_region r1 = {
        0x10000000, 0x10000000 + big, 0, PYSPY_PERM_R, true, NULL, {0}, 0, 0,
        false};
    uint8_t *keep[8];
    memcpy(keep, mimpl.data, sizeof keep);
    memset(mimpl.data, 0, sizeof mimpl.data);
    mimpl.data[0] = malloc(big);
    for (size_t k = 0; k < big; k++)
        mimpl.data[0][k] = (uint8_t)(k * 31 + (k >> 16));
    msrc.regions = &r1;
    msrc.nregions = 1;
    const char *p = tpath("blocks.core.zst");
    pyspy_snapshot_opts o = {
        .zstd_level = 0, .hide_progress = true, .tool_version = NULL};
    pyspy_error err = {0};
    CHECK(pyspy_snapshot_write(&msrc, &o, p, NULL, &err) == 0);
    free(mimpl.data[0]);
    memcpy(mimpl.data, keep, sizeof keep);
    msrc.regions = regions;
    msrc.nregions = NREG;

    size_t clen;
    uint8_t *c = slurp(p, &clen);
    size_t cap = 16 << 20;
    uint8_t *d = malloc(cap);
    size_t dlen = ZSTD_decompress(d, cap, c, clen);
    CHECK(!ZSTD_isError(dlen));
    /* the region's bytes start at 4096; damage block 2 */
    d[4096 + 2 * (1u << 20) + 77] ^= 0x10;
    const char *q = tpath("blocks.core");
    spit(q, d, dlen);
    pyspy_memsrc *s = NULL;
    CHECK(pyspy_memsrc_open_file(q, &s, &err) == 0);
    if (s) {
        uint8_t x[64];
        CHECK(pyspy_memsrc_read(s, 0x10000000 + 100, x, 64, &err) == 0);
        CHECK(pyspy_memsrc_read(s, 0x10000000 + (1u << 20) + 5, x, 64, &err) ==
              0);
        CHECK(pyspy_memsrc_read(s, 0x10000000 + 3 * (1u << 20), x, 64, &err) ==
              0);
        CHECK(pyspy_memsrc_read(s, 0x10000000 + 2 * (1u << 20) + 4000, x, 8,
                                &err) == -1);
        /* the block, not the whole region */
        CHECK(strstr(err.msg,
                     "memory 0x10200000-0x10300000 fails its digest") != NULL);
        /* a read spanning into the bad block fails too */
        CHECK(pyspy_memsrc_read(s, 0x10000000 + 2 * (1u << 20) - 8, x, 16,
                                &err) == -1);
        pyspy_memsrc_close(s);
    }
    free(d);
    free(c);
}

/* ------------------------------------------- a kernel-style core by hand */

static void note(uint8_t *buf, size_t *at, const char *owner, uint32_t type,
                 const void *desc, size_t len) {
    Elf64_Nhdr h = {(Elf64_Word)strlen(owner) + 1, (Elf64_Word)len, type};
    memcpy(buf + *at, &h, sizeof h);
    *at += sizeof h;
    memcpy(buf + *at, owner, h.n_namesz);
    *at += (h.n_namesz + 3) & ~3u;
    memcpy(buf + *at, desc, len);
    *at += (len + 3) & ~3u;
}

/* Two threads (the second took SIGSEGV in a read(2)... the kernel writes
 * the dumping thread first), a file mapped at offset 0 of which only the
 * ELF header page was dumped (coredump_filter bit 4), an anonymous
 * region, NT_FILE, NT_AUXV, NT_PRPSINFO. */
static size_t make_kernel_core(uint8_t *img, const char *path,
                               const uint8_t *header) {
    const uint64_t text = 0x555555554000, anon = 0x7ffff7ff0000;
    memset(img, 0, 3 * 4096);
    Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_ident[EI_VERSION] = EV_CURRENT;
    eh->e_type = ET_CORE;
    eh->e_machine = EM_X86_64;
    eh->e_version = EV_CURRENT;
    eh->e_phoff = sizeof *eh;
    eh->e_ehsize = sizeof *eh;
    eh->e_phentsize = sizeof(Elf64_Phdr);
    eh->e_phnum = 3;
    Elf64_Phdr *ph = (Elf64_Phdr *)(img + sizeof *eh);
    size_t at = sizeof *eh + 3 * sizeof *ph;
    size_t notes = at;
    struct elf_prstatus ps;
    memset(&ps, 0, sizeof ps);
    ps.pr_pid = 4242;
    ps.pr_cursig = 11;
    uint64_t regs[PYSPY_NREGS] = {0};
    regs[PYSPY_REG_RIP] = text + 0x1234;
    regs[PYSPY_REG_ORIG_RAX] = 0; /* read(2) */
    memcpy(&ps.pr_reg, regs, sizeof regs);
    note(img, &at, "CORE", NT_PRSTATUS, &ps, sizeof ps);
    struct elf_prpsinfo pi;
    memset(&pi, 0, sizeof pi);
    pi.pr_pid = 4240;
    pi.pr_ppid = 1;
    strcpy(pi.pr_fname, "kapp");
    strcpy(pi.pr_psargs, "kapp --flag   ");
    note(img, &at, "CORE", NT_PRPSINFO, &pi, sizeof pi);
    uint64_t av[6] = {AT_PAGESZ, 4096, AT_ENTRY, text + 0x100, AT_NULL, 0};
    note(img, &at, "CORE", NT_AUXV, av, sizeof av);
    uint8_t nf[5 * 8 + 256] = {0};
    uint64_t nfv[5] = {1, 4096, text, text + 3 * 4096, 0};
    memcpy(nf, nfv, sizeof nfv);
    snprintf((char *)nf + sizeof nfv, 256, "%s", path);
    note(img, &at, "CORE", NT_FILE, nf, sizeof nfv + strlen(path) + 1);
    ps.pr_pid = 4240;
    regs[PYSPY_REG_ORIG_RAX] = (uint64_t)-1; /* running user code */
    memcpy(&ps.pr_reg, regs, sizeof regs);
    note(img, &at, "CORE", NT_PRSTATUS, &ps, sizeof ps);
    ph[0] = (Elf64_Phdr){PT_NOTE, 0, notes, 0, 0, at - notes, 0, 4};
    /* the dumped ELF header page of the file, with a GNU build-id note */
    uint8_t *page = img + 4096;
    Elf64_Ehdr *fe = (Elf64_Ehdr *)page;
    memcpy(fe->e_ident, ELFMAG, SELFMAG);
    fe->e_ident[EI_CLASS] = ELFCLASS64;
    fe->e_ident[EI_DATA] = ELFDATA2LSB;
    fe->e_ident[EI_VERSION] = EV_CURRENT;
    fe->e_type = ET_DYN;
    fe->e_machine = EM_X86_64;
    fe->e_version = EV_CURRENT;
    fe->e_phoff = sizeof *fe;
    fe->e_ehsize = sizeof *fe;
    fe->e_phentsize = sizeof(Elf64_Phdr);
    fe->e_phnum = 1;
    fe->e_shoff = 0x100000; /* beyond the page, as in real files */
    fe->e_shnum = 30;
    size_t fat = 0x200;
    uint8_t bid[20];
    for (int i = 0; i < 20; i++)
        bid[i] = (uint8_t)(0xb0 + i);
    note(page, &fat, "GNU", NT_GNU_BUILD_ID, bid, sizeof bid);
    Elf64_Phdr *fph = (Elf64_Phdr *)(page + sizeof *fe);
    *fph = (Elf64_Phdr){PT_NOTE, PF_R, 0x200, 0x200, 0, fat - 0x200, 0, 4};
    if (header)
        memcpy(page, header, 4096);
    ph[1] =
        (Elf64_Phdr){PT_LOAD, PF_R | PF_X, 4096, text, 0, 4096, 3 * 4096, 4096};
    memset(img + 2 * 4096, 0x77, 4096);
    ph[2] =
        (Elf64_Phdr){PT_LOAD, PF_R | PF_W, 2 * 4096, anon, 0, 4096, 4096, 4096};
    return 3 * 4096;
}

TEST(kernel_style_core) {
    uint8_t img[3 * 4096];
    size_t len = make_kernel_core(img, "/nonexistent/kapp", NULL);
    const char *p = tpath("kernel.core");
    spit(p, img, len);
    pyspy_memsrc *s = NULL;
    pyspy_error err = {0};
    int rc = pyspy_memsrc_open_file(p, &s, &err);
    if (rc)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK(rc == 0);
    if (!s)
        return;
    CHECK_STR(s->ops->kind, "core");
    /* the header page is present, the rest of the mapping absent */
    CHECK(s->nregions == 3);
    if (s->nregions == 3) {
        CHECK(s->regions[0].start == 0x555555554000 &&
              s->regions[0].end == 0x555555555000 && s->regions[0].present);
        CHECK(s->regions[1].start == 0x555555555000 &&
              s->regions[1].end == 0x555555557000 && !s->regions[1].present);
        CHECK_STR(s->regions[1].path, "/nonexistent/kapp");
        CHECK(s->regions[1].file_offset == 4096);
        CHECK(s->regions[0].perms == (PYSPY_PERM_R | PYSPY_PERM_X));
        CHECK(s->regions[2].path == NULL && s->regions[2].present);
        CHECK(s->regions[0].build_id_len == 20 &&
              s->regions[0].build_id[0] == 0xb0);
    }
    CHECK(s->nthreads == 2);
    if (s->nthreads == 2) {
        CHECK(s->threads[0].tid == 4242 && s->threads[0].crashed);
        CHECK(s->threads[0].signal == 11 && s->threads[0].syscall == 0);
        CHECK(s->threads[1].tid == 4240 && !s->threads[1].crashed);
        CHECK(s->threads[1].syscall == -1);
        CHECK(s->threads[0].regs[PYSPY_REG_RIP] == 0x555555555234);
    }
    CHECK(s->proc.pid == 4240 && s->proc.ppid == 1);
    CHECK(s->proc.crash_signal == 11);
    CHECK_STR(s->proc.exe, "/nonexistent/kapp");
    CHECK_STR(s->proc.cmdline, "kapp --flag");
    CHECK(s->proc.capture_time_ns > 0);
    /* the file is not on this host: a module with the build-id from the
     * core and no symbols */
    CHECK(s->nmodules == 1);
    if (s->nmodules == 1) {
        CHECK_STR(s->modules[0].path, "/nonexistent/kapp");
        CHECK(s->modules[0].build_id_len == 20 &&
              s->modules[0].build_id[19] == 0xb0 + 19);
        CHECK(s->modules[0].symbols == NULL);
        CHECK(s->modules[0].start == 0x555555554000 &&
              s->modules[0].end == 0x555555557000);
    }
    uint8_t x[8];
    CHECK(pyspy_memsrc_read(s, 0x7ffff7ff0000, x, 8, &err) == 0 &&
          x[0] == 0x77);
    CHECK(pyspy_memsrc_read(s, 0x555555556000, x, 8, &err) == -1);
    CHECK(err.code == PYSPY_E_UNREADABLE);
    /* ingest keeps the shape */
    const char *q = tpath("kernel.core.zst");
    pyspy_snapshot_opts o = {
        .zstd_level = 0, .hide_progress = true, .tool_version = NULL};
    CHECK(pyspy_core_ingest(p, q, &o, NULL, &err) == 0);
    pyspy_memsrc_close(s);
    s = NULL;
    CHECK(pyspy_memsrc_open_file(q, &s, &err) == 0);
    if (s) {
        CHECK(s->nregions == 3 && s->nthreads == 2 && s->nmodules == 1);
        CHECK(s->threads[0].crashed && s->threads[0].tid == 4242);
        CHECK(s->threads[1].state == '?');
        CHECK(s->proc.crash_signal == 11);
        CHECK_STR(s->proc.cmdline, "kapp --flag");
        CHECK(s->nregions == 3 && !s->regions[1].present &&
              s->regions[0].build_id_len == 20);
        pyspy_memsrc_close(s);
    }
}

/* When this host has the mapped file with the build-id the core shows,
 * the pages the kernel left out are read from it. The test binary itself
 * plays the mapped file. */
TEST(kernel_core_pages_from_host_file) {
    char exe[256];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(n > 0);
    if (n <= 0)
        return;
    exe[n] = 0;
    size_t flen = 0;
    uint8_t *file = slurp(exe, &flen);
    CHECK(file && flen > 3 * 4096);
    if (!file || flen <= 3 * 4096)
        return;
    uint8_t img[3 * 4096];
    size_t len = make_kernel_core(img, exe, file);
    const char *p = tpath("hostfile.core");
    spit(p, img, len);
    pyspy_memsrc *s = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_memsrc_open_file(p, &s, &err) == 0);
    if (s) {
        CHECK(s->nmodules == 1 && s->modules[0].nsymbols > 0);
        CHECK(s->nregions == 3 && s->regions[1].present);
        uint8_t x[64];
        CHECK(pyspy_memsrc_read(s, 0x555555554000 + 4096 + 100, x, 64, &err) ==
              0);
        CHECK(memcmp(x, file + 4096 + 100, 64) == 0);
        /* across the dumped header page into the file's bytes */
        CHECK(pyspy_memsrc_read(s, 0x555555554000 + 4096 - 32, x, 64, &err) ==
              0);
        CHECK(memcmp(x, file + 4096 - 32, 64) == 0);
        pyspy_memsrc_close(s);
    }
    /* as gdb's gcore writes it: no segment at all for the rest of the
     * file mapping, only its NT_FILE entry */
    Elf64_Phdr *ph = (Elf64_Phdr *)(img + sizeof(Elf64_Ehdr));
    ph[1].p_memsz = 4096;
    spit(p, img, len);
    s = NULL;
    CHECK(pyspy_memsrc_open_file(p, &s, &err) == 0);
    if (s) {
        CHECK(s->nregions == 3 && s->regions[1].present);
        CHECK(s->regions[1].start == 0x555555555000 &&
              s->regions[1].end == 0x555555557000);
        CHECK(s->regions[1].file_offset == 4096);
        uint8_t x[64];
        CHECK(pyspy_memsrc_read(s, 0x555555554000 + 2 * 4096 + 8, x, 64,
                                &err) == 0);
        CHECK(memcmp(x, file + 2 * 4096 + 8, 64) == 0);
        pyspy_memsrc_close(s);
    }
    /* another build of the file (its build-id differs from the core's):
     * no symbols, and the left-out pages stay absent */
    uint8_t *other = malloc(4096);
    memcpy(other, file, 4096);
    /* the build-id note: namesz 4, descsz 20, NT_GNU_BUILD_ID, "GNU" */
    static const uint8_t hdr[16] = {4, 0, 0, 0, 20,  0,   0,   0,
                                    3, 0, 0, 0, 'G', 'N', 'U', 0};
    uint8_t *id = memmem(other, 4096, hdr, sizeof hdr);
    CHECK(id != NULL);
    if (id)
        id[16] ^= 0xff;
    len = make_kernel_core(img, exe, other);
    spit(p, img, len);
    s = NULL;
    CHECK(pyspy_memsrc_open_file(p, &s, &err) == 0);
    if (s) {
        CHECK(s->nmodules == 1 && s->modules[0].symbols == NULL);
        CHECK(s->nregions == 3 && !s->regions[1].present);
        pyspy_memsrc_close(s);
    }
    free(other);
    free(file);
}

/* A writable private file mapping the filter left out (a .data that may
 * have been written) is not filled from the host's file: its bytes read
 * as unreadable, not as the file's initial values. */
TEST(writable_file_pages_not_from_host_file) {
    char exe[256];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(n > 0);
    if (n <= 0)
        return;
    exe[n] = 0;
    size_t flen = 0;
    uint8_t *file = slurp(exe, &flen);
    CHECK(file && flen > 3 * 4096);
    if (!file || flen <= 3 * 4096) {
        free(file);
        return;
    }
    uint8_t img[3 * 4096];
    size_t len = make_kernel_core(img, exe, file);
    Elf64_Phdr *ph = (Elf64_Phdr *)(img + sizeof(Elf64_Ehdr));
    ph[1].p_flags = PF_R | PF_W;
    const char *p = tpath("hostfile-w.core");
    spit(p, img, len);
    pyspy_memsrc *s = NULL;
    pyspy_error err = {0};
    CHECK(pyspy_memsrc_open_file(p, &s, &err) == 0);
    if (s) {
        /* the symbols still come from the matching host file */
        CHECK(s->nmodules == 1 && s->modules[0].nsymbols > 0);
        CHECK(s->nregions == 3 && !s->regions[1].present);
        CHECK(s->regions[1].perms & PYSPY_PERM_W);
        uint8_t x[64];
        CHECK(pyspy_memsrc_read(s, 0x555555554000 + 4096 + 100, x, 64, &err) ==
              -1);
        CHECK(err.code == PYSPY_E_UNREADABLE);
        /* the dumped header page still reads */
        CHECK(pyspy_memsrc_read(s, 0x555555554000, x, 64, &err) == 0);
        CHECK(memcmp(x, file, 64) == 0);
        pyspy_memsrc_close(s);
    }
    free(file);
}

/* Byte flips over a kernel-style core, its notes and the dumped ELF
 * header page (parsed for the build-id) included: errors or sane
 * sources, never a crash. */
TEST(hostile_kernel_cores) {
    uint8_t img[3 * 4096], m[3 * 4096];
    size_t len = make_kernel_core(img, "/nonexistent/kapp", NULL);
    const char *p = tpath("hostile-k.core");
    uint32_t x = 11;
    for (int round = 0; round < 600; round++) {
        memcpy(m, img, len);
        for (int k = 0; k < 3; k++) {
            x = x * 1103515245u + 12345u;
            /* notes live in the first page, the ELF header page next */
            size_t at = (x >> 8) % (2 * 4096);
            m[at] ^= (uint8_t)(1u << (x % 8));
        }
        spit(p, m, len);
        pyspy_memsrc *s = NULL;
        pyspy_error err = {0};
        if (pyspy_memsrc_open_file(p, &s, &err) == 0) {
            uint8_t buf[64];
            for (size_t i = 0; i < s->nregions; i++)
                pyspy_memsrc_read(s, s->regions[i].start, buf, sizeof buf,
                                  &err);
            pyspy_memsrc_close(s);
        } else {
            CHECK(err.msg[0] && !strchr(err.msg, '\n'));
        }
    }
}

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/pyspy-core-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
}

static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    for (size_t i = 0; i < NREG; i++)
        free(mimpl.data[i]);
}

TEST_MAIN(T(setup), T(snapshot_round_trip), T(plain_and_whole_stream_cores),
          T(digest_mismatch_names_the_region), T(not_a_core_and_truncated),
          T(hostile_plain_cores), T(write_errors_leave_no_file),
          T(unreadable_region_is_recorded_absent), T(many_regions_use_pn_xnum),
          T(no_space_left), T(ingest_with_filter), T(empty_region_is_dropped),
          T(hostile_snapshots), T(block_digests_check_what_is_read),
          T(kernel_style_core), T(kernel_core_pages_from_host_file),
          T(writable_file_pages_not_from_host_file), T(hostile_kernel_cores),
          T(teardown))
