/* Per-sample page cache over a memory source (see sample_cache.h). */
#include "analyze/sample_cache.h"

#include <stdlib.h>
#include <string.h>

#define PAGE 4096u
#define NSLOTS 512u      /* power of two */
#define MAX_PAGES 256u   /* 1 MiB per sample at most */
#define MAX_CACHED 65536 /* larger reads go straight to the source */

typedef struct page {
    uint64_t addr; /* page address; valid when gen matches */
    uint32_t gen;
    bool bad; /* the whole page is not readable: read exact ranges */
    uint8_t *data;
} page;

struct pyspy_sample_cache {
    pyspy_memsrc view; /* what the walker gets */
    pyspy_memsrc *src; /* the real source */
    uint32_t gen;
    page slots[NSLOTS];
    uint8_t *pool; /* MAX_PAGES pages */
    uint32_t used; /* pages of the pool taken in this sample */
    uint64_t reads, fills;
};

static int cached_read(pyspy_memsrc *view, uint64_t addr, void *buf, size_t len,
                       pyspy_error *err);

static void view_close(pyspy_memsrc *view) {
    (void)view; /* owned by the cache */
}

static const pyspy_memsrc_ops cache_ops = {
    .kind = "sample-cache",
    .read = cached_read,
    .close = view_close,
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
    return &c->view;
}

void pyspy_sample_cache_stats(const pyspy_sample_cache *c, uint64_t *reads,
                              uint64_t *fills) {
    *reads = c->reads;
    *fills = c->fills;
}

/* The slot for a page, filled if needed; NULL when the page cannot be
 * cached (pool full) or read as a whole. */
static page *get_page(pyspy_sample_cache *c, uint64_t pa) {
    uint32_t h = (uint32_t)((pa / PAGE) * 2654435761u) & (NSLOTS - 1);
    for (uint32_t probe = 0; probe < 8; probe++) {
        page *p = &c->slots[(h + probe) & (NSLOTS - 1)];
        if (p->gen == c->gen && p->addr == pa)
            return p->bad ? NULL : p;
        if (p->gen != c->gen) {
            if (c->used >= MAX_PAGES)
                return NULL;
            p->gen = c->gen;
            p->addr = pa;
            p->data = c->pool + (size_t)c->used * PAGE;
            pyspy_error e = {0};
            c->fills++;
            p->bad = c->src->ops->read(c->src, pa, p->data, PAGE, &e) != 0;
            if (p->bad)
                return NULL;
            c->used++;
            return p;
        }
    }
    return NULL;
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
        page *p = get_page(c, pa);
        if (!p) /* partial page, pool full: read what was asked */
            return src->ops->read(src, addr, buf, len, err);
        memcpy(out, p->data + off, n);
        out += n;
        a += n;
        left -= n;
    }
    return 0;
}
