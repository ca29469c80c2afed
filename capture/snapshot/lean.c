/* pyspy_snapshot_write_lean: the snapshot writer over a view of src whose
 * regions are the runs of pages kept and left out, each run a segment,
 * with src's own regions in a MAPS note. The writer then treats a run
 * left out as it treats any absent region: a segment without file bytes
 * and an absent entry in the region table, never zeros. */
#include "capture/base/array.h"
#include "capture/snapshot/snapshot.h"

#include <stdlib.h>
#include <string.h>

#define PAGE 4096u

typedef struct {
    pyspy_region *v;
    size_t n, cap;
    bool oom;
} pieces;

static void add_piece(pieces *p, const pyspy_region *r, uint64_t start,
                      uint64_t end, bool present) {
    if (start >= end || p->oom)
        return;
    if (pyspy_array_reserve(&p->v, &p->cap, p->n + 1, sizeof *p->v, 64)) {
        p->oom = true;
        return;
    }
    pyspy_region *a = &p->v[p->n++];
    *a = *r;
    a->start = start;
    a->end = end;
    a->present = present;
    a->wanted = false;
    if (r->path)
        a->file_offset = r->file_offset + (start - r->start);
    a->path = r->path ? strdup(r->path) : NULL;
    p->oom |= r->path && !a->path;
}

/* The first page at or after addr, as an index into pages. */
static size_t first_at(const uint64_t *pages, size_t n, uint64_t addr) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pages[mid] + PAGE <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void split(pieces *p, const pyspy_region *r, const uint64_t *pages,
                  size_t npages) {
    if (!r->present) {
        add_piece(p, r, r->start, r->end, false);
        return;
    }
    uint64_t cur = r->start;
    size_t k = first_at(pages, npages, r->start);
    while (cur < r->end && k < npages && pages[k] < r->end) {
        uint64_t lo = pages[k] > cur ? pages[k] : cur;
        uint64_t hi = pages[k] + PAGE;
        /* a run of consecutive pages */
        while (k + 1 < npages && pages[k + 1] == hi && hi < r->end)
            hi = pages[++k] + PAGE;
        k++;
        if (hi > r->end)
            hi = r->end;
        add_piece(p, r, cur, lo, false);
        add_piece(p, r, lo, hi, true);
        cur = hi;
    }
    add_piece(p, r, cur, r->end, false);
}

static int view_read(pyspy_memsrc *view, uint64_t addr, void *buf, size_t len,
                     pyspy_error *err) {
    return pyspy_memsrc_read(view->impl, addr, buf, len, err);
}

static const pyspy_memsrc_ops view_ops = {.kind = "lean", .read = view_read};

static void pieces_free(pieces *p) {
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].path);
    free(p->v);
}

int pyspy_snapshot_write_lean(pyspy_memsrc *src, const uint64_t *pages,
                              size_t npages, const pyspy_snapshot_opts *opts,
                              const char *path, pyspy_snapshot_stats *stats,
                              pyspy_error *err) {
    for (size_t i = 0; i < npages; i++)
        if ((pages[i] & (PAGE - 1)) || (i && pages[i] <= pages[i - 1]))
            return pyspy_error_set(err, PYSPY_E_GENERIC,
                                   "lean snapshot: pages not sorted and "
                                   "page-aligned");
    pieces p = {0};
    for (size_t i = 0; i < src->nregions; i++)
        split(&p, &src->regions[i], pages, npages);
    if (p.oom) {
        pieces_free(&p);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    pyspy_memsrc view = *src;
    view.ops = &view_ops;
    view.impl = src;
    view.regions = p.v;
    view.nregions = p.n;
    pyspy_snapshot_opts o = opts ? *opts : (pyspy_snapshot_opts){0};
    o.maps = src->regions;
    o.nmaps = src->nregions;
    int rc = pyspy_snapshot_write(&view, &o, path, stats, err);
    pieces_free(&p);
    return rc;
}
