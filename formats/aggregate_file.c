/* pyspy's aggregate file (record -f aggregate): the whole aggregate of a
 * recording, so that pyspy merge of partial recordings gives what one run
 * over all their inputs gives, in every format (raw collapsed stacks lose
 * the threads, their names and the time line).
 *
 * Layout, little-endian: a 32-byte header ("PYSPYAGG", u32 version, u32
 * zero, u64 payload length, u64 XXH64 of the payload) and the payload, a
 * sequence of LEB128 numbers (signed ones zigzag-coded) and strings (a
 * length, then that many bytes, no NUL):
 *   options: flags (idle, gil, threads, subprocesses, line numbers,
 *     counts only), period_us, rate
 *   times: origin_us, first_us, last_us (signed); total, gil, active
 *   frames: n, then name, filename, full filename, line (signed), flags
 *     (native, meta)
 *   stacks: n, then nframes, the frame indices, count
 *   threads: n, then pid (signed), thread id, OS thread id, has-name and
 *     name, samples, ticks, runs: n, then stack, count, first_ticks,
 *     first_us - the previous run's last_us (the thread's first: -
 *     first_us of the aggregate), last_us - first_us
 *   processes: n, then pid, ppid (signed), has-cmdline and cmdline
 * The reader takes every byte as hostile: the checksum first, every count
 * bounded by the bytes left before anything is allocated for it, every
 * index in range, and the totals consistent, so that what it accepts is
 * an aggregate every writer can take. */
#include "formats/record_formats.h"

#include "capture/snapshot/format.h"

#include <stdlib.h>
#include <string.h>

#define MAGIC "PYSPYAGG"
#define VERSION 1
#define HEADER 32
#define MAX_STRING (16u << 20)

enum {
    O_IDLE = 1,
    O_GIL = 2,
    O_THREADS = 4,
    O_SUBPROCESSES = 8,
    O_LINENO = 16,
    O_COUNTS_ONLY = 32,
    O_EXCEPTION = 64, /* --mode exception */
    O_GC = 128        /* --gc */
};

static void put_uv(pyspy_buf *b, uint64_t v) {
    uint8_t x[10];
    size_t n = 0;
    do {
        x[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            x[n] |= 0x80;
        n++;
    } while (v);
    pyspy_buf_put(b, x, n);
}

static void put_sv(pyspy_buf *b, int64_t v) {
    put_uv(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void put_str(pyspy_buf *b, const char *s) {
    size_t n = strlen(s);
    put_uv(b, n);
    pyspy_buf_put(b, s, n);
}

static void put_opt_str(pyspy_buf *b, const char *s) {
    put_uv(b, s != NULL);
    if (s)
        put_str(b, s);
}

static void put_opts(pyspy_buf *b, const pyspy_agg_opts *o) {
    put_uv(b, (o->include_idle ? O_IDLE : 0) | (o->gil_only ? O_GIL : 0) |
                  (o->include_thread_ids ? O_THREADS : 0) |
                  (o->subprocesses ? O_SUBPROCESSES : 0) |
                  (o->show_line_numbers ? O_LINENO : 0) |
                  (o->counts_only ? O_COUNTS_ONLY : 0) |
                  (o->exception_only ? O_EXCEPTION : 0) |
                  (o->gc_frames ? O_GC : 0));
    put_uv(b, o->period_us);
    put_uv(b, o->rate);
}

static void put_threads(pyspy_buf *b, const pyspy_agg *a) {
    put_uv(b, a->nthreads);
    for (size_t i = 0; i < a->nthreads; i++) {
        const pyspy_agg_thread *th = &a->threads[i];
        put_sv(b, th->pid);
        put_uv(b, th->thread_id);
        put_uv(b, th->os_thread_id);
        put_opt_str(b, th->name);
        put_uv(b, th->samples);
        put_uv(b, th->ticks);
        put_uv(b, th->nruns);
        int64_t prev = a->first_us;
        for (size_t r = 0; r < th->nruns; r++) {
            const pyspy_agg_run *run = &th->runs[r];
            put_uv(b, run->stack);
            put_uv(b, run->count);
            put_uv(b, run->first_ticks);
            put_sv(b, (int64_t)((uint64_t)run->first_us - (uint64_t)prev));
            put_sv(b,
                   (int64_t)((uint64_t)run->last_us - (uint64_t)run->first_us));
            prev = run->last_us;
        }
    }
}

int pyspy_write_aggregate(FILE *out, const pyspy_agg *a, pyspy_error *err) {
    pyspy_buf b = {0};
    put_opts(&b, &a->opts);
    put_sv(&b, a->origin_us);
    put_sv(&b, a->first_us);
    put_sv(&b, a->last_us);
    put_uv(&b, a->total);
    put_uv(&b, a->gil);
    put_uv(&b, a->active);
    put_uv(&b, a->nframes);
    for (size_t i = 0; i < a->nframes; i++) {
        const pyspy_agg_frame *f = &a->frames[i];
        put_str(&b, f->name);
        put_str(&b, f->filename);
        put_str(&b, f->full_filename);
        put_sv(&b, f->line);
        put_uv(&b, (f->is_native ? 1u : 0u) | (f->is_meta ? 2u : 0u));
    }
    put_uv(&b, a->nstacks);
    for (size_t s = 0; s < a->nstacks; s++) {
        const pyspy_agg_stack *st = &a->stacks[s];
        put_uv(&b, st->nframes);
        for (uint32_t k = 0; k < st->nframes; k++)
            put_uv(&b, st->frames[k]);
        put_uv(&b, st->count);
    }
    put_threads(&b, a);
    size_t np = pyspy_agg_nprocesses(a);
    put_uv(&b, np);
    for (size_t i = 0; i < np; i++) {
        int pid, ppid;
        const char *cmd;
        pyspy_agg_process(a, i, &pid, &ppid, &cmd);
        put_sv(&b, pid);
        put_sv(&b, ppid);
        put_opt_str(&b, cmd);
    }
    pyspy_buf h = {0};
    pyspy_buf_put(&h, MAGIC, 8);
    pyspy_buf_u32(&h, VERSION);
    pyspy_buf_u32(&h, 0);
    pyspy_buf_u64(&h, b.len);
    pyspy_buf_u64(&h, pyspy_xxh64(b.data, b.len, 0));
    int rc = 0;
    if (b.oom || h.oom)
        rc = pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    else if (fwrite(h.data, 1, h.len, out) != h.len ||
             (b.len && fwrite(b.data, 1, b.len, out) != b.len))
        rc = pyspy_error_set(err, PYSPY_E_IO, "write failed");
    pyspy_buf_free(&b);
    pyspy_buf_free(&h);
    return rc;
}

bool pyspy_is_aggregate(const void *head, size_t n) {
    return n >= 8 && memcmp(head, MAGIC, 8) == 0;
}

/* The reader's state: the payload and the first problem met. */
typedef struct rd {
    pyspy_cursor c;
    const char *name;
    pyspy_error *err;
    int rc;
} rd;

static int bad(rd *r, const char *what) {
    if (r->rc == 0)
        r->rc = pyspy_error_set(r->err, PYSPY_E_FORMAT,
                                "%s: not a valid aggregate file (%s)", r->name,
                                what);
    return r->rc;
}

static uint64_t uv(rd *r) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        uint8_t byte = pyspy_cur_u8(&r->c);
        if (r->c.bad) {
            bad(r, "truncated");
            return 0;
        }
        if (shift == 63 && byte > 1) {
            bad(r, "number out of range");
            return 0;
        }
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            return v;
    }
    bad(r, "number out of range");
    return 0;
}

static int64_t sv(rd *r) {
    uint64_t v = uv(r);
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* A count of items of at least one byte each, so never more than the
 * bytes left, and at most max. */
static size_t count(rd *r, uint64_t max, const char *what) {
    uint64_t n = uv(r);
    if (r->rc == 0 && (n > r->c.left || n > max))
        bad(r, what);
    return r->rc ? 0 : (size_t)n;
}

static char *str(rd *r) {
    uint64_t n = uv(r);
    if (r->rc)
        return NULL;
    if (n > r->c.left || n > MAX_STRING) {
        bad(r, "string runs past the end");
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        r->rc = pyspy_error_set(r->err, PYSPY_E_GENERIC, "out of memory");
        return NULL;
    }
    pyspy_cur_bytes(&r->c, s, (size_t)n);
    s[n] = '\0';
    if (memchr(s, '\0', (size_t)n)) {
        free(s);
        bad(r, "NUL in a string");
        return NULL;
    }
    return s;
}

static char *opt_str(rd *r) {
    uint64_t has = uv(r);
    if (has > 1)
        bad(r, "bad flag");
    return has == 1 && r->rc == 0 ? str(r) : NULL;
}

static int oom(rd *r) {
    if (r->rc == 0)
        r->rc = pyspy_error_set(r->err, PYSPY_E_GENERIC, "out of memory");
    return r->rc;
}

static void read_frames(rd *r, pyspy_agg *a, uint32_t **fmap, size_t *nf) {
    size_t n = count(r, UINT32_MAX, "too many frames");
    *fmap = malloc((n ? n : 1) * sizeof **fmap);
    if (!*fmap) {
        oom(r);
        return;
    }
    *nf = n;
    for (size_t i = 0; i < n && r->rc == 0; i++) {
        pyspy_agg_frame f = {0};
        f.name = str(r);
        f.filename = str(r);
        f.full_filename = str(r);
        int64_t line = sv(r);
        uint64_t flags = uv(r);
        if (r->rc == 0 && (line < INT32_MIN || line > INT32_MAX || flags > 3))
            bad(r, "bad frame");
        f.line = (int)line;
        f.is_native = flags & 1;
        f.is_meta = flags & 2;
        if (r->rc == 0 && pyspy_agg_intern_frame(a, &f, &(*fmap)[i]))
            oom(r);
        free(f.name);
        free(f.filename);
        free(f.full_filename);
    }
}

static void read_stacks(rd *r, pyspy_agg *a, const uint32_t *fmap, size_t nf,
                        uint32_t **smap, size_t *ns, uint64_t *sum) {
    size_t n = count(r, UINT32_MAX, "too many stacks");
    uint32_t *ids = NULL;
    *smap = malloc((n ? n : 1) * sizeof **smap);
    if (!*smap) {
        oom(r);
        return;
    }
    *ns = n;
    for (size_t s = 0; s < n && r->rc == 0; s++) {
        size_t len = count(r, UINT32_MAX, "stack too deep");
        free(ids);
        ids = malloc((len ? len : 1) * sizeof *ids);
        if (!ids) {
            oom(r);
            break;
        }
        for (size_t k = 0; k < len && r->rc == 0; k++) {
            uint64_t f = uv(r);
            if (r->rc == 0 && f >= nf)
                bad(r, "frame index out of range");
            ids[k] = r->rc ? 0 : fmap[f];
        }
        uint64_t c = uv(r);
        if (r->rc)
            break;
        uint32_t id;
        if (pyspy_agg_intern_stack(a, ids, (uint32_t)len, &id))
            oom(r);
        else if (__builtin_add_overflow(a->stacks[id].count, c,
                                        &a->stacks[id].count) ||
                 __builtin_add_overflow(*sum, c, sum))
            bad(r, "counts overflow");
        else
            (*smap)[s] = id;
    }
    free(ids);
}

static void read_runs(rd *r, pyspy_agg *a, uint32_t t, const uint32_t *smap,
                      size_t ns, uint64_t samples) {
    size_t n = count(r, SIZE_MAX, "too many runs");
    int64_t prev = a->first_us;
    uint64_t in_runs = 0;
    for (size_t i = 0; i < n && r->rc == 0; i++) {
        uint64_t st = uv(r), cnt = uv(r), ticks = uv(r);
        int64_t gap = sv(r), span = sv(r);
        if (r->rc)
            break;
        pyspy_agg_run run;
        if (st >= ns || cnt == 0 || cnt > UINT32_MAX || ticks == 0 ||
            ticks > UINT32_MAX || gap < 0 || span < 0 ||
            __builtin_add_overflow(prev, gap, &run.first_us) ||
            __builtin_add_overflow(run.first_us, span, &run.last_us) ||
            run.last_us > a->last_us ||
            __builtin_add_overflow(in_runs, cnt, &in_runs)) {
            bad(r, "bad run");
            break;
        }
        run.stack = smap[st];
        run.count = (uint32_t)cnt;
        run.first_ticks = (uint32_t)ticks;
        prev = run.last_us;
        if (!a->opts.counts_only && pyspy_agg_append_run(a, t, &run))
            oom(r);
    }
    if (r->rc == 0 && (a->opts.counts_only ? n != 0 : in_runs != samples))
        bad(r, "runs do not add up to the samples");
}

static void read_threads(rd *r, pyspy_agg *a, const uint32_t *smap, size_t ns,
                         uint64_t *sum) {
    size_t n = count(r, UINT32_MAX, "too many threads");
    for (size_t i = 0; i < n && r->rc == 0; i++) {
        int64_t pid = sv(r);
        uint64_t tid = uv(r), os_tid = uv(r);
        char *name = opt_str(r);
        uint64_t samples = uv(r), ticks = uv(r);
        uint32_t t = 0;
        if (r->rc == 0 &&
            (pid < INT32_MIN || pid > INT32_MAX || ticks < samples ||
             __builtin_add_overflow(*sum, samples, sum)))
            bad(r, "bad thread");
        size_t before = a->nthreads;
        if (r->rc == 0 &&
            pyspy_agg_intern_thread(a, (int)pid, tid, os_tid, name, &t))
            oom(r);
        free(name);
        if (r->rc)
            break;
        if (a->nthreads == before)
            bad(r, "a thread twice");
        a->threads[t].samples = samples;
        a->threads[t].ticks = ticks;
        read_runs(r, a, t, smap, ns, samples);
    }
}

static void read_processes(rd *r, pyspy_agg *a) {
    size_t n = count(r, UINT32_MAX, "too many processes");
    for (size_t i = 0; i < n && r->rc == 0; i++) {
        int64_t pid = sv(r), ppid = sv(r);
        char *cmd = opt_str(r);
        if (r->rc == 0 && (pid < INT32_MIN || pid > INT32_MAX ||
                           ppid < INT32_MIN || ppid > INT32_MAX))
            bad(r, "bad process");
        if (r->rc == 0 && pyspy_agg_note_process(a, (int)pid, (int)ppid, cmd))
            oom(r);
        free(cmd);
    }
}

static void read_payload(rd *r, pyspy_agg **out) {
    pyspy_agg_opts o = {0};
    uint64_t flags = uv(r);
    o.period_us = uv(r);
    o.rate = uv(r);
    if (r->rc == 0 && flags > 255)
        bad(r, "unknown options");
    o.include_idle = flags & O_IDLE;
    o.gil_only = flags & O_GIL;
    o.include_thread_ids = flags & O_THREADS;
    o.subprocesses = flags & O_SUBPROCESSES;
    o.show_line_numbers = flags & O_LINENO;
    o.counts_only = flags & O_COUNTS_ONLY;
    o.exception_only = flags & O_EXCEPTION;
    o.gc_frames = flags & O_GC;
    if (r->rc)
        return;
    pyspy_agg *a = pyspy_agg_new(&o, r->err);
    if (!a) {
        r->rc = -1;
        return;
    }
    a->origin_us = sv(r);
    a->first_us = sv(r);
    a->last_us = sv(r);
    a->total = uv(r);
    a->gil = uv(r);
    a->active = uv(r);
    if (r->rc == 0 &&
        (a->first_us > a->last_us || a->gil > a->total || a->active > a->total))
        bad(r, "bad totals");
    uint32_t *fmap = NULL, *smap = NULL;
    size_t nf = 0, ns = 0;
    uint64_t in_stacks = 0, in_threads = 0;
    if (r->rc == 0)
        read_frames(r, a, &fmap, &nf);
    if (r->rc == 0)
        read_stacks(r, a, fmap, nf, &smap, &ns, &in_stacks);
    if (r->rc == 0)
        read_threads(r, a, smap, ns, &in_threads);
    if (r->rc == 0)
        read_processes(r, a);
    free(fmap);
    free(smap);
    if (r->rc == 0 && r->c.left)
        bad(r, "bytes after the end");
    /* Every sample is in one stack; a raw file's have no thread. */
    if (r->rc == 0 && (in_stacks != a->total || in_threads > a->total))
        bad(r, "counts do not add up");
    if (r->rc) {
        pyspy_agg_free(a);
        return;
    }
    *out = a;
}

int pyspy_read_aggregate(const void *data, size_t len, const char *name,
                         pyspy_agg **out, pyspy_error *err) {
    *out = NULL;
    rd r = {{data, len, false}, name, err, 0};
    if (len < HEADER || !pyspy_is_aggregate(data, len))
        return bad(&r, "no header");
    char magic[8];
    pyspy_cur_bytes(&r.c, magic, sizeof magic);
    uint32_t version = pyspy_cur_u32(&r.c);
    uint32_t zero = pyspy_cur_u32(&r.c);
    uint64_t plen = pyspy_cur_u64(&r.c);
    uint64_t sum = pyspy_cur_u64(&r.c);
    if (version != VERSION)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s: aggregate file version %u, this pyspy "
                               "reads version %d",
                               name, version, VERSION);
    if (zero != 0)
        return bad(&r, "bad header");
    if (plen != r.c.left)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s: aggregate file is truncated or has bytes "
                               "after its end (%llu bytes, the header says "
                               "%llu)",
                               name, (unsigned long long)r.c.left,
                               (unsigned long long)plen);
    if (pyspy_xxh64(r.c.p, r.c.left, 0) != sum)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s: aggregate file is damaged (checksum "
                               "mismatch)",
                               name);
    read_payload(&r, out);
    return r.rc;
}
