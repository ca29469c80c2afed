/* Writer of the zstd seekable format (capture/snapshot/zstd_seekable.h). Frames
 * are independent, so they are compressed in parallel: a ring of in-flight
 * frames, worker threads taking them in order, the calling thread writing
 * the results in order. Memory stays bounded by the ring (about
 * 2 x frame size per slot). An all-zero frame (untouched heap, .bss) is
 * compressed once and its bytes reused. */
#include "capture/base/file_io.h"
#include "capture/snapshot/zstd_seekable.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#define SKIPPABLE_MAGIC 0x184D2A5Eu
#define SEEKABLE_MAGIC 0x8F92EAB1u
#define FOOTER_SIZE 9
#define MAX_FRAMES 0x8000000u
#define MAX_WORKERS 16

static void put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

typedef struct {
    uint32_t csize, dsize;
} entry;

enum { SLOT_FREE, SLOT_QUEUED, SLOT_DONE };

typedef struct {
    uint8_t *in;
    size_t in_len;
    uint8_t *out;
    size_t out_len; /* or a zstd error code (zerr) */
    bool zerr;
    const uint8_t *result; /* out, or the shared zero frame */
    int state;
} slot;

struct pyspy_zsk_writer {
    int fd;
    char *name;
    int level;
    size_t out_cap;
    slot *slots;
    size_t nslots;
    /* Job k lives in slots[k % nslots]. fill: next job to fill (the slot
     * being filled); take: next job a worker takes; wrote: next job to
     * write out. wrote <= take <= fill < wrote + nslots. */
    uint64_t fill, take, wrote;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    bool stop, sync_ok;
    pthread_t threads[MAX_WORKERS];
    ZSTD_CCtx *cctx[MAX_WORKERS + 1];
    size_t nthreads;
    uint8_t *zero_frame; /* compressed PYSPY_ZSK_FRAME_INPUT zeros */
    size_t zero_len;
    entry *entries;
    size_t nentries, cap_entries;
    uint64_t bytes_out;
};

static bool all_zero(const uint8_t *p, size_t n) {
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static void compress_slot(pyspy_zsk_writer *w, ZSTD_CCtx *cctx, slot *s) {
    if (s->in_len == PYSPY_ZSK_FRAME_INPUT && w->zero_frame &&
        all_zero(s->in, s->in_len)) {
        s->result = w->zero_frame;
        s->out_len = w->zero_len;
        s->zerr = false;
        return;
    }
    size_t n = ZSTD_compress2(cctx, s->out, w->out_cap, s->in, s->in_len);
    s->zerr = ZSTD_isError(n);
    s->out_len = n;
    s->result = s->out;
}

typedef struct {
    pyspy_zsk_writer *w;
    ZSTD_CCtx *cctx;
} worker_arg;

static void *worker(void *arg) {
    pyspy_zsk_writer *w = ((worker_arg *)arg)->w;
    ZSTD_CCtx *cctx = ((worker_arg *)arg)->cctx;
    free(arg);
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->stop && w->take == w->fill)
            pthread_cond_wait(&w->work, &w->mu);
        if (w->stop)
            break;
        slot *s = &w->slots[w->take++ % w->nslots];
        pthread_mutex_unlock(&w->mu);
        compress_slot(w, cctx, s);
        pthread_mutex_lock(&w->mu);
        s->state = SLOT_DONE;
        pthread_cond_broadcast(&w->done);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int set_params(ZSTD_CCtx *c, int level) {
    /* Frame checksums let both zstd -d and our reader detect corruption. */
    return ZSTD_isError(
               ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level)) ||
                   ZSTD_isError(
                       ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1))
               ? -1
               : 0;
}

static size_t worker_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 2)
        return 0; /* one CPU: compress on the calling thread */
    return n > MAX_WORKERS ? MAX_WORKERS : (size_t)n;
}

int pyspy_zsk_writer_new(int fd, const char *name, int level,
                         pyspy_zsk_writer **out, pyspy_error *err) {
    pyspy_zsk_writer *w = calloc(1, sizeof *w);
    if (!w)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    w->fd = fd;
    w->level = level ? level : 3;
    w->name = strdup(name ? name : "output");
    w->out_cap = ZSTD_compressBound(PYSPY_ZSK_FRAME_INPUT);
    size_t nworkers = worker_count();
    w->nslots = nworkers ? 2 * nworkers + 1 : 1;
    w->slots = calloc(w->nslots, sizeof *w->slots);
    bool ok = w->name && w->slots;
    for (size_t i = 0; ok && i < w->nslots; i++) {
        w->slots[i].in = malloc(PYSPY_ZSK_FRAME_INPUT);
        w->slots[i].out = malloc(w->out_cap);
        ok = w->slots[i].in && w->slots[i].out;
    }
    for (size_t i = 0; ok && i <= nworkers; i++) {
        w->cctx[i] = ZSTD_createCCtx();
        ok = w->cctx[i] && set_params(w->cctx[i], w->level) == 0;
    }
    if (ok) {
        /* cctx[nworkers] stays with the calling thread. */
        uint8_t *z = calloc(1, PYSPY_ZSK_FRAME_INPUT);
        w->zero_frame = malloc(w->out_cap);
        if (z && w->zero_frame) {
            size_t n = ZSTD_compress2(w->cctx[nworkers], w->zero_frame,
                                      w->out_cap, z, PYSPY_ZSK_FRAME_INPUT);
            if (ZSTD_isError(n)) {
                free(w->zero_frame);
                w->zero_frame = NULL;
            } else {
                w->zero_len = n;
            }
        }
        free(z);
    }
    if (ok && (pthread_mutex_init(&w->mu, NULL) != 0 ||
               pthread_cond_init(&w->work, NULL) != 0 ||
               pthread_cond_init(&w->done, NULL) != 0))
        ok = false;
    else if (ok)
        w->sync_ok = true;
    for (size_t i = 0; ok && i < nworkers; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (!a)
            break;
        *a = (worker_arg){w, w->cctx[i]};
        if (pthread_create(&w->threads[i], NULL, worker, a) != 0) {
            free(a);
            break;
        }
        w->nthreads++;
    }
    if (!ok) {
        pyspy_zsk_writer_free(w);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    *out = w;
    return 0;
}

static ZSTD_CCtx *own_cctx(pyspy_zsk_writer *w) {
    for (size_t i = MAX_WORKERS + 1; i-- > 0;)
        if (w->cctx[i])
            return w->cctx[i];
    return NULL;
}

/* Writes out the oldest job, waiting for its compression. */
static int write_oldest(pyspy_zsk_writer *w, pyspy_error *err) {
    slot *s = &w->slots[w->wrote % w->nslots];
    pthread_mutex_lock(&w->mu);
    while (s->state != SLOT_DONE)
        pthread_cond_wait(&w->done, &w->mu);
    pthread_mutex_unlock(&w->mu);
    if (s->zerr)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "zstd: %s",
                               ZSTD_getErrorName(s->out_len));
    if (w->nentries >= MAX_FRAMES)
        return pyspy_error_set(err, PYSPY_E_IO, "%s: too many zstd frames",
                               w->name);
    if (pyspy_write_full(w->fd, s->result, s->out_len, w->name, err) != 0)
        return -1;
    if (w->nentries == w->cap_entries) {
        size_t nc = w->cap_entries ? w->cap_entries * 2 : 64;
        entry *ne = realloc(w->entries, nc * sizeof *ne);
        if (!ne)
            return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        w->entries = ne;
        w->cap_entries = nc;
    }
    w->entries[w->nentries++] =
        (entry){(uint32_t)s->out_len, (uint32_t)s->in_len};
    w->bytes_out += s->out_len;
    s->in_len = 0;
    s->state = SLOT_FREE;
    w->wrote++;
    return 0;
}

/* Hands the slot being filled to the workers (or compresses it here). */
static int submit(pyspy_zsk_writer *w, pyspy_error *err) {
    slot *s = &w->slots[w->fill % w->nslots];
    if (s->in_len == 0)
        return 0;
    if (w->nthreads == 0) {
        compress_slot(w, own_cctx(w), s);
        s->state = SLOT_DONE;
        w->fill++;
        w->take = w->fill;
    } else {
        pthread_mutex_lock(&w->mu);
        s->state = SLOT_QUEUED;
        w->fill++;
        pthread_cond_signal(&w->work);
        pthread_mutex_unlock(&w->mu);
    }
    /* The next slot to fill must have been written out. */
    if (w->fill - w->wrote >= w->nslots)
        return write_oldest(w, err);
    return 0;
}

int pyspy_zsk_writer_write(pyspy_zsk_writer *w, const void *buf, size_t len,
                           pyspy_error *err) {
    const uint8_t *p = buf;
    while (len > 0) {
        slot *s = &w->slots[w->fill % w->nslots];
        size_t room = PYSPY_ZSK_FRAME_INPUT - s->in_len;
        size_t n = len < room ? len : room;
        memcpy(s->in + s->in_len, p, n);
        s->in_len += n;
        p += n;
        len -= n;
        if (s->in_len == PYSPY_ZSK_FRAME_INPUT && submit(w, err) != 0)
            return -1;
    }
    return 0;
}

int pyspy_zsk_writer_finish(pyspy_zsk_writer *w, pyspy_error *err) {
    if (submit(w, err) != 0)
        return -1;
    while (w->wrote < w->fill)
        if (write_oldest(w, err) != 0)
            return -1;
    size_t body = w->nentries * 8 + FOOTER_SIZE;
    size_t total = 8 + body;
    uint8_t *t = malloc(total);
    if (!t)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    put_le32(t, SKIPPABLE_MAGIC);
    put_le32(t + 4, (uint32_t)body);
    uint8_t *p = t + 8;
    for (size_t i = 0; i < w->nentries; i++, p += 8) {
        put_le32(p, w->entries[i].csize);
        put_le32(p + 4, w->entries[i].dsize);
    }
    put_le32(p, (uint32_t)w->nentries);
    p[4] = 0; /* descriptor: no checksums, reserved bits zero */
    put_le32(p + 5, SEEKABLE_MAGIC);
    int rc = pyspy_write_full(w->fd, t, total, w->name, err);
    free(t);
    if (rc == 0)
        w->bytes_out += total;
    return rc;
}

uint64_t pyspy_zsk_writer_bytes_out(const pyspy_zsk_writer *w) {
    return w->bytes_out;
}

void pyspy_zsk_writer_free(pyspy_zsk_writer *w) {
    if (!w)
        return;
    if (w->nthreads) {
        pthread_mutex_lock(&w->mu);
        w->stop = true;
        pthread_cond_broadcast(&w->work);
        pthread_mutex_unlock(&w->mu);
        for (size_t i = 0; i < w->nthreads; i++)
            pthread_join(w->threads[i], NULL);
    }
    if (w->sync_ok) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->work);
        pthread_cond_destroy(&w->done);
    }
    for (size_t i = 0; i <= MAX_WORKERS; i++)
        ZSTD_freeCCtx(w->cctx[i]);
    for (size_t i = 0; w->slots && i < w->nslots; i++) {
        free(w->slots[i].in);
        free(w->slots[i].out);
    }
    free(w->slots);
    free(w->zero_frame);
    free(w->entries);
    free(w->name);
    free(w);
}
