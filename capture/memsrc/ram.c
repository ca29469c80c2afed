/* The filtered view of a live process that a snapshot is written from,
 * and its copy in RAM. Choosing regions follows the kernel's
 * coredump_filter rules. /proc/PID/pagemap says which pages only the
 * process holds: touched private anonymous pages (the untouched ones are
 * zeros) and written (copied-on-write) pages of private file mappings.
 * Only those are copied while the process is stopped; the other pages of
 * a private file mapping are the file's, read from the file afterwards
 * (reading them through the process would fault every one of them into
 * it, which is most of the pause). */
#include "capture/base/array.h"
#include "capture/memsrc/live.h"
#include "capture/memsrc/ram.h"
#include "capture/process/pagemap.h"
#include "capture/process/proc.h"
#include "capture/snapshot/snapshot.h"

#include <elf.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096u
/* No real mapping is larger; beyond this a region is left absent rather
 * than scanned. */
#define MAX_REGION_BYTES (1ULL << 40)

typedef struct vreg {
    /* Copy of the pages in bits, packed (page p at rank(p)); NULL when
     * reading through to the process. */
    uint8_t *ram;
    uint64_t ram_len;
    bool ram_owned; /* own mapping rather than a slice of the pool */
    uint64_t *bits; /* pages held by the process; NULL = every page */
    uint32_t *rank; /* pages in bits before each 64-page word */
    uint64_t npages;
    int fd; /* the mapped file, for the pages not in bits; -1: zeros */
} vreg;

typedef struct view_impl {
    pyspy_memsrc *live;
    vreg *v; /* parallel to the view's regions */
    uint64_t bytes;
    bool copied;
    pyspy_ram_pool pool;
} view_impl;

static const pyspy_memsrc_ops view_ops;

static bool bit(const uint64_t *bits, uint64_t i) {
    return bits[i / 64] >> (i % 64) & 1;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static bool is_anon_private_path(const char *p) {
    return !p || strcmp(p, "[heap]") == 0 || strncmp(p, "[stack", 6) == 0 ||
           strncmp(p, "[anon:", 6) == 0;
}

typedef struct builder {
    pyspy_region *r;
    vreg *v;
    size_t n, cap;
} builder;

/* Room for one more entry; -1 when out of memory. */
static int reserve(builder *b) {
    if (b->n < b->cap)
        return 0;
    size_t nc = b->cap;
    pyspy_region *nr = pyspy_array_grow(b->r, &nc, b->cap + 1, sizeof *nr, 256);
    if (!nr)
        return -1;
    b->r = nr;
    vreg *nv = realloc(b->v, nc * sizeof *nv);
    if (!nv)
        return -1;
    b->v = nv;
    b->cap = nc;
    return 0;
}

static int push(builder *b, const pyspy_region *src, uint64_t start,
                uint64_t end, bool present, uint64_t *bits) {
    if (reserve(b) != 0)
        return -1;
    pyspy_region *o = &b->r[b->n];
    *o = *src;
    o->path = src->path ? strdup(src->path) : NULL;
    if (src->path && !o->path)
        return -1;
    o->file_offset = src->file_offset + (start - src->start);
    o->start = start;
    o->end = end;
    o->present = present;
    memset(&b->v[b->n], 0, sizeof b->v[b->n]);
    b->v[b->n].bits = bits;
    b->v[b->n].npages = (end - start) / PAGE;
    b->v[b->n].fd = -1;
    b->n++;
    return 0;
}

static bool elf_magic_at(pyspy_memsrc *live, uint64_t addr) {
    uint8_t m[SELFMAG];
    pyspy_error e = {0};
    return pyspy_memsrc_read(live, addr, m, sizeof m, &e) == 0 &&
           memcmp(m, ELFMAG, SELFMAG) == 0;
}

/* The file behind a private mapping, when every page of the mapping lies
 * within it (pages past the end would be a SIGBUS in the process, not
 * data); -1 otherwise, and the region is read from the process. */
static int open_mapped_file(int pid, const pyspy_region *r) {
    char p[4200];
    snprintf(p, sizeof p, "/proc/%d/map_files/%llx-%llx", pid,
             (unsigned long long)r->start, (unsigned long long)r->end);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && r->path && r->path[0] == '/') {
        snprintf(p, sizeof p, "/proc/%d/root%s", pid, r->path);
        fd = open(p, O_RDONLY | O_CLOEXEC);
    }
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
                    r->file_offset + (r->end - r->start) >
                        ((uint64_t)st.st_size + PAGE - 1) / PAGE * PAGE)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Decides one region; returns -1 only when out of memory. */
static int add_region(builder *b, pyspy_memsrc *live, int pm_fd,
                      const pyspy_region *r, uint32_t filter) {
    uint64_t size = r->end - r->start;
    bool shared = (r->perms & PYSPY_PERM_SHARED) != 0;
    const char *p = r->path;
    if (!(r->perms & PYSPY_PERM_R) || size > MAX_REGION_BYTES ||
        (p && p[0] == '[' && !is_anon_private_path(p) &&
         strcmp(p, "[vdso]") != 0))
        /* No access (guard pages, reservations) or special kernel
         * mappings ([vvar] cannot be read; the vdso is kept as the
         * kernel keeps it, for unwinding). */
        return push(b, r, r->start, r->end, false, NULL);
    if (p && strcmp(p, "[vdso]") == 0)
        return push(b, r, r->start, r->end, true, NULL);
    bool want;
    uint64_t *bits = NULL;
    if (!shared && is_anon_private_path(p)) {
        want = filter & PYSPY_FILTER_ANON_PRIVATE;
        if (want && pm_fd >= 0 &&
            pyspy_pagemap_own_pages(pm_fd, r->start, size / PAGE, false, &bits,
                                    NULL) != 0)
            bits = NULL;
    } else if (shared) {
        /* Shared memory whose file is gone (or never had a name) is what
         * the kernel calls anonymous shared. */
        bool anon = !p || p[0] != '/' || ends_with(p, " (deleted)") ||
                    strncmp(p, "/SYSV", 5) == 0;
        want = filter &
               (anon ? PYSPY_FILTER_ANON_SHARED : PYSPY_FILTER_FILE_SHARED);
    } else {
        bool anon = false;
        if (pm_fd < 0 || pyspy_pagemap_own_pages(pm_fd, r->start, size / PAGE,
                                                 true, &bits, &anon) != 0) {
            bits = NULL;
            anon = (r->perms & PYSPY_PERM_W) != 0;
        }
        /* Written pages of a private file mapping (.data, relocated
         * RELRO) count as anonymous memory, as for the kernel. */
        want = (filter & PYSPY_FILTER_FILE_PRIVATE) ||
               ((filter & PYSPY_FILTER_ANON_PRIVATE) && anon);
        int fd = want && bits ? open_mapped_file(pyspy_live_pid(live), r) : -1;
        if (fd < 0) {
            free(bits);
            bits = NULL;
        }
        if (want) {
            if (push(b, r, r->start, r->end, true, bits) != 0) {
                if (fd >= 0)
                    close(fd);
                return -1;
            }
            b->v[b->n - 1].fd = fd;
            return 0;
        }
    }
    if (want)
        return push(b, r, r->start, r->end, true, bits);
    if ((filter & PYSPY_FILTER_ELF_HEADERS) && p && p[0] == '/' &&
        r->file_offset == 0 && elf_magic_at(live, r->start)) {
        if (push(b, r, r->start, r->start + PAGE, true, NULL) != 0)
            return -1;
        if (size > PAGE)
            return push(b, r, r->start + PAGE, r->end, false, NULL);
        return 0;
    }
    return push(b, r, r->start, r->end, false, NULL);
}

typedef struct build_job {
    builder b;
    pyspy_memsrc *live;
    int pm_fd;
    uint32_t filter;
    size_t from, to;
    int rc;
} build_job;

static void *build_part(void *arg) {
    build_job *j = arg;
    for (size_t i = j->from; i < j->to && j->rc == 0; i++)
        j->rc = add_region(&j->b, j->live, j->pm_fd, &j->live->regions[i],
                           j->filter);
    return NULL;
}

static void builder_free(builder *b) {
    for (size_t i = 0; i < b->n; i++) {
        free(b->r[i].path);
        free(b->v[i].bits);
        if (b->v[i].fd >= 0)
            close(b->v[i].fd);
    }
    free(b->r);
    free(b->v);
    memset(b, 0, sizeof *b);
}

/* Decides every region. Reading the pagemap of a big heap is ~10 ms per
 * GiB of the pause, so with much memory and a second CPU the regions are
 * split in two halves by size, the upper one decided on a thread, and
 * the two tables joined in order. */
static int build_regions(builder *b, pyspy_memsrc *live, int pm_fd,
                         uint32_t filter) {
    uint64_t total = 0, half = 0;
    for (size_t i = 0; i < live->nregions; i++)
        total += live->regions[i].end - live->regions[i].start;
    size_t split = live->nregions;
    if (total >= (256ull << 20) && sysconf(_SC_NPROCESSORS_ONLN) > 1)
        for (size_t i = 0; i < live->nregions; i++) {
            half += live->regions[i].end - live->regions[i].start;
            if (half >= total / 2) {
                split = i + 1;
                break;
            }
        }
    build_job lo = {
        .live = live, .pm_fd = pm_fd, .filter = filter, .from = 0, .to = split};
    build_job hi = {.live = live,
                    .pm_fd = pm_fd,
                    .filter = filter,
                    .from = split,
                    .to = live->nregions};
    pthread_t th;
    bool threaded = split < live->nregions &&
                    pthread_create(&th, NULL, build_part, &hi) == 0;
    build_part(&lo);
    if (threaded)
        pthread_join(th, NULL);
    else
        build_part(&hi);
    *b = lo.b;
    int rc = lo.rc ? lo.rc : hi.rc;
    for (size_t i = 0; i < hi.b.n && rc == 0; i++) {
        if (reserve(b) != 0) {
            rc = -1;
            break;
        }
        b->r[b->n] = hi.b.r[i];
        b->v[b->n] = hi.b.v[i];
        b->n++;
        hi.b.r[i].path = NULL; /* moved */
        hi.b.v[i].bits = NULL;
        hi.b.v[i].fd = -1;
    }
    builder_free(&hi.b);
    return rc;
}

static uint64_t popcount_pages(const vreg *v) {
    uint64_t n = 0;
    for (uint64_t i = 0; i < (v->npages + 63) / 64; i++)
        n += (uint64_t)__builtin_popcountll(v->bits[i]);
    return n;
}

static void view_free(pyspy_memsrc *view) {
    view_impl *vi = view->impl;
    for (size_t i = 0; i < view->nregions; i++) {
        if (vi && vi->v[i].ram && vi->v[i].ram_owned)
            munmap(vi->v[i].ram, vi->v[i].ram_len);
        if (vi)
            free(vi->v[i].rank);
        if (vi && vi->v[i].fd >= 0)
            close(vi->v[i].fd);
        if (vi)
            free(vi->v[i].bits);
        free(view->regions[i].path);
    }
    if (vi) {
        free(vi->v);
        pyspy_ram_pool_free(&vi->pool);
    }
    free(vi);
    free(view->regions);
    free(view);
}

static void view_close(pyspy_memsrc *view) {
    if (view)
        view_free(view);
}

/* Pages of the file behind a mapping; the tail of its last page, past
 * the end of the file, reads as zeros as it does in the process. */
static int read_file(int fd, uint64_t off, uint8_t *buf, uint64_t len,
                     pyspy_error *err) {
    uint64_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return pyspy_error_set(err, PYSPY_E_IO,
                                   "cannot read a mapped file: %s",
                                   strerror(errno));
        if (n == 0)
            break;
        got += (uint64_t)n;
    }
    memset(buf + got, 0, len - got);
    return 0;
}

/* Where page p of a region is in its packed copy. */
static uint64_t packed_page(const vreg *v, uint64_t p) {
    if (!v->bits)
        return p;
    uint64_t below = v->bits[p / 64] & ((1ULL << (p % 64)) - 1);
    return v->rank[p / 64] + (uint64_t)__builtin_popcountll(below);
}

/* Reads [addr, addr+len) of region i, which it lies in. */
static int read_in(pyspy_memsrc *view, size_t i, uint64_t addr, uint8_t *buf,
                   uint64_t len, pyspy_error *err) {
    view_impl *vi = view->impl;
    const pyspy_region *r = &view->regions[i];
    const vreg *v = &vi->v[i];
    while (len) {
        uint64_t off = addr - r->start;
        /* runs of pages with the same source */
        bool own = !v->bits || bit(v->bits, off / PAGE);
        uint64_t end = v->bits ? (off / PAGE + 1) * PAGE : off + len;
        while (end - off < len && end / PAGE < v->npages &&
               bit(v->bits, end / PAGE) == own)
            end += PAGE;
        uint64_t n = end - off < len ? end - off : len;
        int rc = 0;
        if (own && v->ram)
            memcpy(buf, v->ram + packed_page(v, off / PAGE) * PAGE + off % PAGE,
                   n);
        else if (own)
            rc = pyspy_memsrc_read(vi->live, addr, buf, n, err);
        else if (v->fd >= 0)
            rc = read_file(v->fd, r->file_offset + off, buf, n, err);
        else
            memset(buf, 0, n); /* never touched: zeros */
        if (rc != 0)
            return -1;
        addr += n;
        buf += n;
        len -= n;
    }
    return 0;
}

static int view_read(pyspy_memsrc *view, uint64_t addr, void *buf, size_t len,
                     pyspy_error *err) {
    uint8_t *out = buf;
    while (len) {
        const pyspy_region *r = pyspy_memsrc_region_at(view, addr);
        if (!r || !r->present)
            return pyspy_error_set(err, PYSPY_E_UNREADABLE,
                                   "address 0x%llx is not in the copied memory",
                                   (unsigned long long)addr);
        uint64_t n = r->end - addr < len ? r->end - addr : len;
        if (read_in(view, (size_t)(r - view->regions), addr, out, n, err))
            return -1;
        addr += n;
        out += n;
        len -= n;
    }
    return 0;
}

/* The paths are the live target's: its files are found where it sees
 * them. */
static const char *view_file_root(const pyspy_memsrc *view) {
    return pyspy_memsrc_file_root(((const view_impl *)view->impl)->live);
}

static const pyspy_memsrc_ops view_ops = {
    .kind = "ram",
    .read = view_read,
    .close = view_close,
    .file_root = view_file_root,
};

int pyspy_memsrc_view_open(pyspy_memsrc *live, uint32_t filter,
                           pyspy_memsrc **out, pyspy_error *err) {
    pyspy_memsrc *view = calloc(1, sizeof *view);
    view_impl *vi = calloc(1, sizeof *vi);
    if (!view || !vi) {
        free(view);
        free(vi);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/pagemap", pyspy_live_pid(live));
    int pm_fd = open(path, O_RDONLY | O_CLOEXEC);
    builder b = {0};
    int rc = build_regions(&b, live, pm_fd, filter);
    if (pm_fd >= 0)
        close(pm_fd);
    view->ops = &view_ops;
    view->impl = vi;
    vi->live = live;
    vi->v = b.v;
    view->regions = b.r;
    view->nregions = b.n;
    if (rc != 0) {
        view_free(view);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    for (size_t i = 0; i < b.n; i++)
        if (b.r[i].present)
            vi->bytes += b.v[i].bits ? popcount_pages(&b.v[i]) * PAGE
                                     : b.r[i].end - b.r[i].start;
    /* Everything else is the live source's, shared for the view's life. */
    view->proc = live->proc;
    view->threads = live->threads;
    view->nthreads = live->nthreads;
    view->modules = live->modules;
    view->nmodules = live->nmodules;
    view->origin = live->origin;
    view->auxv = live->auxv;
    view->auxv_len = live->auxv_len;
    *out = view;
    return 0;
}

uint64_t pyspy_memsrc_view_bytes(const pyspy_memsrc *view) {
    return ((const view_impl *)view->impl)->bytes;
}

/* One (buffer, target) pair per run of pages to read. */
typedef struct iovs {
    struct iovec *l, *r;
    size_t *owner;
    size_t n, cap;
} iovs;

static int iov_push(iovs *s, void *local, uint64_t remote, uint64_t len,
                    size_t owner) {
    if (s->n == s->cap) {
        size_t nc = s->cap;
        struct iovec *a =
            pyspy_array_grow(s->l, &nc, s->cap + 1, sizeof *a, 1024);
        if (!a)
            return -1;
        s->l = a;
        struct iovec *b = realloc(s->r, nc * sizeof *b);
        if (!b)
            return -1;
        s->r = b;
        size_t *c = realloc(s->owner, nc * sizeof *c);
        if (!c)
            return -1;
        s->owner = c;
        s->cap = nc;
    }
    s->l[s->n] = (struct iovec){local, len};
    s->r[s->n] = (struct iovec){(void *)(uintptr_t)remote, len};
    s->owner[s->n] = owner;
    s->n++;
    return 0;
}

static uint8_t *take(view_impl *vi, vreg *v, uint64_t len) {
    v->ram_len = len;
    pyspy_ram_pool *p = &vi->pool;
    if (p->base && p->size - p->used >= len) {
        uint8_t *m = p->base + p->used;
        p->used += len;
        return m;
    }
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    v->ram_owned = true;
    return m;
}

static int plan_region(iovs *s, pyspy_memsrc *view, size_t i) {
    view_impl *vi = view->impl;
    const pyspy_region *r = &view->regions[i];
    vreg *v = &vi->v[i];
    uint64_t size = r->end - r->start;
    if (!v->bits) {
        v->ram = take(vi, v, size);
        return v->ram ? iov_push(s, v->ram, r->start, size, i) : -1;
    }
    uint64_t words = (v->npages + 63) / 64;
    v->rank = malloc((words ? words : 1) * sizeof *v->rank);
    if (!v->rank)
        return -1;
    uint64_t own = 0;
    for (uint64_t w = 0; w < words; w++) {
        v->rank[w] = (uint32_t)own;
        own += (uint64_t)__builtin_popcountll(v->bits[w]);
    }
    if (own == 0)
        return 0; /* nothing of its own: zeros or the file's pages */
    v->ram = take(vi, v, own * PAGE);
    if (!v->ram)
        return -1;
    for (uint64_t p = 0; p < v->npages;) {
        if (!bit(v->bits, p)) {
            p++;
            continue;
        }
        uint64_t q = p;
        while (q < v->npages && bit(v->bits, q))
            q++;
        if (iov_push(s, v->ram + packed_page(v, p) * PAGE, r->start + p * PAGE,
                     (q - p) * PAGE, i) != 0)
            return -1;
        p = q;
    }
    return 0;
}

int pyspy_memsrc_view_copy(pyspy_memsrc *view, pyspy_ram_pool *pool,
                           pyspy_error *err) {
    view_impl *vi = view->impl;
    if (pool) {
        vi->pool = *pool;
        memset(pool, 0, sizeof *pool);
    }
    iovs s = {0};
    int rc = 0;
    for (size_t i = 0; i < view->nregions && rc == 0; i++)
        if (view->regions[i].present)
            rc = plan_region(&s, view, i);
    bool *ok = rc == 0 ? calloc(s.n ? s.n : 1, sizeof *ok) : NULL;
    if (!ok) {
        free(s.l);
        free(s.r);
        free(s.owner);
        for (size_t i = 0; i < view->nregions; i++) {
            if (vi->v[i].ram && vi->v[i].ram_owned)
                munmap(vi->v[i].ram, vi->v[i].ram_len);
            vi->v[i].ram = NULL;
        }
        return pyspy_error_set(err, PYSPY_E_GENERIC,
                               "out of memory copying the process");
    }
    pyspy_memsrc_readv(vi->live, s.l, s.r, s.n, ok);
    /* A region that could not be read in full (unmapped meanwhile, a file
     * truncated under its mapping) is absent, never half zeros. */
    for (size_t k = 0; k < s.n; k++) {
        size_t i = s.owner[k];
        if (ok[k] || !view->regions[i].present)
            continue;
        view->regions[i].present = false;
        if (vi->v[i].ram_owned)
            munmap(vi->v[i].ram, vi->v[i].ram_len);
        vi->v[i].ram = NULL;
    }
    free(ok);
    free(s.l);
    free(s.r);
    free(s.owner);
    vi->copied = true;
    return 0;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define HUGE_PAGE (2ull << 20)

/* Backed by transparent huge pages where the kernel allows it (madvise
 * mode is Debian's default): faulting the pool in then costs 1/512 of the
 * faults, and the kernel's copy into it touches far fewer TLB entries --
 * measured on a 1 GiB target, 150 ms of copy instead of 2 s before the
 * warm-up below, and 80 ms instead of 150 after it. */
int pyspy_ram_pool_init(pyspy_ram_pool *p, uint64_t size, pyspy_error *err) {
    memset(p, 0, sizeof *p);
    if (size == 0)
        return 0;
    size = (size + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    size_t map_len = size + HUGE_PAGE;
    void *m = mmap(NULL, map_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return pyspy_error_set(
            err, PYSPY_E_GENERIC, "cannot reserve %llu MiB for the copy: %s",
            (unsigned long long)(size >> 20), strerror(errno));
    p->map = m;
    p->map_len = map_len;
    p->base = (uint8_t *)(((uintptr_t)m + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
    p->size = size;
    bool huge = madvise(p->base, size, MADV_HUGEPAGE) == 0;
    if (madvise(p->base, size, MADV_POPULATE_WRITE) != 0) {
        for (uint64_t off = 0; off < size; off += PAGE)
            p->base[off] = 0;
    }
    if (huge)
        return 0;
    /* Without huge pages, some hypervisors make the kernel's first write
     * to a user page far slower than later ones, even after the process
     * itself wrote it; a read from /dev/zero pays that before the stop
     * instead of during. */
    int z = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    for (uint64_t off = 0; z >= 0 && off < size;) {
        size_t chunk = size - off > (64u << 20) ? (64u << 20) : size - off;
        ssize_t n = read(z, p->base + off, chunk);
        if (n <= 0)
            break;
        off += (uint64_t)n;
    }
    if (z >= 0)
        close(z);
    return 0;
}

void pyspy_ram_pool_free(pyspy_ram_pool *p) {
    if (p->map)
        munmap(p->map, p->map_len);
    memset(p, 0, sizeof *p);
}

uint64_t pyspy_default_memory_budget(void) {
    char *buf = NULL;
    if (pyspy_proc_slurp("/proc/meminfo", 1 << 16, &buf, NULL) != 0)
        return 0;
    unsigned long long kb = 0;
    char *p = strstr(buf, "MemAvailable:");
    if (!p || sscanf(p + 13, "%llu", &kb) != 1)
        kb = 0;
    free(buf);
    return (uint64_t)kb * 1024 / 2;
}
