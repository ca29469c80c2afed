/* Per-sample page cache over a memory source (see cache.h).
 *
 * Successive samples of a process walk mostly the same pages (the
 * runtime, the thread states, the frame stack, the code objects of the
 * hot functions), so a sample of a source with batched reads (a live
 * process: one process_vm_readv) starts by reading every page the last
 * one touched in a single batch: one syscall instead of one per page,
 * which was most of a sample's cost in NonBlocking mode. It
 * reads only the span of each page the last sample used (a few hundred
 * bytes of a 4 KiB page, typically): copying whole pages was a tenth of
 * a 100 Hz sample's cost. A read outside the span fills the page. */
#include "analyze/sample/cache.h"

#include <stdlib.h>
#include <string.h>

#define PAGE 4096u
#define NSLOTS 512u      /* power of two */
#define MAX_PAGES 256u   /* 1 MiB per sample at most */
#define MAX_CACHED 65536 /* larger reads go straight to the source */
#define MAX_PREFETCH 64u /* pages read ahead at the start of a sample */
#define SPAN_ALIGN 64u   /* spans are read in whole cache lines */

typedef struct page {
    uint64_t addr; /* page address; valid when gen matches */
    uint32_t gen;
    bool bad;      /* the whole page is not readable: read exact ranges */
    uint16_t lo;   /* data holds [lo, hi) of the page */
    uint16_t hi;   /* PAGE once the whole page is read */
    uint32_t tidx; /* its entry in touched + 1; 0: not touched yet */
    uint8_t *data;
} page;

/* A page the walk read, and the part of it that it read. */
typedef struct span {
    uint64_t addr;
    uint16_t lo, hi;
} span;

struct pyspy_sample_cache {
    pyspy_memsrc view; /* what the walker gets */
    pyspy_memsrc *src; /* the real source */
    uint32_t gen;
    page slots[NSLOTS];
    uint8_t *pool; /* MAX_PAGES pages */
    uint32_t used; /* pages of the pool taken in this sample */
    uint64_t reads, fills;
    /* pages the walk touched, this sample and the one before */
    span touched[MAX_PREFETCH], last[MAX_PREFETCH];
    uint32_t ntouched, nlast;
};

static int cached_read(pyspy_memsrc *view, uint64_t addr, void *buf, size_t len,
                       pyspy_error *err);

static void view_close(pyspy_memsrc *view) {
    (void)view; /* owned by the cache */
}

/* The view stands for its source: the target's files are where that
 * source finds them. */
static const char *view_file_root(const pyspy_memsrc *view) {
    return pyspy_memsrc_file_root(
        ((const pyspy_sample_cache *)view->impl)->src);
}

static const pyspy_memsrc_ops cache_ops = {
    .kind = "sample-cache",
    .read = cached_read,
    .close = view_close,
    .file_root = view_file_root,
};

pyspy_sample_cache *pyspy_sample_cache_new(void) {
    pyspy_sample_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->pool = malloc((size_t)MAX_PAGES * PAGE);
    if (!c->pool) {
        free(c);
        return NULL;
    }
    return c;
}

void pyspy_sample_cache_free(pyspy_sample_cache *c) {
    if (!c)
        return;
    free(c->pool);
    free(c);
}

static page *slot_for(pyspy_sample_cache *c, uint64_t pa, bool *hit);
static void prefetch(pyspy_sample_cache *c);

pyspy_memsrc *pyspy_sample_cache_begin(pyspy_sample_cache *c,
                                       pyspy_memsrc *src) {
    c->src = src;
    c->view = *src;
    c->view.ops = &cache_ops;
    c->view.impl = c;
    /* A new generation invalidates every slot at once. */
    if (++c->gen == 0) {
        for (uint32_t i = 0; i < NSLOTS; i++)
            c->slots[i].gen = 0;
        c->gen = 1;
    }
    c->used = 0;
    c->reads = c->fills = 0;
    memcpy(c->last, c->touched, c->ntouched * sizeof *c->touched);
    c->nlast = c->ntouched;
    c->ntouched = 0;
    /* Read one by one, the pages ahead would cost what the walk's own
     * reads of them do, and maybe pages it no longer needs. */
    if (src->ops->readv)
        prefetch(c);
    return &c->view;
}

/* The slot of page pa in this sample, claimed if it was free; NULL when
 * the probe window or the pool is full. *hit: it already held pa. */
static page *slot_for(pyspy_sample_cache *c, uint64_t pa, bool *hit) {
    uint32_t h = (uint32_t)((pa / PAGE) * 2654435761u) & (NSLOTS - 1);
    for (uint32_t probe = 0; probe < 8; probe++) {
        page *p = &c->slots[(h + probe) & (NSLOTS - 1)];
        if (p->gen == c->gen && p->addr == pa) {
            *hit = true;
            return p;
        }
        if (p->gen != c->gen) {
            if (c->used >= MAX_PAGES)
                return NULL;
            *hit = false;
            p->gen = c->gen;
            p->addr = pa;
            p->bad = false;
            p->lo = p->hi = 0;
            p->tidx = 0;
            p->data = c->pool + (size_t)c->used * PAGE;
            c->used++;
            return p;
        }
    }
    return NULL;
}

static void prefetch(pyspy_sample_cache *c) {
    struct iovec l[MAX_PREFETCH], r[MAX_PREFETCH];
    page *slot[MAX_PREFETCH];
    bool ok[MAX_PREFETCH] = {0};
    size_t n = 0;
    for (uint32_t i = 0; i < c->nlast; i++) {
        bool hit;
        const span *s = &c->last[i];
        page *p = slot_for(c, s->addr, &hit);
        if (!p || hit)
            continue;
        p->lo = (uint16_t)(s->lo & ~(SPAN_ALIGN - 1));
        p->hi = (uint16_t)((s->hi + SPAN_ALIGN - 1) & ~(SPAN_ALIGN - 1));
        if (p->hi > PAGE || p->hi <= p->lo) {
            p->lo = 0;
            p->hi = PAGE;
        }
        slot[n] = p;
        l[n] = (struct iovec){p->data + p->lo, (size_t)(p->hi - p->lo)};
        r[n] = (struct iovec){(void *)(uintptr_t)(p->addr + p->lo),
                              (size_t)(p->hi - p->lo)};
        n++;
    }
    if (n == 0)
        return;
    c->fills++;
    c->src->ops->readv(c->src, l, r, n, ok);
    /* A page that failed is read again on demand, in exact ranges if
     * need be. */
    for (size_t i = 0; i < n; i++)
        if (!ok[i])
            slot[i]->gen = c->gen - 1;
}

void pyspy_sample_cache_stats(const pyspy_sample_cache *c, uint64_t *reads,
                              uint64_t *fills) {
    *reads = c->reads;
    *fills = c->fills;
}

/* The slot for a page holding [off, off + n), filled if needed; NULL when
 * the page cannot be cached (pool full) or read as a whole. */
static page *get_page(pyspy_sample_cache *c, uint64_t pa, size_t off,
                      size_t n) {
    bool hit;
    page *p = slot_for(c, pa, &hit);
    if (!p)
        return NULL;
    if (!p->bad && (off < p->lo || off + n > p->hi)) {
        pyspy_error e = {0};
        c->fills++;
        p->bad = c->src->ops->read(c->src, pa, p->data, PAGE, &e) != 0;
        p->lo = 0;
        p->hi = PAGE;
    }
    if (p->bad)
        return NULL;
    if (!p->tidx && c->ntouched < MAX_PREFETCH) {
        c->touched[c->ntouched] =
            (span){.addr = pa, .lo = (uint16_t)off, .hi = (uint16_t)(off + n)};
        p->tidx = ++c->ntouched;
    } else if (p->tidx) {
        span *s = &c->touched[p->tidx - 1];
        if (off < s->lo)
            s->lo = (uint16_t)off;
        if (off + n > s->hi)
            s->hi = (uint16_t)(off + n);
    }
    return p;
}

static int cached_read(pyspy_memsrc *view, uint64_t addr, void *buf, size_t len,
                       pyspy_error *err) {
    pyspy_sample_cache *c = view->impl;
    pyspy_memsrc *src = c->src;
    c->reads++;
    if (len == 0)
        return 0;
    if (len > MAX_CACHED || addr + len < addr)
        return src->ops->read(src, addr, buf, len, err);
    uint8_t *out = buf;
    uint64_t a = addr;
    size_t left = len;
    while (left) {
        uint64_t pa = a & ~(uint64_t)(PAGE - 1);
        size_t off = (size_t)(a - pa);
        size_t n = PAGE - off < left ? PAGE - off : left;
        page *p = get_page(c, pa, off, n);
        if (!p) /* partial page, pool full: read what was asked */
            return src->ops->read(src, addr, buf, len, err);
        memcpy(out, p->data + off, n);
        out += n;
        a += n;
        left -= n;
    }
    return 0;
}
