/* A recording named on the command line (diff's sides, merge's inputs):
 * a directory of snapshots or cores, one snapshot or core, an aggregate
 * file (record -f aggregate) or a raw collapsed-stack file, told apart by
 * content, each read into an aggregate. */
#include "analyze/sample/record.h"
#include "capture/base/array.h"
#include "capture/base/file_io.h"
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
/* An aggregate is read whole; it grows with distinct stacks and runs,
 * never with the inputs, so this is far above any real one. */
#define MAX_AGGREGATE_BYTES (2ull << 30)

static int cmp_str(const void *x, const void *y) {
    return strcmp(*(char *const *)x, *(char *const *)y);
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

static void free_list(char **v, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int pyspy_inputs_expand(char *const *paths, int n, char ***out, int *nout,
                        pyspy_error *err) {
    char **all = NULL;
    size_t nall = 0, cap = 0;
    for (int i = 0; i < n; i++) {
        struct stat st;
        char **files = NULL;
        int nfiles = 0;
        if (strcmp(paths[i], "-") != 0 && stat(paths[i], &st) == 0 &&
            S_ISDIR(st.st_mode)) {
            if (list_dir(paths[i], &files, &nfiles, err)) {
                free_list(all, nall);
                return -1;
            }
        } else {
            files = malloc(sizeof *files);
            if (files && !(files[0] = strdup(paths[i]))) {
                free(files);
                files = NULL;
            }
            nfiles = files ? 1 : 0;
        }
        if (!files || nall + (size_t)nfiles > MAX_DIR_FILES ||
            pyspy_array_reserve(&all, &cap, nall + (size_t)nfiles, sizeof *all,
                                64) != 0) {
            bool many = files && nall + (size_t)nfiles > MAX_DIR_FILES;
            free_list(files, (size_t)nfiles);
            free_list(all, nall);
            return many
                       ? pyspy_error_set(err, PYSPY_E_USAGE,
                                         "more than %d input files",
                                         MAX_DIR_FILES)
                       : pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        }
        memcpy(all + nall, files, (size_t)nfiles * sizeof *files);
        nall += (size_t)nfiles;
        free(files);
    }
    *out = all;
    *nout = (int)nall;
    return 0;
}

void pyspy_inputs_free(char **paths, int n) {
    free_list(paths, n > 0 ? (size_t)n : 0);
}

int pyspy_input_kind_of(const char *path, pyspy_input_kind *kind,
                        pyspy_error *err) {
    struct stat st;
    if (stat(path, &st) != 0)
        return pyspy_error_set(err, PYSPY_E_IO, "'%s': %s", path,
                               strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        *kind = PYSPY_INPUT_SNAPSHOTS;
        return 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pyspy_error_set(err, PYSPY_E_IO, "cannot open '%s': %s", path,
                               strerror(errno));
    unsigned char m[8];
    ssize_t n = read(fd, m, sizeof m);
    close(fd);
    *kind = PYSPY_INPUT_RAW;
    /* An ELF core, or a zstd stream (snapshot, compressed core). */
    if (n >= 4 &&
        ((m[0] == 0x7f && m[1] == 'E' && m[2] == 'L' && m[3] == 'F') ||
         (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)))
        *kind = PYSPY_INPUT_SNAPSHOTS;
    else if (n > 0 && pyspy_is_aggregate(m, (size_t)n))
        *kind = PYSPY_INPUT_AGGREGATE;
    return 0;
}

static int read_aggregate_file(const char *path, pyspy_agg **out,
                               pyspy_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pyspy_error_set(err, PYSPY_E_IO, "cannot open '%s': %s", path,
                               strerror(errno));
    struct stat st;
    int rc = 0;
    void *data = NULL;
    if (fstat(fd, &st) != 0)
        rc =
            pyspy_error_set(err, PYSPY_E_IO, "'%s': %s", path, strerror(errno));
    else if ((uint64_t)st.st_size > MAX_AGGREGATE_BYTES)
        rc = pyspy_error_set(err, PYSPY_E_FORMAT,
                             "'%s' is larger than an aggregate file can be "
                             "(%llu bytes)",
                             path, (unsigned long long)MAX_AGGREGATE_BYTES);
    else if (!(data = malloc(st.st_size ? (size_t)st.st_size : 1)))
        rc = pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    else
        rc = pyspy_pread_full(fd, data, (size_t)st.st_size, 0, path, err);
    close(fd);
    if (rc == 0)
        rc = pyspy_read_aggregate(data, (size_t)st.st_size, path, out, err);
    free(data);
    return rc;
}

pyspy_agg_opts pyspy_raw_agg_opts(const pyspy_config *cfg) {
    pyspy_agg_opts ao = pyspy_record_agg_opts(cfg);
    /* A raw file's labels are kept as they are. */
    ao.show_line_numbers = true;
    ao.counts_only = true;
    return ao;
}

static int read_raw_file(const pyspy_config *cfg, const char *path,
                         pyspy_agg **out, pyspy_error *err) {
    pyspy_agg_opts ao = pyspy_raw_agg_opts(cfg);
    pyspy_agg *a = pyspy_agg_new(&ao, err);
    if (!a)
        return -1;
    FILE *f = fopen(path, "r");
    int rc = f ? pyspy_read_raw(f, path, a, err)
               : pyspy_error_set(err, PYSPY_E_IO, "cannot open '%s': %s", path,
                                 strerror(errno));
    if (f)
        fclose(f);
    if (rc) {
        pyspy_agg_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

/* Snapshots by offline record's reader, which says itself what went
 * wrong. */
static int read_snapshots(const pyspy_config *cfg, const char *what,
                          const char *path, pyspy_agg **out, uint64_t *errors) {
    pyspy_error err = {0};
    struct stat st;
    char **files = NULL;
    int nfiles = 0;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (list_dir(path, &files, &nfiles, &err)) {
            fprintf(stderr, "Error: %s: %s\n", what, err.msg);
            return 1;
        }
    } else {
        files = malloc(sizeof *files);
        if (files && (files[0] = strdup(path)))
            nfiles = 1;
    }
    uint64_t kept = 0;
    int rc = nfiles ? pyspy_record_offline_read(cfg, files, nfiles, out, &kept,
                                                errors)
                    : (fprintf(stderr, "Error: out of memory\n"), 1);
    for (int i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    return rc;
}

int pyspy_read_recording(const pyspy_config *cfg, const char *what,
                         const char *path, pyspy_input_kind *kind,
                         pyspy_agg **out, uint64_t *errors) {
    pyspy_error err = {0};
    *out = NULL;
    *errors = 0;
    if (pyspy_input_kind_of(path, kind, &err)) {
        fprintf(stderr, "Error: %s %s\n", what, err.msg);
        return 1;
    }
    int rc = 0;
    switch (*kind) {
    case PYSPY_INPUT_SNAPSHOTS:
        return read_snapshots(cfg, what, path, out, errors);
    case PYSPY_INPUT_AGGREGATE:
        rc = read_aggregate_file(path, out, &err);
        break;
    case PYSPY_INPUT_RAW:
        rc = read_raw_file(cfg, path, out, &err);
        break;
    }
    if (rc) {
        fprintf(stderr, "Error: %s: %s\n", what, err.msg);
        return 1;
    }
    return 0;
}
