/* Seeds for the fuzz harnesses from the fixture snapshots (run by
 * tests/fuzz/make-corpus, not by the tests):
 *   seedgen walker SNAPSHOT OUT [locals] [N]
 *                                 the memory image of a walk (of the
 *                                 first N thread states, default all)
 *   seedgen lines SNAPSHOT OUTDIR         every line table the walk read
 *   seedgen debug SNAPSHOT OUT            the _Py_DebugOffsets (3.13+)
 *   seedgen snapshot CORE OUT             CORE rewritten by this build's
 *                                         snapshot writer
 *   seedgen compress FILE OUT             FILE as the seekable writer
 *                                         compresses it
 * A walk is recorded through a memory source that forwards to the
 * snapshot and notes each range read, so the image holds exactly the
 * bytes the walker needs (fuzz_common.h describes its layout). */
#include "analyze/cpython/find.h"
#include "analyze/cpython/layout_tables.h"
#include "analyze/cpython/python.h"
#include "analyze/walk/cache.h"
#include "analyze/walk/walker.h"
#include "capture/snapshot/snapshot.h"
#include "capture/snapshot/zstd_seekable.h"

#include <fcntl.h>
#include "tests/fuzz/fuzz_common.h"

#include <stdio.h>

typedef struct {
    uint64_t start, end;
} range;

static pyspy_memsrc *inner;
static range *ranges;
static size_t nranges, cap;
/* A word the image holds changed: the last thread state's next pointer,
 * cut to 0 so a seed holds a few threads, not every one. */
static uint64_t cut_at;

static int read_cut(uint64_t addr, void *buf, size_t len, pyspy_error *err) {
    if (pyspy_memsrc_read(inner, addr, buf, len, err) != 0)
        return -1;
    if (cut_at && cut_at >= addr && cut_at + 8 <= addr + len)
        memset((uint8_t *)buf + (cut_at - addr), 0, 8);
    return 0;
}

static int rec_read(pyspy_memsrc *src, uint64_t addr, void *buf, size_t len,
                    pyspy_error *err) {
    (void)src;
    if (read_cut(addr, buf, len, err) != 0)
        return -1;
    if (nranges == cap) {
        cap = cap ? cap * 2 : 1024;
        ranges = realloc(ranges, cap * sizeof *ranges);
        if (!ranges)
            abort();
    }
    ranges[nranges++] = (range){addr, addr + len};
    return 0;
}

static const pyspy_memsrc_ops rec_ops = {.kind = "snapshot", .read = rec_read};

static int cmp_range(const void *a, const void *b) {
    const range *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static void put(FILE *f, uint64_t v, int n) {
    for (int i = 0; i < n; i++)
        fputc((int)(v >> (8 * i)) & 0xff, f);
}

static void die(const char *what, const pyspy_error *e) {
    fprintf(stderr, "seedgen: %s: %s\n", what, e ? e->msg : "failed");
    exit(1);
}

/* The recording source shares the snapshot's regions, threads and
 * modules. */
static pyspy_memsrc open_recorded(const char *path, pyspy_python *py) {
    pyspy_error err = {0};
    if (pyspy_memsrc_open_file(path, &inner, &err) != 0)
        die(path, &err);
    if (pyspy_python_find(inner, py, &err) != 0)
        die("no Python", &err);
    pyspy_memsrc rec = *inner;
    rec.ops = &rec_ops;
    rec.impl = NULL;
    return rec;
}

static void walk(pyspy_memsrc *rec, const pyspy_python *py, bool locals,
                 pyspy_walk_cache *cache) {
    pyspy_walk_opts opts = {.lineno = PYSPY_LINENO_LAST_INSTRUCTION,
                            .locals = locals ? 1 : 0,
                            .cache = cache};
    pyspy_traces out;
    pyspy_error err = {0};
    if (pyspy_stack_traces(rec, py, &opts, &out, &err) != 0)
        die("walk", &err);
    pyspy_traces_free(&out);
}

static uint64_t read_word(uint64_t addr) {
    uint64_t v = 0;
    pyspy_error e = {0};
    if (pyspy_memsrc_read(inner, addr, &v, 8, &e) != 0)
        return 0;
    return v;
}

/* Keeps the first max_threads thread states of the first interpreter. */
static void cut_threads(const pyspy_python *py, int max_threads) {
    const pyspy_py_layout *l = &py->layout;
    uint64_t ts = read_word(py->interp_head + (uint64_t)l->interp_tstate_head);
    for (int i = 1; ts && i < max_threads; i++)
        ts = read_word(ts + (uint64_t)l->tstate_next);
    if (ts && read_word(ts + (uint64_t)l->tstate_next))
        cut_at = ts + (uint64_t)l->tstate_next;
}

static void write_walker(const char *snap, const char *out, bool locals,
                         int max_threads) {
    pyspy_python py;
    pyspy_memsrc rec = open_recorded(snap, &py);
    if (max_threads > 0)
        cut_threads(&py, max_threads);
    const pyspy_py_layout *b =
        pyspy_py_layout_builtin(py.major, py.minor, py.layout.free_threaded);
    if (py.debug_offsets) {
        pyspy_py_layout l = *b;
        pyspy_error e = {0};
        if (pyspy_debug_offsets_apply(
                &rec, py.runtime_addr + (uint64_t)b->runtime_debug_offsets, &l,
                &e) != 0)
            die("_Py_DebugOffsets", &e);
    }
    walk(&rec, &py, locals, NULL);
    qsort(ranges, nranges, sizeof *ranges, cmp_range);
    /* Ranges closer than this are joined: fewer chunk headers. */
    const uint64_t join = 64;
    size_t n = 0;
    for (size_t i = 0; i < nranges; i++) {
        const pyspy_region *r = pyspy_memsrc_region_at(inner, ranges[i].start);
        const pyspy_region *q =
            n ? pyspy_memsrc_region_at(inner, ranges[n - 1].start) : NULL;
        if (n && q == r && ranges[i].start <= ranges[n - 1].end + join) {
            uint64_t e = ranges[i].end;
            if (r && e > r->end)
                e = r->end;
            if (e > ranges[n - 1].end)
                ranges[n - 1].end = e;
            continue;
        }
        ranges[n++] = ranges[i];
    }
    FILE *f = fopen(out, "wb");
    if (!f)
        die(out, NULL);
    int flags = PYSPY_FUZZ_NAMES | PYSPY_FUZZ_TWICE |
                (PYSPY_LINENO_LAST_INSTRUCTION * PYSPY_FUZZ_LINENO_1);
    if (py.layout.free_threaded)
        flags |= PYSPY_FUZZ_FREE_THREADED;
    if (py.debug_offsets)
        flags |= PYSPY_FUZZ_DEBUG_OFFSETS;
    if (locals)
        flags |= PYSPY_FUZZ_LOCALS;
    size_t nthreads = inner->nthreads < PYSPY_FUZZ_MAX_THREADS
                          ? inner->nthreads
                          : PYSPY_FUZZ_MAX_THREADS;
    put(f, (uint64_t)py.major, 1);
    put(f, (uint64_t)py.minor, 1);
    put(f, (uint64_t)flags, 1);
    put(f, nthreads, 1);
    put(f, py.runtime_addr, 8);
    put(f, py.interp_head, 8);
    put(f, py.tstate_current_addr, 8);
    put(f, (uint64_t)inner->proc.pid, 4);
    for (size_t i = 0; i < nthreads; i++) {
        const pyspy_thread *t = &inner->threads[i];
        put(f, (uint64_t)t->tid, 4);
        put(f, (uint64_t)(uint8_t)t->state, 1);
        put(f, t->has_regs, 1);
        long sc = t->syscall < -2 || t->syscall > 32767 ? -2 : t->syscall;
        put(f, (uint64_t)sc, 2);
        put(f, t->regs[PYSPY_REG_RSP], 8);
        put(f, t->regs[21], 8);
        put(f, t->regs[PYSPY_REG_ORIG_RAX], 8);
    }
    size_t bytes = 0, nchunks = 0;
    for (size_t i = 0; i < n && nchunks < PYSPY_FUZZ_MAX_CHUNKS; i++) {
        const pyspy_region *r = pyspy_memsrc_region_at(inner, ranges[i].start);
        size_t len = (size_t)(ranges[i].end - ranges[i].start);
        uint8_t *b2 = malloc(len);
        pyspy_error e = {0};
        if (!b2 || read_cut(ranges[i].start, b2, len, &e) != 0)
            die("re-read", &e);
        uint8_t perms = r ? (uint8_t)(r->perms & 7u) : 0;
        if (r && r->path && strcmp(r->path, "[stack]") == 0)
            perms |= PYSPY_FUZZ_STACK_CHUNK;
        put(f, ranges[i].start, 8);
        put(f, len, 4);
        put(f, perms, 1);
        fwrite(b2, 1, len, f);
        free(b2);
        bytes += len;
        nchunks++;
    }
    fclose(f);
    fprintf(stderr, "%s: %zu chunks, %zu bytes, %zu threads\n", out, nchunks,
            bytes, nthreads);
}

static void write_lines(const char *snap, const char *dir) {
    pyspy_python py;
    pyspy_memsrc rec = open_recorded(snap, &py);
    pyspy_walk_cache *cache = pyspy_walk_cache_new(1000000, 1000000);
    walk(&rec, &py, false, cache);
    pyspy_code_cache *cc = pyspy_walk_cache_code(cache);
    int kind = py.layout.lines == PYSPY_LINES_LNOTAB
                   ? (py.layout.lnotab_unsigned_deltas ? 1 : 0)
               : py.layout.lines == PYSPY_LINES_LINETABLE310 ? 2
                                                             : 3;
    size_t n = 0;
    for (size_t i = 0; cc && i < cc->n; i++) {
        const pyspy_code_info *c = &cc->entries[i];
        if (!c->addr || !c->valid || !c->linetable)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%zu", dir, n++);
        FILE *f = fopen(path, "wb");
        if (!f)
            die(path, NULL);
        put(f, (uint64_t)kind, 1);
        put(f, (uint64_t)(uint32_t)c->firstlineno, 4);
        put(f, c->memo_n ? (uint64_t)c->memo_lasti[0] : 0, 8);
        fwrite(c->linetable, 1, c->linetable_len, f);
        fclose(f);
    }
    fprintf(stderr, "%s: %zu line tables\n", dir, n);
    pyspy_walk_cache_free(cache);
}

static void write_debug(const char *snap, const char *out) {
    pyspy_python py;
    pyspy_memsrc rec = open_recorded(snap, &py);
    (void)rec;
    const pyspy_py_debug_map *d = NULL;
    for (size_t i = 0; i < pyspy_py_debug_maps_count; i++)
        if (pyspy_py_debug_maps[i].major == py.major &&
            pyspy_py_debug_maps[i].minor == py.minor &&
            pyspy_py_debug_maps[i].free_threaded == py.layout.free_threaded)
            d = &pyspy_py_debug_maps[i];
    if (!d || !py.debug_offsets)
        die("no _Py_DebugOffsets in this snapshot", NULL);
    const pyspy_py_layout *b =
        pyspy_py_layout_builtin(py.major, py.minor, py.layout.free_threaded);
    uint64_t at = py.runtime_addr + (uint64_t)b->runtime_debug_offsets;
    size_t len = (size_t)d->size;
    uint8_t *buf = malloc(len);
    pyspy_error e = {0};
    if (!buf || pyspy_memsrc_read(inner, at, buf, len, &e) != 0)
        die("read", &e);
    FILE *f = fopen(out, "wb");
    if (!f)
        die(out, NULL);
    put(f, (uint64_t)py.major, 1);
    put(f, (uint64_t)py.minor, 1);
    put(f, py.layout.free_threaded, 1);
    put(f, 0, 1);
    put(f, 0, 4); /* the walk starts at the bytes themselves */
    fwrite(buf, 1, len, f);
    fclose(f);
    free(buf);
    fprintf(stderr, "%s: %zu bytes\n", out, len);
}

static void write_snapshot(const char *core, const char *out) {
    pyspy_memsrc *src = NULL;
    pyspy_error err = {0};
    if (pyspy_memsrc_open_file(core, &src, &err) != 0)
        die(core, &err);
    pyspy_snapshot_opts opts = {.hide_progress = true,
                                .tool_version = "seedgen"};
    pyspy_snapshot_stats st;
    if (pyspy_snapshot_write(src, &opts, out, &st, &err) != 0)
        die(out, &err);
    pyspy_memsrc_close(src);
}

static void write_compressed(const char *in, const char *out) {
    FILE *f = fopen(in, "rb");
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pyspy_zsk_writer *w = NULL;
    pyspy_error err = {0};
    if (!f || fd < 0 || pyspy_zsk_writer_new(fd, out, 19, &w, &err) != 0)
        die(out, &err);
    uint8_t buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        if (pyspy_zsk_writer_write(w, buf, n, &err) != 0)
            die(out, &err);
    if (pyspy_zsk_writer_finish(w, &err) != 0)
        die(out, &err);
    pyspy_zsk_writer_free(w);
    fclose(f);
    close(fd);
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "walker") == 0) {
        bool locals = argc > 4 && !strcmp(argv[4], "locals");
        int n = argc > 4 + locals ? atoi(argv[4 + locals]) : 0;
        write_walker(argv[2], argv[3], locals, n);
    } else if (argc == 4 && strcmp(argv[1], "lines") == 0)
        write_lines(argv[2], argv[3]);
    else if (argc == 4 && strcmp(argv[1], "debug") == 0)
        write_debug(argv[2], argv[3]);
    else if (argc == 4 && strcmp(argv[1], "snapshot") == 0)
        write_snapshot(argv[2], argv[3]);
    else if (argc == 4 && strcmp(argv[1], "compress") == 0)
        write_compressed(argv[2], argv[3]);
    else {
        fprintf(stderr,
                "usage: seedgen walker|lines|debug|snapshot|compress IN OUT\n");
        return 2;
    }
    return 0;
}
