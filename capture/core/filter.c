/* coredump_filter applied to a core being ingested: the regions a filter
 * leaves out become absent (never zeros), through a thin view over the
 * opened core, so the core source's own region table stays untouched. */
#include "capture/core/filter.h"

#include <elf.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096u

static bool is_anon(const pyspy_region *r) {
    if (!r->path || r->path[0] != '/')
        return true;
    /* shared anonymous memory shows up as these deleted or pseudo files */
    return strncmp(r->path, "/dev/zero", 9) == 0 ||
           strncmp(r->path, "/SYSV", 5) == 0 ||
           strncmp(r->path, "/memfd:", 7) == 0;
}

/* Pages a process wrote in a private file mapping: its writable data,
 * and the RELRO part just before it (read-only once relocated, which is
 * also where the dynamic section debuggers find the link map through
 * lives). */
static bool likely_written(const pyspy_region *r, const pyspy_region *next) {
    if (r->perms & PYSPY_PERM_W)
        return true;
    return next && !(r->perms & PYSPY_PERM_X) && next->start == r->end &&
           (next->perms & PYSPY_PERM_W) && next->path &&
           strcmp(next->path, r->path) == 0;
}

static bool wanted(const pyspy_region *r, const pyspy_region *next,
                   uint32_t filter) {
    bool shared = (r->perms & PYSPY_PERM_SHARED) != 0;
    if (is_anon(r))
        return filter &
               (shared ? PYSPY_FILTER_ANON_SHARED : PYSPY_FILTER_ANON_PRIVATE);
    if (shared)
        return filter & PYSPY_FILTER_FILE_SHARED;
    /* The kernel dumps written pages of private file mappings (.data,
     * .bss, relocations) with the anonymous ones; a core does not say
     * which were written, so guess from the layout. */
    if ((filter & PYSPY_FILTER_ANON_PRIVATE) && likely_written(r, next))
        return true;
    return filter & PYSPY_FILTER_FILE_PRIVATE;
}

static bool starts_with_elf_header(pyspy_memsrc *src, const pyspy_region *r) {
    uint8_t magic[SELFMAG];
    pyspy_error e = {0};
    return r->file_offset == 0 && !is_anon(r) && r->end - r->start > PAGE &&
           pyspy_memsrc_read(src, r->start, magic, SELFMAG, &e) == 0 &&
           memcmp(magic, ELFMAG, SELFMAG) == 0;
}

static int view_read(pyspy_memsrc *view, uint64_t addr, void *buf, size_t len,
                     pyspy_error *err) {
    return pyspy_memsrc_read(view->impl, addr, buf, len, err);
}

static void view_close(pyspy_memsrc *view) {
    for (size_t i = 0; i < view->nregions; i++)
        free(view->regions[i].path);
    free(view->regions);
    free(view->origin);
    free(view);
}

static const pyspy_memsrc_ops view_ops = {
    .kind = "filtered", .read = view_read, .close = view_close};

int pyspy_core_filter_view(pyspy_memsrc *src, uint32_t filter,
                           pyspy_memsrc **out, pyspy_error *err) {
    pyspy_memsrc *v = calloc(1, sizeof *v);
    /* at most one split per region (ELF header page + the rest) */
    pyspy_region *rs = calloc(src->nregions * 2 + 1, sizeof *rs);
    if (!v || !rs) {
        free(v);
        free(rs);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    *v = *src;
    v->ops = &view_ops;
    v->impl = src;
    v->regions = rs;
    v->nregions = 0;
    v->origin = src->origin ? strdup(src->origin) : NULL;
    bool fail = false;
    for (size_t i = 0; i < src->nregions; i++) {
        const pyspy_region *r = &src->regions[i];
        pyspy_region *a = &rs[v->nregions++];
        *a = *r;
        a->path = r->path ? strdup(r->path) : NULL;
        fail |= r->path && !a->path;
        const pyspy_region *next =
            i + 1 < src->nregions ? &src->regions[i + 1] : NULL;
        if (!r->present || wanted(r, next, filter))
            continue;
        if ((filter & PYSPY_FILTER_ELF_HEADERS) &&
            starts_with_elf_header(src, r)) {
            /* keep the header page (build-id, program headers) only */
            pyspy_region *b = &rs[v->nregions++];
            *b = *r;
            b->path = r->path ? strdup(r->path) : NULL;
            fail |= r->path && !b->path;
            a->end = r->start + PAGE;
            b->start = a->end;
            b->file_offset = r->file_offset + PAGE;
            b->present = false;
        } else {
            a->present = false;
        }
    }
    if (fail) {
        view_close(v);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    *out = v;
    return 0;
}
