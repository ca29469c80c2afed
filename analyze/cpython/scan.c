/* Bounded scanning of one module's mapped data, and per-module symbol
 * lookup, for interpreter discovery. */
#include "analyze/cpython/find.h"
#include "capture/elf/symbols.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK (1u << 20)

static uint64_t address_of(const pyspy_module *m, const pyspy_symbol *s,
                           uint64_t *size) {
    if (!s || !s->value)
        return 0;
    if (size)
        *size = s->size;
    return s->value + m->load_bias;
}

uint64_t pyspy_module_symbol(pyspy_module *m, const char *name,
                             uint64_t *size) {
    return m ? address_of(m, pyspy_module_find_symbol(m, name), size) : 0;
}

uint64_t pyspy_module_api_symbol(pyspy_module *m, const char *name,
                                 uint64_t *size) {
    return m ? address_of(m, pyspy_module_find_dynamic(m, name), size) : 0;
}

static bool belongs(const pyspy_region *r, const pyspy_region *prev,
                    const pyspy_module *m) {
    if (r->path)
        return m->path && strcmp(r->path, m->path) == 0;
    /* .bss beyond the file: anonymous, right after the module's last
     * file mapping. */
    return prev && prev->path && m->path && strcmp(prev->path, m->path) == 0 &&
           prev->end == r->start;
}

/* Reads [start, end) in chunks; a chunk that cannot be read (a hole in a
 * core, a page gone in a live process) is skipped, not fatal. */
static int scan_range(pyspy_memsrc *src, uint64_t start, uint64_t end,
                      size_t overlap, uint64_t *budget, uint8_t *buf,
                      pyspy_scan_fn fn, void *ctx) {
    uint64_t a = start;
    while (a<end && * budget> 0) {
        uint64_t len = end - a;
        if (len > CHUNK)
            len = CHUNK;
        if (len > *budget)
            len = *budget;
        pyspy_error e = {0};
        if (pyspy_memsrc_read(src, a, buf, (size_t)len, &e) == 0) {
            int rc = fn(ctx, a, buf, (size_t)len);
            if (rc)
                return rc;
        }
        *budget -= len;
        if (a + len >= end)
            break;
        a += len > overlap ? len - overlap : len;
    }
    return 0;
}

int pyspy_scan_module(pyspy_memsrc *src, const pyspy_module *m,
                      uint32_t need_perms, uint32_t refuse_perms,
                      size_t overlap, uint64_t max_bytes, pyspy_scan_fn fn,
                      void *ctx) {
    uint8_t *buf = malloc(CHUNK);
    if (!buf)
        return 0;
    uint64_t budget = max_bytes;
    int rc = 0;
    const pyspy_region *prev = NULL;
    for (size_t i = 0; i < src->nregions && !rc && budget > 0; i++) {
        const pyspy_region *r = &src->regions[i];
        bool mine = m ? belongs(r, prev, m) : true;
        prev = r;
        if (!mine || !r->present || r->end <= r->start)
            continue;
        if ((r->perms & need_perms) != need_perms || (r->perms & refuse_perms))
            continue;
        rc = scan_range(src, r->start, r->end, overlap, &budget, buf, fn, ctx);
    }
    free(buf);
    return rc;
}
