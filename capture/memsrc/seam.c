/* Operations shared by every memory source: dispatch through ops (with
 * what a missing optional operation means), region lookup, and symbol
 * lookup over the modules a source exposes. */
#include "capture/elf/symbols.h"
#include "capture/memsrc/regions.h"
#include <pyspy.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pyspy_memsrc_read(pyspy_memsrc *src, uint64_t addr, void *buf, size_t len,
                      pyspy_error *err) {
    if (!src || !src->ops || !src->ops->read)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "no memory source");
    if (len == 0)
        return 0;
    if (addr + len < addr)
        return pyspy_error_set(err, PYSPY_E_UNREADABLE,
                               "read at 0x%llx wraps around",
                               (unsigned long long)addr);
    return src->ops->read(src, addr, buf, len, err);
}

int pyspy_memsrc_suspend(pyspy_memsrc *src, pyspy_error *err) {
    return src->ops->suspend ? src->ops->suspend(src, err) : 0;
}

void pyspy_memsrc_resume(pyspy_memsrc *src) {
    if (src->ops->resume)
        src->ops->resume(src);
}

int pyspy_memsrc_refresh(pyspy_memsrc *src, pyspy_error *err) {
    return src->ops->refresh ? src->ops->refresh(src, err) : 0;
}

size_t pyspy_memsrc_readv(pyspy_memsrc *src, const struct iovec *local,
                          const struct iovec *remote, size_t n, bool *ok) {
    if (src->ops->readv)
        return src->ops->readv(src, local, remote, n, ok);
    size_t nok = 0;
    for (size_t i = 0; i < n; i++) {
        ok[i] =
            local[i].iov_len == remote[i].iov_len &&
            pyspy_memsrc_read(src, (uint64_t)(uintptr_t)remote[i].iov_base,
                              local[i].iov_base, local[i].iov_len, NULL) == 0;
        nok += ok[i];
    }
    return nok;
}

void pyspy_memsrc_sampling(pyspy_memsrc *src, bool need_regs,
                           bool need_states) {
    if (src->ops->sampling)
        src->ops->sampling(src, need_regs, need_states);
}

bool pyspy_memsrc_check_sleepers(pyspy_memsrc *src) {
    return src->ops->check_sleepers ? src->ops->check_sleepers(src) : true;
}

const char *pyspy_memsrc_file_root(const pyspy_memsrc *src) {
    const char *root = src->ops->file_root ? src->ops->file_root(src) : NULL;
    return root ? root : "";
}

bool pyspy_memsrc_is_stopped(const pyspy_memsrc *src) {
    return src->ops->is_stopped && src->ops->is_stopped(src);
}

int pyspy_memsrc_reread_regions(pyspy_memsrc *src, pyspy_error *err) {
    return src->ops->reread_regions ? src->ops->reread_regions(src, err) : 0;
}

int pyspy_memsrc_read_cstr(pyspy_memsrc *src, uint64_t addr, char *buf,
                           size_t max, pyspy_error *err) {
    if (max == 0)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "empty buffer");
    /* Read in small chunks so a string near the end of a region does not
     * fail just because a fixed-size read would cross into a hole. */
    size_t got = 0;
    while (got + 1 < max) {
        size_t chunk = 64 - ((addr + got) & 63);
        if (chunk > max - 1 - got)
            chunk = max - 1 - got;
        if (pyspy_memsrc_read(src, addr + got, buf + got, chunk, err) != 0)
            return -1;
        void *nul = memchr(buf + got, 0, chunk);
        if (nul)
            return 0;
        got += chunk;
    }
    buf[max - 1] = 0;
    return 0;
}

size_t pyspy_regions_index(const pyspy_region *regions, size_t n,
                           uint64_t addr) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (addr < regions[mid].start)
            hi = mid;
        else if (addr >= regions[mid].end)
            lo = mid + 1;
        else
            return mid;
    }
    return n;
}

const pyspy_region *pyspy_memsrc_region_at(const pyspy_memsrc *src,
                                           uint64_t addr) {
    /* Regions are kept sorted by start by every source. */
    size_t i = pyspy_regions_index(src->regions, src->nregions, addr);
    return i < src->nregions ? &src->regions[i] : NULL;
}

uint64_t pyspy_memsrc_symbol(const pyspy_memsrc *src, const char *module_hint,
                             const char *name, uint64_t *size_out) {
    for (size_t i = 0; i < src->nmodules; i++) {
        pyspy_module *m = &src->modules[i];
        if (module_hint && (!m->path || !strstr(m->path, module_hint)))
            continue;
        const pyspy_symbol *s = pyspy_module_find_symbol(m, name);
        if (s && s->value) {
            if (size_out)
                *size_out = s->size;
            return s->value + m->load_bias;
        }
    }
    return 0;
}

void pyspy_memsrc_close(pyspy_memsrc *src) {
    if (src && src->ops && src->ops->close)
        src->ops->close(src);
}

static const char *absent_reason(uint8_t why) {
    switch (why) {
    case PYSPY_ABSENT_NO_FILE:
        return "the file is not on this host";
    case PYSPY_ABSENT_OTHER_BUILD:
        return "the file found is another build";
    case PYSPY_ABSENT_UNVERIFIABLE:
        return "nothing in the core shows which build the file must be";
    case PYSPY_ABSENT_MUTABLE:
        return "a shared or writable mapping cannot be read from its file";
    case PYSPY_ABSENT_LEAN:
        return "pages a lean snapshot left out: it holds what the analysis "
               "that took it read; take it with the options used now "
               "(--locals, --native)";
    default:
        return NULL;
    }
}

static bool missed(const pyspy_region *r) {
    return r->wanted && (!r->present || r->absent_why == PYSPY_ABSENT_LEAN);
}

static bool same_file(const pyspy_region *a, const pyspy_region *b) {
    return a->absent_why == b->absent_why &&
           (a->path && b->path ? strcmp(a->path, b->path) == 0
                               : a->path == b->path);
}

static void put(char *buf, size_t len, size_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void put(char *buf, size_t len, size_t *at, const char *fmt, ...) {
    if (*at + 1 >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *at, len - *at, fmt, ap);
    va_end(ap);
    if (w > 0)
        *at = *at + (size_t)w < len ? *at + (size_t)w : len - 1;
}

/* Grouped by file (and reason), in address order: "PATH at 0x..-0x..,
 * 0x..-0x.. (why)". */
size_t pyspy_memsrc_describe_missed(const pyspy_memsrc *src, char *buf,
                                    size_t len) {
    size_t n = 0, at = 0;
    if (len)
        buf[0] = 0;
    for (size_t i = 0; i < src->nregions; i++) {
        const pyspy_region *r = &src->regions[i];
        if (!missed(r))
            continue;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = missed(&src->regions[k]) && same_file(&src->regions[k], r);
        if (seen)
            continue;
        put(buf, len, &at, "%s%s at ", at ? "; " : "",
            r->path ? r->path : "anonymous memory");
        bool first = true;
        for (size_t k = i; k < src->nregions; k++) {
            const pyspy_region *o = &src->regions[k];
            if (!missed(o) || !same_file(o, r))
                continue;
            n++;
            put(buf, len, &at, "%s0x%llx-0x%llx", first ? "" : ", ",
                (unsigned long long)o->start, (unsigned long long)o->end);
            first = false;
        }
        const char *why = absent_reason(r->absent_why);
        if (why)
            put(buf, len, &at, " (%s)", why);
    }
    return n;
}
