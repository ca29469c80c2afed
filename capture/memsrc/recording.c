/* The recording source (see recording.h). Reads are served page by page
 * from copies of whole pages, each read from the inner source the first
 * time it is touched; the copies are what a lean snapshot writes, so the
 * target need not be read again once it runs. A page that cannot be read
 * whole (the tail of a region that ends inside a page, in a core) is read
 * exactly as asked and not kept: a snapshot holds whole pages only. */
#include "capture/memsrc/recording.h"
#include "capture/base/array.h"
#include "capture/base/map.h"

#include <stdlib.h>
#include <string.h>

#define PAGE 4096u
/* 512 MiB of copies: far more than any walk reads. */
#define MAX_PAGES (1u << 17)

typedef struct kept {
    uint64_t addr;
    uint32_t gen; /* the suspend it was read in */
} kept;

typedef struct rec_impl {
    pyspy_memsrc *inner;
    pyspy_map index; /* page address -> entry of pages */
    kept *pages;
    size_t npages, cap;
    uint8_t *data; /* page i at data + i * PAGE */
    size_t data_cap;
    uint32_t gen;
    bool stopped;     /* between our suspend and resume */
    bool overflow;    /* a page could not be kept */
    bool stacks;      /* keep the threads' stacks */
    uint64_t *sorted; /* handed out by recording_pages */
    size_t sorted_cap;
} rec_impl;

/* What the inner source may have changed. */
static void mirror(pyspy_memsrc *rec) {
    rec_impl *ri = rec->impl;
    pyspy_memsrc *in = ri->inner;
    rec->proc = in->proc;
    rec->regions = in->regions;
    rec->nregions = in->nregions;
    rec->threads = in->threads;
    rec->nthreads = in->nthreads;
    rec->modules = in->modules;
    rec->nmodules = in->nmodules;
    rec->origin = in->origin;
    rec->auxv = in->auxv;
    rec->auxv_len = in->auxv_len;
    rec->damage = in->damage;
    rec->damaged_reads = in->damaged_reads;
}

static int read_page(rec_impl *ri, size_t i, pyspy_error *err) {
    int rc = pyspy_memsrc_read(ri->inner, ri->pages[i].addr,
                               ri->data + i * PAGE, PAGE, err);
    if (rc == 0)
        ri->pages[i].gen = ri->gen;
    return rc;
}

/* The entry of the page at addr, read now if new; -1 when it cannot be
 * kept (err says why when it could not be read). */
static long page_of(rec_impl *ri, uint64_t addr, pyspy_error *err) {
    uint32_t v = (uint32_t)ri->npages;
    bool added = false;
    if (pyspy_map_find(&ri->index, addr, &v)) {
        if (ri->stopped && ri->pages[v].gen != ri->gen &&
            read_page(ri, v, err) != 0)
            return -1;
        return (long)v;
    }
    if (ri->npages >= MAX_PAGES ||
        pyspy_array_reserve(&ri->pages, &ri->cap, ri->npages + 1,
                            sizeof *ri->pages, 64) != 0 ||
        pyspy_array_reserve(&ri->data, &ri->data_cap, (ri->npages + 1) * PAGE,
                            1, 64 * PAGE) != 0) {
        ri->overflow = true;
        return -1;
    }
    ri->pages[ri->npages] = (kept){addr, ri->gen};
    if (read_page(ri, ri->npages, err) != 0)
        return -1;
    if (pyspy_map_add(&ri->index, addr, &v, &added) != 0) {
        ri->overflow = true;
        return -1;
    }
    return (long)ri->npages++;
}

static int rec_read(pyspy_memsrc *rec, uint64_t addr, void *buf, size_t len,
                    pyspy_error *err) {
    rec_impl *ri = rec->impl;
    uint8_t *p = buf;
    int rc = 0;
    while (len > 0 && rc == 0) {
        uint64_t base = addr & ~(uint64_t)(PAGE - 1);
        size_t in = (size_t)(addr - base);
        size_t k = PAGE - in < len ? PAGE - in : len;
        pyspy_error perr = {0};
        long i = page_of(ri, base, &perr);
        if (i >= 0)
            memcpy(p, ri->data + (size_t)i * PAGE + in, k);
        else
            rc = pyspy_memsrc_read(ri->inner, addr, p, k, err);
        p += k;
        addr += k;
        len -= k;
    }
    rec->damage = ri->inner->damage;
    rec->damaged_reads = ri->inner->damaged_reads;
    return rc;
}

/* The map is read again at the stop so the regions written match it. */
static int rec_suspend(pyspy_memsrc *rec, pyspy_error *err) {
    rec_impl *ri = rec->impl;
    int rc = pyspy_memsrc_suspend(ri->inner, err);
    if (rc == 0 && pyspy_memsrc_is_stopped(ri->inner))
        rc = pyspy_memsrc_reread_regions(ri->inner, err);
    if (rc == 0) {
        ri->gen++;
        ri->stopped = true;
    }
    mirror(rec);
    return rc;
}

#define MAX_STACK_BYTES (8u << 20)
#define RED_ZONE 128u

static void keep_range(rec_impl *ri, uint64_t lo, uint64_t hi) {
    for (uint64_t a = lo & ~(uint64_t)(PAGE - 1); a < hi && !ri->overflow;
         a += PAGE) {
        pyspy_error e = {0};
        page_of(ri, a, &e);
    }
}

static void keep_stacks(pyspy_memsrc *rec, rec_impl *ri) {
    for (size_t i = 0; i < rec->nthreads; i++) {
        const pyspy_thread *t = &rec->threads[i];
        if (!t->has_regs)
            continue;
        uint64_t sp = t->regs[PYSPY_REG_RSP];
        const pyspy_region *r = pyspy_memsrc_region_at(rec, sp);
        if (!r || !r->present)
            continue;
        uint64_t lo = sp - r->start > RED_ZONE ? sp - RED_ZONE : r->start;
        uint64_t hi =
            r->end - lo > MAX_STACK_BYTES ? lo + MAX_STACK_BYTES : r->end;
        keep_range(ri, lo, hi);
    }
}

/* Pages kept from before the stop are read again while it lasts; one the
 * process no longer maps is dropped. */
static void rec_resume(pyspy_memsrc *rec) {
    rec_impl *ri = rec->impl;
    if (ri->stopped) {
        if (ri->stacks)
            keep_stacks(rec, ri);
        size_t out = 0;
        for (size_t i = 0; i < ri->npages; i++) {
            pyspy_error e = {0};
            if (ri->pages[i].gen != ri->gen && read_page(ri, i, &e) != 0)
                continue;
            if (out != i) {
                ri->pages[out] = ri->pages[i];
                memcpy(ri->data + out * PAGE, ri->data + i * PAGE, PAGE);
            }
            out++;
        }
        if (out != ri->npages) {
            ri->npages = out;
            pyspy_map_clear(&ri->index);
            for (size_t i = 0; i < out; i++) {
                uint32_t v = (uint32_t)i;
                bool added;
                if (pyspy_map_add(&ri->index, ri->pages[i].addr, &v, &added))
                    ri->overflow = true;
            }
        }
        ri->stopped = false;
    }
    pyspy_memsrc_resume(ri->inner);
    mirror(rec);
}

static int rec_refresh(pyspy_memsrc *rec, pyspy_error *err) {
    rec_impl *ri = rec->impl;
    int rc = pyspy_memsrc_refresh(ri->inner, err);
    mirror(rec);
    return rc;
}

static int rec_reread_regions(pyspy_memsrc *rec, pyspy_error *err) {
    rec_impl *ri = rec->impl;
    int rc = pyspy_memsrc_reread_regions(ri->inner, err);
    mirror(rec);
    return rc;
}

static void rec_sampling(pyspy_memsrc *rec, bool need_regs, bool need_states) {
    pyspy_memsrc_sampling(((rec_impl *)rec->impl)->inner, need_regs,
                          need_states);
}

static bool rec_check_sleepers(pyspy_memsrc *rec) {
    return pyspy_memsrc_check_sleepers(((rec_impl *)rec->impl)->inner);
}

static const char *rec_file_root(const pyspy_memsrc *rec) {
    return pyspy_memsrc_file_root(((const rec_impl *)rec->impl)->inner);
}

static bool rec_is_stopped(const pyspy_memsrc *rec) {
    return pyspy_memsrc_is_stopped(((const rec_impl *)rec->impl)->inner);
}

static void rec_close(pyspy_memsrc *rec) {
    if (!rec)
        return;
    rec_impl *ri = rec->impl;
    if (ri) {
        pyspy_map_free(&ri->index);
        free(ri->pages);
        free(ri->data);
        free(ri->sorted);
        free(ri);
    }
    free(rec);
}

static const pyspy_memsrc_ops rec_ops = {
    .kind = "recording",
    .read = rec_read,
    .suspend = rec_suspend,
    .resume = rec_resume,
    .refresh = rec_refresh,
    .close = rec_close,
    .sampling = rec_sampling,
    .check_sleepers = rec_check_sleepers,
    .file_root = rec_file_root,
    .is_stopped = rec_is_stopped,
    .reread_regions = rec_reread_regions,
};

int pyspy_memsrc_recording_open(pyspy_memsrc *inner, bool stacks,
                                pyspy_memsrc **out, pyspy_error *err) {
    pyspy_memsrc *rec = calloc(1, sizeof *rec);
    rec_impl *ri = calloc(1, sizeof *ri);
    if (!rec || !ri) {
        free(rec);
        free(ri);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    ri->inner = inner;
    ri->stacks = stacks;
    rec->ops = &rec_ops;
    rec->impl = ri;
    mirror(rec);
    *out = rec;
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int pyspy_memsrc_recording_pages(pyspy_memsrc *rec, const uint64_t **pages,
                                 size_t *n, pyspy_error *err) {
    rec_impl *ri = rec->impl;
    if (ri->overflow)
        return pyspy_error_set(err, PYSPY_E_GENERIC,
                               "the analysis read more than %u MiB of pages, "
                               "more than a lean snapshot keeps",
                               (unsigned)((uint64_t)MAX_PAGES * PAGE >> 20));
    if (pyspy_array_reserve(&ri->sorted, &ri->sorted_cap,
                            ri->npages ? ri->npages : 1, sizeof *ri->sorted,
                            64) != 0)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    for (size_t i = 0; i < ri->npages; i++)
        ri->sorted[i] = ri->pages[i].addr;
    qsort(ri->sorted, ri->npages, sizeof *ri->sorted, cmp_u64);
    *pages = ri->sorted;
    *n = ri->npages;
    return 0;
}
