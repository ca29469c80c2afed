/* What the libFuzzer harnesses of tests/fuzz/ share with each other and
 * with seedgen.c, which writes their seeds from the fixtures: a file
 * descriptor holding the input, and a "memory image" (a target's memory
 * as a list of chunks, plus the few process facts a walk uses) with a
 * memory source that serves it.
 *
 * Image layout (little-endian), read by pyspy_fuzz_image_parse:
 *   u8 major, u8 minor, u8 flags (PYSPY_FUZZ_*), u8 nthreads,
 *   u64 runtime, u64 interp_head, u64 tstate_current, u32 pid,
 *   nthreads x { u32 tid, u8 state, u8 has_regs, i16 syscall,
 *                u64 rsp, u64 fs_base, u64 orig_rax },
 *   then chunks to the end: { u64 addr, u32 len, u8 perms (bit 3: the
 *   main thread's [stack]), len bytes }.
 * Chunks that overlap an earlier one are dropped, so any bytes give a
 * well-formed source. */
#ifndef PYSPY_TESTS_FUZZ_COMMON_H
#define PYSPY_TESTS_FUZZ_COMMON_H

#include <pyspy.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum {
    PYSPY_FUZZ_FREE_THREADED = 1 << 0,
    PYSPY_FUZZ_DEBUG_OFFSETS = 1 << 1, /* patch from runtime (3.13+) */
    PYSPY_FUZZ_LOCALS = 1 << 2,
    PYSPY_FUZZ_NAMES = 1 << 3,     /* read thread names */
    PYSPY_FUZZ_TWICE = 1 << 4,     /* a second walk through a walk cache */
    PYSPY_FUZZ_LINENO_1 = 1 << 5,  /* with bit 6: pyspy_lineno */
    PYSPY_FUZZ_LONG_REPRS = 1 << 7 /* with LOCALS: --locals twice */
};
#define PYSPY_FUZZ_LINENO(flags) (((flags) >> 5) & 3)
#define PYSPY_FUZZ_STACK_CHUNK 8u /* chunk perms bit */
#define PYSPY_FUZZ_MAX_THREADS 64
#define PYSPY_FUZZ_MAX_CHUNKS 4096
#define PYSPY_FUZZ_HEADER 32
#define PYSPY_FUZZ_THREAD 32
#define PYSPY_FUZZ_CHUNK_HEADER 13

/* An unlinked file holding data (a memfd), as a core or snapshot on disk
 * would be; -1 on failure. */
static inline int pyspy_fuzz_fd(const uint8_t *data, size_t size) {
    int fd = memfd_create("fuzz-input", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)n;
    }
    return fd;
}

static inline uint64_t pyspy_fuzz_le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

typedef struct {
    int major, minor, flags;
    uint64_t runtime, interp_head, tstate_current;
    pyspy_memsrc src;
    pyspy_thread threads[PYSPY_FUZZ_MAX_THREADS];
    pyspy_region regions[PYSPY_FUZZ_MAX_CHUNKS];
    const uint8_t *bytes[PYSPY_FUZZ_MAX_CHUNKS]; /* region i's contents */
} pyspy_fuzz_image;

static int pyspy_fuzz_image_read(pyspy_memsrc *src, uint64_t addr, void *buf,
                                 size_t len, pyspy_error *err) {
    pyspy_fuzz_image *im = src->impl;
    uint8_t *p = buf;
    while (len > 0) {
        const pyspy_region *r = pyspy_memsrc_region_at(src, addr);
        if (!r)
            return pyspy_error_set(err, PYSPY_E_UNREADABLE,
                                   "address 0x%llx is not mapped",
                                   (unsigned long long)addr);
        size_t i = (size_t)(r - src->regions);
        size_t k = r->end - addr < len ? (size_t)(r->end - addr) : len;
        memcpy(p, im->bytes[i] + (addr - r->start), k);
        p += k;
        addr += k;
        len -= k;
    }
    return 0;
}

static const pyspy_memsrc_ops pyspy_fuzz_image_ops = {
    .kind = "fuzz", .read = pyspy_fuzz_image_read};

static int pyspy_fuzz_cmp_region(const void *a, const void *b) {
    const pyspy_region *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Fills im from data (which must outlive it); -1 when the header is
 * short. The chunks' contents point into data. */
static inline int pyspy_fuzz_image_parse(pyspy_fuzz_image *im,
                                         const uint8_t *data, size_t size) {
    memset(&im->src, 0, sizeof im->src);
    if (size < PYSPY_FUZZ_HEADER)
        return -1;
    im->major = data[0];
    im->minor = data[1];
    im->flags = data[2];
    size_t nthreads = data[3];
    im->runtime = pyspy_fuzz_le(data + 4, 8);
    im->interp_head = pyspy_fuzz_le(data + 12, 8);
    im->tstate_current = pyspy_fuzz_le(data + 20, 8);
    int pid = (int)pyspy_fuzz_le(data + 28, 4);
    size_t at = PYSPY_FUZZ_HEADER;
    if (nthreads > PYSPY_FUZZ_MAX_THREADS ||
        (size - at) / PYSPY_FUZZ_THREAD < nthreads)
        return -1;
    memset(im->threads, 0, nthreads * sizeof im->threads[0]);
    for (size_t i = 0; i < nthreads; i++, at += PYSPY_FUZZ_THREAD) {
        pyspy_thread *t = &im->threads[i];
        const uint8_t *d = data + at;
        t->tid = (int)pyspy_fuzz_le(d, 4);
        t->state = (char)d[4];
        t->has_regs = d[5] != 0;
        t->syscall = (int16_t)pyspy_fuzz_le(d + 6, 2);
        t->regs[PYSPY_REG_RSP] = pyspy_fuzz_le(d + 8, 8);
        t->regs[21] = pyspy_fuzz_le(d + 16, 8); /* fs_base */
        t->regs[PYSPY_REG_ORIG_RAX] = pyspy_fuzz_le(d + 24, 8);
    }
    size_t n = 0;
    while (n < PYSPY_FUZZ_MAX_CHUNKS && size - at >= PYSPY_FUZZ_CHUNK_HEADER) {
        const uint8_t *d = data + at;
        uint64_t addr = pyspy_fuzz_le(d, 8);
        size_t len = (size_t)pyspy_fuzz_le(d + 8, 4);
        uint8_t perms = d[12];
        at += PYSPY_FUZZ_CHUNK_HEADER;
        if (len > size - at)
            len = size - at;
        if (len == 0 || addr + len < addr)
            continue;
        pyspy_region *r = &im->regions[n];
        memset(r, 0, sizeof *r);
        r->start = addr;
        r->end = addr + len;
        r->perms = perms & 7u;
        r->present = true;
        r->path = perms & PYSPY_FUZZ_STACK_CHUNK ? "[stack]" : NULL;
        /* the contents pointer travels with the region through the sort */
        r->file_offset = (uint64_t)(uintptr_t)(data + at);
        at += len;
        n++;
    }
    qsort(im->regions, n, sizeof im->regions[0], pyspy_fuzz_cmp_region);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (kept && im->regions[i].start < im->regions[kept - 1].end)
            continue;
        im->regions[kept] = im->regions[i];
        im->bytes[kept] =
            (const uint8_t *)(uintptr_t)im->regions[kept].file_offset;
        im->regions[kept].file_offset = 0;
        kept++;
    }
    im->src.ops = &pyspy_fuzz_image_ops;
    im->src.impl = im;
    im->src.proc.pid = pid;
    im->src.regions = im->regions;
    im->src.nregions = kept;
    im->src.threads = im->threads;
    im->src.nthreads = nthreads;
    im->src.origin = "fuzz input";
    return 0;
}

#endif
