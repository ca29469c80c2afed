/* Modules of a live process: every ELF file it maps, with build-id and
 * symbols read from the file the process actually maps (through
 * /proc/PID/map_files, which also reaches deleted files and other mount
 * namespaces; /proc/PID/root/<path> when map_files is not allowed). */
#include "capture/base/array.h"
#include "capture/elf/symbols.h"
#include "capture/process/proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MODULES 65536u

void pyspy_modules_free(pyspy_module *m, size_t n) {
    if (!m)
        return;
    for (size_t i = 0; i < n; i++)
        pyspy_module_free(&m[i]);
    free(m);
}

static bool seen_path(const pyspy_module *ms, size_t n, const char *path) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(ms[i].path, path) == 0)
            return true;
    return false;
}

/* The header now, the symbols from the same file when first asked for. */
static int load_one(int pid, const pyspy_region *r, pyspy_module *m,
                    uint64_t *first_vaddr) {
    char p[4200];
    pyspy_error e = {0};
    snprintf(p, sizeof p, "/proc/%d/map_files/%llx-%llx", pid,
             (unsigned long long)r->start, (unsigned long long)r->end);
    if (pyspy_elf_load_header(p, m, first_vaddr, &e) != 0) {
        if (e.code == PYSPY_E_FORMAT)
            return -1; /* a data file, not an ELF object */
        memset(m, 0, sizeof *m);
        snprintf(p, sizeof p, "/proc/%d/root%s", pid, r->path);
        if (pyspy_elf_load_header(p, m, first_vaddr, &e) != 0)
            return -1;
    }
    return pyspy_module_set_symbol_file(m, p);
}

int pyspy_live_load_modules(pyspy_memsrc *src, int pid, pyspy_error *err) {
    pyspy_module *ms = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < src->nregions && n < MAX_MODULES; i++) {
        const pyspy_region *r = &src->regions[i];
        if (!r->path || r->path[0] != '/' || r->file_offset != 0 ||
            seen_path(ms, n, r->path))
            continue;
        pyspy_module m;
        memset(&m, 0, sizeof m);
        uint64_t first_vaddr = 0;
        if (load_one(pid, r, &m, &first_vaddr) != 0) {
            pyspy_module_free(&m);
            continue;
        }
        m.path = strdup(r->path);
        pyspy_module *nm = ms;
        if (m.path && n == cap)
            nm = pyspy_array_grow(ms, &cap, cap + 1, sizeof *nm, 32);
        if (!m.path || !nm) {
            pyspy_module_free(&m);
            pyspy_modules_free(ms, n);
            return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        }
        ms = nm;
        m.load_bias = r->start - first_vaddr;
        m.start = r->start;
        m.end = r->end;
        for (size_t k = i; k < src->nregions; k++) {
            pyspy_region *o = &src->regions[k];
            if (!o->path || strcmp(o->path, r->path) != 0)
                continue;
            if (o->end > m.end)
                m.end = o->end;
            memcpy(o->build_id, m.build_id, sizeof o->build_id);
            o->build_id_len = m.build_id_len;
        }
        ms[n++] = m;
    }
    pyspy_modules_free(src->modules, src->nmodules);
    src->modules = ms;
    src->nmodules = n;
    return 0;
}
