/* Regions from /proc/PID/maps. */
#include "capture/base/array.h"
#include "capture/process/proc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A process may have up to vm.max_map_count (65530 by default) maps. */
#define MAX_REGIONS (1u << 20)

void pyspy_regions_free(pyspy_region *r, size_t n) {
    if (!r)
        return;
    for (size_t i = 0; i < n; i++)
        free(r[i].path);
    free(r);
}

static int cmp_start(const void *a, const void *b) {
    const pyspy_region *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* One line of /proc/PID/maps into r; *parsed is false for a line that
 * is not a mapping. -1 only when out of memory. */
static int parse_line(char *line, pyspy_region *r, bool *parsed) {
    unsigned long long start, end, off;
    char perms[8];
    int pos = 0;
    *parsed = false;
    if (sscanf(line, "%llx-%llx %7s %llx %*s %*s%n", &start, &end, perms, &off,
               &pos) != 4 ||
        end <= start || strlen(perms) < 4)
        return 0;
    memset(r, 0, sizeof *r);
    r->start = start;
    r->end = end;
    r->file_offset = off;
    r->present = true;
    if (perms[0] == 'r')
        r->perms |= PYSPY_PERM_R;
    if (perms[1] == 'w')
        r->perms |= PYSPY_PERM_W;
    if (perms[2] == 'x')
        r->perms |= PYSPY_PERM_X;
    if (perms[3] == 's')
        r->perms |= PYSPY_PERM_SHARED;
    char *p = line + pos;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strlen(p);
    while (n && p[n - 1] == '\n')
        p[--n] = 0;
    if (n) {
        r->path = strdup(p);
        if (!r->path)
            return -1;
    }
    *parsed = true;
    return 0;
}

int pyspy_proc_read_maps(int pid, pyspy_region **out, size_t *nout,
                         pyspy_error *err) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return pyspy_proc_error(pid, errno, "read the memory map", err);
    pyspy_region *rs = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    bool oom = false;
    while (getline(&line, &lcap, f) > 0) {
        if (n >= MAX_REGIONS)
            break;
        if (n == cap) {
            size_t nc = cap;
            pyspy_region *nr =
                pyspy_array_grow(rs, &nc, cap + 1, sizeof *nr, 256);
            if (!nr) {
                oom = true;
                break;
            }
            rs = nr;
            cap = nc;
        }
        bool parsed;
        if (parse_line(line, &rs[n], &parsed)) {
            oom = true;
            break;
        }
        n += parsed;
    }
    int read_errno = ferror(f) ? errno : 0;
    free(line);
    fclose(f);
    if (oom) {
        pyspy_regions_free(rs, n);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    if (read_errno || n == 0) {
        pyspy_regions_free(rs, n);
        /* An empty map: a zombie or a process that exited meanwhile. */
        return pyspy_proc_error(pid, read_errno ? read_errno : ESRCH,
                                "read the memory map", err);
    }
    qsort(rs, n, sizeof *rs, cmp_start);
    *out = rs;
    *nout = n;
    return 0;
}
