/* diff: a differential flamegraph of two recordings. Each side is a raw
 * (collapsed-stack) file, one snapshot or core, or a directory of them;
 * snapshots are read as offline record reads them. */
#include "analyze/cli/commands.h"
#include "analyze/sample/record.h"
#include "capture/base/cli_args.h"
#include "formats/record_formats.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DIR_FILES 1000000

static int cmp_str(const void *x, const void *y) {
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* An ELF core or a zstd stream (snapshot, compressed core) by content. */
static bool is_core_file(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    unsigned char m[4];
    ssize_t n = read(fd, m, sizeof m);
    close(fd);
    return n == 4 &&
           ((m[0] == 0x7f && m[1] == 'E' && m[2] == 'L' && m[3] == 'F') ||
            (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd));
}

/* The files of a directory, sorted (a series' names sort in time). */
static int list_dir(const char *dir, char ***out, int *nout, pyspy_error *err) {
    DIR *d = opendir(dir);
    if (!d)
        return pyspy_error_set(err, PYSPY_E_IO, "cannot open '%s': %s", dir,
                               strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == MAX_DIR_FILES) {
            rc = pyspy_error_set(err, PYSPY_E_USAGE,
                                 "'%s' holds more than %d files", dir,
                                 MAX_DIR_FILES);
            break;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *path = malloc(len);
        if (path)
            snprintf(path, len, "%s/%s", dir, e->d_name);
        struct stat st;
        if (path && (stat(path, &st) != 0 || !S_ISREG(st.st_mode))) {
            free(path);
            continue;
        }
        if (path && n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **nn = realloc(names, nc * sizeof *nn);
            if (nn) {
                names = nn;
                cap = nc;
            } else {
                free(path);
                path = NULL;
            }
        }
        if (!path)
            rc = pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        else
            names[n++] = path;
    }
    closedir(d);
    if (rc == 0 && n == 0)
        rc = pyspy_error_set(err, PYSPY_E_USAGE,
                             "'%s' holds no snapshot or core files", dir);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return rc;
    }
    qsort(names, n, sizeof *names, cmp_str);
    *out = names;
    *nout = (int)n;
    return 0;
}

/* One side of the diff into *out; 0 or 1 (exit) after saying why. */
static int load_side(const pyspy_config *cfg, const char *what,
                     const char *path, pyspy_agg **out) {
    pyspy_error err = {0};
    struct stat st;
    *out = NULL;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "Error: %s '%s': %s\n", what, path, strerror(errno));
        return 1;
    }
    char **files = NULL;
    int nfiles = 0;
    bool snapshots = false;
    if (S_ISDIR(st.st_mode)) {
        if (list_dir(path, &files, &nfiles, &err)) {
            fprintf(stderr, "Error: %s: %s\n", what, err.msg);
            return 1;
        }
        snapshots = true;
    } else if (is_core_file(path)) {
        files = malloc(sizeof *files);
        if (files && (files[0] = strdup(path)))
            nfiles = 1;
        snapshots = true;
    }
    int rc;
    if (snapshots) {
        uint64_t kept = 0, errors = 0;
        rc = nfiles ? pyspy_record_offline_read(cfg, files, nfiles, out, &kept,
                                                &errors)
                    : (fprintf(stderr, "Error: out of memory\n"), 1);
        for (int i = 0; i < nfiles; i++)
            free(files[i]);
        free(files);
        return rc;
    }
    pyspy_agg_opts ao = pyspy_record_agg_opts(cfg);
    /* A raw file's labels are kept as they are. */
    ao.show_line_numbers = true;
    ao.counts_only = true;
    pyspy_agg *a = pyspy_agg_new(&ao, &err);
    FILE *f = a ? fopen(path, "r") : NULL;
    if (a && !f)
        pyspy_error_set(&err, PYSPY_E_IO, "cannot open '%s': %s", path,
                        strerror(errno));
    rc = f ? pyspy_read_raw(f, path, a, &err) : -1;
    if (f)
        fclose(f);
    if (rc) {
        fprintf(stderr, "Error: %s: %s\n", what, err.msg);
        pyspy_agg_free(a);
        return 1;
    }
    *out = a;
    return 0;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s && s[1] ? s + 1 : p;
}

int pyspy_cmd_diff(const pyspy_config *cfg) {
    const char *outname = cfg->filename ? cfg->filename : "diff.svg";
    pyspy_agg *base = NULL, *cur = NULL;
    if (load_side(cfg, "base", cfg->inputs[0], &base) ||
        load_side(cfg, "new", cfg->inputs[1], &cur)) {
        pyspy_agg_free(base);
        return 1;
    }
    if (cur->total == 0) {
        fprintf(stderr, "Error: new '%s' holds no samples\n", cfg->inputs[1]);
        pyspy_agg_free(base);
        pyspy_agg_free(cur);
        return 1;
    }
    char title[512];
    snprintf(title, sizeof title, "pyspy diff: %s -> %s",
             base_name(cfg->inputs[0]), base_name(cfg->inputs[1]));
    pyspy_error err = {0};
    int rc = 0;
    FILE *f = fopen(outname, "w");
    if (!f) {
        fprintf(stderr, "Error: cannot write '%s': %s\n", outname,
                strerror(errno));
        rc = 1;
    } else {
        rc = pyspy_write_flamegraph_diff(f, base, cur, title, &err);
        if (fclose(f) != 0 && rc == 0)
            rc = pyspy_error_set(&err, PYSPY_E_IO, "%s", strerror(errno));
        if (rc) {
            fprintf(stderr, "Error: writing '%s': %s\n", outname, err.msg);
            rc = 1;
        } else {
            printf("Wrote differential flamegraph to '%s'. Base samples: %llu "
                   "New samples: %llu\n",
                   outname, (unsigned long long)base->total,
                   (unsigned long long)cur->total);
        }
    }
    pyspy_agg_free(base);
    pyspy_agg_free(cur);
    return rc;
}
