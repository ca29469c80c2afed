/* pprof: a gzipped perftools.profiles.Profile (formats/profile.proto,
 * encoded by the code protoc-c generates from it at build time). Values
 * are samples/count and wall/nanoseconds; one location per aggregated
 * frame (its function, file and line); one sample per thread and stack,
 * labelled with the thread's id and name and the pid, so a reader can
 * split a profile by thread as the other record formats do. */
#include "formats/record_formats.h"
#include "capture/base/array.h"
#include "capture/base/map.h"
#include "capture/base/strtab.h"

#include <protobuf-c/protobuf-c.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__ValueType ValueType;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Label Label;
typedef Perftools__Profiles__Location Location;
typedef Perftools__Profiles__Line Line;
typedef Perftools__Profiles__Function Function;

/* pprof refers to every string by its index in one table, and to
 * functions by id; functions are found again through a hash map over
 * their own strings. */
typedef struct pp {
    pyspy_strtab strs; /* string_table */
    Function **functions;
    size_t nfunctions;
    pyspy_map funcs; /* hash of name and file -> index in functions */
} pp;

typedef struct func_key {
    const pp *p;
    const char *name, *file;
} func_key;

/* The string's index in string_table (-1 on OOM). */
static int64_t str_index(pp *p, const char *s) {
    uint32_t i;
    return pyspy_strtab_intern(&p->strs, s, &i) ? -1 : (int64_t)i;
}

static bool function_is(const void *ctx, uint32_t i) {
    const func_key *k = ctx;
    const Function *f = k->p->functions[i];
    return strcmp(k->p->strs.s[f->name], k->name) == 0 &&
           strcmp(k->p->strs.s[f->filename], k->file) == 0;
}

static uint64_t function_hash(const char *name, const char *file) {
    uint64_t h = pyspy_hash_bytes(name, strlen(name));
    return (h * 0x9E3779B97F4A7C15ull) ^ pyspy_hash_bytes(file, strlen(file));
}

/* The id of the function name in file (-1 on OOM): frames that differ
 * only by line share it, as pprof expects. */
static int64_t function_id(pp *p, const char *name, const char *file) {
    func_key k = {p, name, file};
    uint64_t h = function_hash(name, file);
    uint32_t i;
    if (pyspy_map_find_hashed(&p->funcs, h, function_is, &k, &i))
        return (int64_t)i + 1;
    Function *f = malloc(sizeof *f);
    if (!f)
        return -1;
    perftools__profiles__function__init(f);
    f->id = p->nfunctions + 1;
    int64_t n = str_index(p, name), fl = str_index(p, file);
    if (n < 0 || fl < 0) {
        free(f);
        return -1;
    }
    f->name = n;
    f->system_name = n;
    f->filename = fl;
    /* functions[] was sized for one per frame by the caller. */
    i = (uint32_t)p->nfunctions;
    p->functions[i] = f;
    bool added;
    if (pyspy_map_add_hashed(&p->funcs, h, function_is, &k, &i, &added)) {
        free(f);
        return -1;
    }
    p->nfunctions++;
    return (int64_t)i + 1;
}

/* What protoc-c packs goes straight through deflate to the file, so the
 * encoded profile is never held whole in memory. */
typedef struct gz_sink {
    ProtobufCBuffer base;
    z_stream z;
    FILE *out;
    bool failed;
} gz_sink;

static void gz_run(gz_sink *g, int flush) {
    unsigned char buf[16384];
    do {
        g->z.next_out = buf;
        g->z.avail_out = sizeof buf;
        int zr = deflate(&g->z, flush);
        if (zr == Z_STREAM_ERROR) {
            g->failed = true;
            return;
        }
        size_t have = sizeof buf - g->z.avail_out;
        if (have && fwrite(buf, 1, have, g->out) != have) {
            g->failed = true;
            return;
        }
    } while (g->z.avail_out == 0);
}

static void gz_append(ProtobufCBuffer *b, size_t len, const uint8_t *data) {
    gz_sink *g = (gz_sink *)b;
    while (len && !g->failed) {
        uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
        g->z.next_in = (Bytef *)data;
        g->z.avail_in = chunk;
        gz_run(g, Z_NO_FLUSH);
        data += chunk;
        len -= chunk;
    }
}

static int write_gzipped(FILE *out, const Profile *prof, pyspy_error *err) {
    gz_sink g = {.base = {gz_append}, .out = out};
    /* windowBits 15 + 16: a gzip header and trailer, as pprof expects. */
    if (deflateInit2(&g.z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    protobuf_c_message_pack_to_buffer(&prof->base, &g.base);
    if (!g.failed) {
        g.z.next_in = NULL;
        g.z.avail_in = 0;
        gz_run(&g, Z_FINISH);
    }
    deflateEnd(&g.z);
    if (g.failed || ferror(out))
        return pyspy_error_set(err, PYSPY_E_IO, "write failed");
    return 0;
}

/* Samples and ticks of one thread's stack. */
typedef struct acc {
    uint64_t samples, ticks;
} acc;

int pyspy_write_pprof(FILE *out, const pyspy_agg *a, pyspy_error *err) {
    pp p = {0};
    Profile prof = PERFTOOLS__PROFILES__PROFILE__INIT;
    ValueType vt[3];
    ValueType *vts[2] = {&vt[0], &vt[1]};
    Location *locs = NULL;
    Location **locps = NULL;
    Line *lines = NULL;
    Line **lineps = NULL;
    Sample **samples = NULL;
    size_t nsamples = 0, capsamples = 0;
    acc *per_stack = NULL;
    uint32_t *touched = NULL;
    int rc = -1;
    uint64_t period_ns = a->opts.rate ? 1000000000ull / a->opts.rate : 0;

    if (str_index(&p, "") != 0)
        goto oom;
    size_t nf = a->nframes;
    p.functions = calloc(nf ? nf : 1, sizeof *p.functions);
    locs = calloc(nf ? nf : 1, sizeof *locs);
    locps = calloc(nf ? nf : 1, sizeof *locps);
    lines = calloc(nf ? nf : 1, sizeof *lines);
    lineps = calloc(nf ? nf : 1, sizeof *lineps);
    per_stack = calloc(a->nstacks ? a->nstacks : 1, sizeof *per_stack);
    touched = calloc(a->nstacks ? a->nstacks : 1, sizeof *touched);
    if (!p.functions || !locs || !locps || !lines || !lineps || !per_stack ||
        !touched)
        goto oom;

    int64_t s_samples = str_index(&p, "samples"),
            s_count = str_index(&p, "count"), s_wall = str_index(&p, "wall"),
            s_ns = str_index(&p, "nanoseconds"),
            s_tid = str_index(&p, "thread_id"),
            s_tname = str_index(&p, "thread_name"),
            s_pid = str_index(&p, "pid");
    if (s_samples < 0 || s_count < 0 || s_wall < 0 || s_ns < 0 || s_tid < 0 ||
        s_tname < 0 || s_pid < 0)
        goto oom;
    for (int i = 0; i < 3; i++)
        perftools__profiles__value_type__init(&vt[i]);
    vt[0].type = s_samples;
    vt[0].unit = s_count;
    vt[1].type = s_wall;
    vt[1].unit = s_ns;
    vt[2].type = s_wall;
    vt[2].unit = s_ns;
    prof.n_sample_type = 2;
    prof.sample_type = vts;
    prof.period_type = &vt[2];
    prof.period = (int64_t)period_ns;

    /* Location i + 1 is frame i. Labels as the other formats show them:
     * meta frames (process, thread) have no file. */
    for (size_t i = 0; i < nf; i++) {
        const pyspy_agg_frame *f = &a->frames[i];
        const char *file = f->full_filename[0] ? f->full_filename : f->filename;
        int64_t fid = function_id(&p, f->name, file);
        if (fid < 0)
            goto oom;
        perftools__profiles__location__init(&locs[i]);
        perftools__profiles__line__init(&lines[i]);
        lines[i].function_id = (uint64_t)fid;
        lines[i].line = a->opts.show_line_numbers ? f->line : 0;
        lineps[i] = &lines[i];
        locs[i].id = i + 1;
        locs[i].n_line = 1;
        locs[i].line = &lineps[i];
        locps[i] = &locs[i];
    }
    prof.n_location = nf;
    prof.location = locps;
    prof.n_function = p.nfunctions;
    prof.function = p.functions;

    int64_t first = 0, last = 0;
    bool any = false;
    for (size_t t = 0; t < a->nthreads; t++) {
        const pyspy_agg_thread *th = &a->threads[t];
        size_t ntouched = 0;
        for (size_t r = 0; r < th->nruns; r++) {
            const pyspy_agg_run *run = &th->runs[r];
            if (run->stack >= a->nstacks || !run->count)
                continue;
            acc *c = &per_stack[run->stack];
            if (!c->samples)
                touched[ntouched++] = run->stack;
            c->samples += run->count;
            c->ticks +=
                run->count - 1 + (run->first_ticks ? run->first_ticks : 1);
            if (!any || run->first_us < first)
                first = run->first_us;
            if (!any || run->last_us > last)
                last = run->last_us;
            any = true;
        }
        uint64_t tid = th->os_thread_id ? th->os_thread_id : th->thread_id;
        for (size_t k = 0; k < ntouched; k++) {
            uint32_t s = touched[k];
            const pyspy_agg_stack *st = &a->stacks[s];
            acc c = per_stack[s];
            per_stack[s] = (acc){0, 0};
            if (pyspy_array_reserve(&samples, &capsamples, nsamples + 1,
                                    sizeof *samples, 256))
                goto oom;
            /* One allocation per sample: the message, its values, its
             * labels and its (leaf first) location ids. */
            size_t nlabels = th->name ? 3 : 2;
            size_t size = sizeof(Sample) + 2 * sizeof(int64_t) +
                          nlabels * (sizeof(Label) + sizeof(Label *)) +
                          st->nframes * sizeof(uint64_t);
            char *mem = calloc(1, size);
            if (!mem)
                goto oom;
            Sample *sm = (Sample *)mem;
            perftools__profiles__sample__init(sm);
            samples[nsamples++] = sm;
            int64_t *vals = (int64_t *)(mem + sizeof(Sample));
            Label *labs = (Label *)(vals + 2);
            Label **labps = (Label **)(labs + nlabels);
            uint64_t *ids = (uint64_t *)(labps + nlabels);
            vals[0] = (int64_t)c.samples;
            vals[1] = (int64_t)(c.ticks * period_ns);
            sm->n_value = 2;
            sm->value = vals;
            for (uint32_t k2 = 0; k2 < st->nframes; k2++)
                ids[k2] = (uint64_t)st->frames[st->nframes - 1 - k2] + 1;
            sm->n_location_id = st->nframes;
            sm->location_id = ids;
            for (size_t l = 0; l < nlabels; l++) {
                perftools__profiles__label__init(&labs[l]);
                labps[l] = &labs[l];
            }
            labs[0].key = s_tid;
            labs[0].num = (int64_t)tid;
            labs[1].key = s_pid;
            labs[1].num = th->pid;
            if (th->name) {
                char *clean = pyspy_text_clean(th->name);
                int64_t si = clean ? str_index(&p, clean) : -1;
                free(clean);
                if (si < 0)
                    goto oom;
                labs[2].key = s_tname;
                labs[2].str = si;
            }
            sm->n_label = nlabels;
            sm->label = labps;
        }
    }
    prof.n_sample = nsamples;
    prof.sample = samples;
    if (any)
        prof.duration_nanos = (last - first) * 1000 + (int64_t)period_ns;
    prof.n_string_table = p.strs.n;
    prof.string_table = p.strs.s;
    rc = write_gzipped(out, &prof, err);
    goto done;
oom:
    pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
done:
    for (size_t i = 0; i < nsamples; i++)
        free(samples[i]);
    free(samples);
    for (size_t i = 0; i < p.nfunctions; i++)
        free(p.functions[i]);
    free(p.functions);
    free(locs);
    free(locps);
    free(lines);
    free(lineps);
    free(per_stack);
    free(touched);
    pyspy_strtab_free(&p.strs);
    pyspy_map_free(&p.funcs);
    return rc;
}
