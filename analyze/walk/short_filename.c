/* py-spy shows a file relative to the folder its top-level package sits
 * in. That folder is a sys.path entry, and sys.path is in the target's
 * memory, so the same names come out of a snapshot analyzed on a host
 * that has none of the target's files. */
#include "analyze/objects/objects.h"
#include "analyze/walk/internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PATH_ENTRIES 512
#define MAX_ENTRY_BYTES 4096

/* Shared by every walk in the process (offline record walks in
 * parallel), so that no two reads ever share a gen. */
static _Atomic uint64_t last_gen;

static void read_entries(pyspy_memsrc *src, const pyspy_python *py,
                         uint64_t interp, pyspy_sys_path *out);

void pyspy_sys_path_read(pyspy_memsrc *src, const pyspy_python *py,
                         uint64_t interp, pyspy_sys_path *out) {
    uint64_t d0 = src->damaged_reads;
    read_entries(src, py, interp, out);
    out->damaged = src->damaged_reads != d0;
}

static void read_entries(pyspy_memsrc *src, const pyspy_python *py,
                         uint64_t interp, pyspy_sys_path *out) {
    out->dirs = NULL;
    out->n = 0;
    out->gen = atomic_fetch_add(&last_gen, 1) + 1;
    const pyspy_py_layout *l = &py->layout;
    uint64_t sysdict = 0, list = 0;
    if (!interp || l->interp_sysdict < 0 ||
        pyspy_memsrc_read(src, interp + (uint64_t)l->interp_sysdict, &sysdict,
                          sizeof sysdict, NULL) < 0 ||
        !sysdict)
        return;
    if (pyspy_py_dict_get_str(src, py, sysdict, "path", &list, NULL) < 0 ||
        !list)
        return;
    uint64_t *items = NULL;
    size_t n = 0;
    if (pyspy_py_seq_items(src, py, list, &items, &n, MAX_PATH_ENTRIES, NULL) <
        0)
        return;
    out->dirs = calloc(n ? n : 1, sizeof *out->dirs);
    if (!out->dirs) {
        free(items);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char *s = pyspy_py_str(src, py, items[i], MAX_ENTRY_BYTES, NULL);
        if (!s)
            continue;
        size_t len = strlen(s);
        while (len > 1 && s[len - 1] == '/')
            s[--len] = 0;
        /* Relative entries ("" is the working directory) cannot be
         * matched against absolute co_filename values. */
        if (s[0] != '/' || len < 2) {
            free(s);
            continue;
        }
        out->dirs[out->n++] = s;
    }
    free(items);
}

void pyspy_sys_path_free(pyspy_sys_path *p) {
    for (size_t i = 0; p->dirs && i < p->n; i++)
        free(p->dirs[i]);
    free(p->dirs);
    p->dirs = NULL;
    p->n = 0;
    p->gen = 0;
}

const char *pyspy_short_filename(const pyspy_sys_path *p,
                                 const char *filename) {
    size_t best = 0;
    for (size_t i = 0; p && i < p->n; i++) {
        size_t len = strlen(p->dirs[i]);
        if (len > best && strncmp(filename, p->dirs[i], len) == 0 &&
            filename[len] == '/' && filename[len + 1])
            best = len;
    }
    if (best)
        return filename + best + 1;
    const char *slash = strrchr(filename, '/');
    if (slash && slash[1])
        return slash + 1;
    return filename;
}
