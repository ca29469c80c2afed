/* Offline record: every snapshot/core file is one sample of each of its
 * threads. Files are read and walked by -j worker threads; the main
 * thread aggregates them in the order given, so the output does not
 * depend on scheduling, and workers run at most a window ahead: a job
 * lives in a ring of window slots and each file is open only while its
 * job runs, so memory and descriptors stay bounded however many files
 * there are. */
#include "capture/base/clock.h"
#include "analyze/cpython/python.h"
#include "analyze/sample/record.h"
#include "analyze/sample/sampler.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_JOBS 64
#define MAX_REPORTED_ERRORS 10

typedef struct job {
    pyspy_traces traces;
    int64_t capture_us; /* 0 unknown */
    bool done, ok;
    bool damaged; /* the file failed an integrity check */
    pyspy_error err;
    char missed[768]; /* what the file lacked that the walk wanted */
} job;

typedef struct pool {
    const pyspy_config *cfg;
    char *const *inputs;
    pyspy_walk_opts walk;
    job *jobs; /* ring: file i is jobs[i % window] */
    int n, next, consumed, window;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} pool;

/* A profile has no flag per frame: a frame read from damaged bytes
 * (--allow-damaged) says so in its name, so it stands apart from the
 * sound frames of the same function. */
static void mark_damaged(pyspy_traces *t) {
    for (size_t i = 0; i < t->ntraces; i++)
        for (size_t k = 0; k < t->traces[i].nframes; k++) {
            pyspy_frame *f = &t->traces[i].frames[k];
            if (!f->damaged || !f->name)
                continue;
            size_t n = strlen(f->name);
            char *m = malloc(n + sizeof " [damaged]");
            if (!m)
                continue;
            memcpy(m, f->name, n);
            memcpy(m + n, " [damaged]", sizeof " [damaged]");
            free(f->name);
            f->name = m;
        }
}

/* A file that could not be opened for damage (a frame that does not
 * decompress, a cut file) is damaged like one whose reads met damage,
 * not one of the foreign files a set may hold: the readers name both
 * kinds of damage so ("<file> is corrupted (...)", "is truncated"). */
static bool failed_integrity(const pyspy_error *e) {
    return e->code == PYSPY_E_FORMAT &&
           (strstr(e->msg, " is corrupted") || strstr(e->msg, " is truncated"));
}

static job *job_of(pool *p, int i) {
    return &p->jobs[i % p->window];
}

static void read_one(pool *p, int i) {
    job *j = job_of(p, i);
    pyspy_memsrc *src = NULL;
    pyspy_python py;
    memset(&py, 0, sizeof py);
    pyspy_file_opts fo = {.executable = p->cfg->executable,
                          .lib_search_path = p->cfg->lib_search_path,
                          .allow_damaged = p->cfg->allow_damaged,
                          .max_stream_size = p->cfg->max_stream_size};
    if (pyspy_memsrc_open_file_with(p->inputs[i], &fo, &src, &j->err)) {
        j->damaged = failed_integrity(&j->err);
        return;
    }
    if (pyspy_python_find(src, &py, &j->err) == 0) {
        j->ok =
            pyspy_stack_traces(src, &py, &p->walk, &j->traces, &j->err) == 0;
        pyspy_python_free(&py);
    }
    if (src->damage) {
        j->damaged = true;
        if (!p->cfg->allow_damaged) {
            /* left out whole: none of it is to be trusted */
            pyspy_traces_free(&j->traces);
            j->ok = false;
            pyspy_error_set(&j->err, PYSPY_E_FORMAT, "%s", src->damage);
        } else {
            mark_damaged(&j->traces);
        }
    }
    j->capture_us = src->proc.capture_time_ns / 1000;
    pyspy_memsrc_describe_missed(src, j->missed, sizeof j->missed);
    if (j->ok && !j->traces.pid)
        j->traces.pid = src->proc.pid;
    pyspy_memsrc_close(src);
}

static void *worker(void *arg) {
    pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->next < p->n && p->next >= p->consumed + p->window)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->next >= p->n) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        int i = p->next++;
        pthread_mutex_unlock(&p->mu);
        read_one(p, i);
        pthread_mutex_lock(&p->mu);
        job_of(p, i)->done = true;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

static int njobs(const pyspy_config *cfg, int n) {
    long j = cfg->jobs > 0 ? cfg->jobs : sysconf(_SC_NPROCESSORS_ONLN);
    if (j < 1)
        j = 1;
    if (j > MAX_JOBS)
        j = MAX_JOBS;
    if (j > n)
        j = n;
    return (int)j;
}

int pyspy_record_offline_read(const pyspy_config *cfg, char *const *inputs,
                              int ninputs, pyspy_agg **out, uint64_t *kept_out,
                              uint64_t *errors_out) {
    pyspy_error err = {0};
    pyspy_agg_opts ao = pyspy_record_agg_opts(cfg);
    ao.period_us = 0; /* the files' spacing is unknown */
    pyspy_agg *agg = pyspy_agg_new(&ao, &err);
    pool p = {.cfg = cfg, .inputs = inputs, .n = ninputs};
    p.walk = pyspy_record_walk_opts(cfg);
    int nthreads = njobs(cfg, p.n ? p.n : 1);
    p.window = nthreads * 4;
    p.jobs = calloc((size_t)p.window, sizeof *p.jobs);
    pthread_t *threads = calloc((size_t)nthreads, sizeof *threads);
    *out = NULL;
    if (!agg || !p.jobs || !threads) {
        fprintf(stderr, "Error: out of memory\n");
        pyspy_agg_free(agg);
        free(p.jobs);
        free(threads);
        return 1;
    }
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    int started = 0;
    for (; started < nthreads; started++)
        if (pthread_create(&threads[started], NULL, worker, &p))
            break;
    /* With no threads at all the work is done here, one file at a
     * time. */
    pyspy_progress prog;
    pyspy_progress_init(&prog, cfg->hide_progress);
    int64_t t0 = pyspy_clock_us(), first_us = 0, last_ts = 0;
    uint64_t kept = 0, errors = 0, incomplete = 0, lacking = 0, damaged = 0;
    int rc = 0;
    for (int i = 0; i < p.n; i++) {
        job *j = job_of(&p, i);
        if (started == 0) {
            read_one(&p, i);
        } else {
            pthread_mutex_lock(&p.mu);
            while (!j->done)
                pthread_cond_wait(&p.cv, &p.mu);
            pthread_mutex_unlock(&p.mu);
        }
        damaged += j->damaged;
        if (j->damaged && j->ok && damaged <= MAX_REPORTED_ERRORS) {
            pyspy_progress_done(&prog);
            fprintf(stderr,
                    "warning: %s is damaged; --allow-damaged: its frames "
                    "read from damaged bytes are marked [damaged]\n",
                    inputs[i]);
        }
        if (!j->ok) {
            if (errors < MAX_REPORTED_ERRORS) {
                pyspy_progress_done(&prog);
                fprintf(stderr, "warning: %s: %s\n", inputs[i],
                        j->err.msg[0] ? j->err.msg : "no stack traces");
            }
            errors++;
        } else if (rc == 0) {
            for (size_t t = 0; t < j->traces.ntraces; t++)
                incomplete += j->traces.traces[t].incomplete;
            if (j->missed[0] && lacking++ < MAX_REPORTED_ERRORS) {
                pyspy_progress_done(&prog);
                fprintf(stderr,
                        "warning: %s lacks memory the stacks need: %s\n",
                        inputs[i], j->missed);
            }
            /* Capture times give the time line; files without one (or
             * out of order) are placed 10 ms after the previous. */
            int64_t ts = j->capture_us;
            if (i == 0 || !first_us)
                first_us = ts;
            ts = ts && first_us ? ts - first_us : last_ts + PYSPY_AGG_GAP_US;
            if (ts < last_ts)
                ts = last_ts + PYSPY_AGG_GAP_US;
            last_ts = ts;
            size_t n;
            if (pyspy_agg_add(agg, &j->traces, ts, &n, &err))
                rc = 1;
            else
                kept += n;
        }
        pyspy_traces_free(&j->traces);
        pthread_mutex_lock(&p.mu);
        memset(j, 0, sizeof *j); /* ready for the slot's next file */
        p.consumed = i + 1;
        pthread_cond_broadcast(&p.cv);
        pthread_mutex_unlock(&p.mu);
        pyspy_progress_update(&prog, pyspy_clock_us() - t0, kept, errors,
                              (uint64_t)i + 1, (uint64_t)p.n);
    }
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    pyspy_progress_done(&prog);
    if (errors > MAX_REPORTED_ERRORS)
        fprintf(stderr, "warning: %llu more files could not be read\n",
                (unsigned long long)(errors - MAX_REPORTED_ERRORS));
    if (incomplete || lacking)
        fprintf(stderr,
                "warning: %llu stack%s could not be read whole (%llu file%s "
                "lacked memory they need: give --executable FILE or "
                "--lib-search-path DIR[:DIR] with the same build of the "
                "files they map)\n",
                (unsigned long long)incomplete, incomplete == 1 ? "" : "s",
                (unsigned long long)lacking, lacking == 1 ? "" : "s");
    if (rc) {
        fprintf(stderr, "Error: %s\n", err.msg);
    } else if (damaged && !cfg->allow_damaged) {
        /* A profile missing some of what it was given is not written as
         * though it were whole. */
        fprintf(stderr,
                "Error: %llu input file%s failed integrity checks "
                "(--allow-damaged reads %s best-effort)\n",
                (unsigned long long)damaged, damaged == 1 ? "" : "s",
                damaged == 1 ? "it" : "them");
        rc = 1;
    } else if (kept == 0 && errors == (uint64_t)p.n) {
        fprintf(stderr, "Error: none of the %d input files could be read\n",
                p.n);
        rc = 1;
    }
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
    free(p.jobs);
    free(threads);
    if (rc) {
        pyspy_agg_free(agg);
        return rc;
    }
    agg->origin_us = first_us;
    *out = agg;
    *kept_out = kept;
    *errors_out = errors;
    return 0;
}

int pyspy_record_offline(const pyspy_config *cfg) {
    char *filename = pyspy_record_output_name(cfg, "snapshots");
    if (!filename)
        return 1;
    pyspy_agg *agg;
    uint64_t kept, errors;
    pyspy_error err = {0};
    char **files = NULL;
    int nfiles = 0;
    if (pyspy_inputs_expand(cfg->inputs, cfg->ninputs, &files, &nfiles, &err)) {
        fprintf(stderr, "Error: %s\n", err.msg);
        free(filename);
        return 1;
    }
    int rc = nfiles ? pyspy_record_offline_read(cfg, files, nfiles, &agg, &kept,
                                                &errors)
                    : (fprintf(stderr, "Error: no input files\n"), 1);
    pyspy_inputs_free(files, nfiles);
    if (rc == 0) {
        char title[96];
        snprintf(title, sizeof title, "pyspy record: %d snapshot%s", nfiles,
                 nfiles == 1 ? "" : "s");
        rc = pyspy_record_write(cfg, agg, filename, title, kept, errors, "");
        pyspy_agg_free(agg);
    }
    free(filename);
    return rc;
}
