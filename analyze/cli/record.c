/* record: sample a live process (--pid or a program to run) into one of
 * the output formats; snapshot/core inputs go to record_offline.c. */
#include "analyze/cli/commands.h"
#include "analyze/sample/record.h"
#include "analyze/sample/sampler.h"
#include "capture/base/out_file.h"
#include "capture/process/spawn.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

/* Counts: a signal after sampling stopped ends the wait for the
 * program too. */
static void on_stop_signal(int sig) {
    (void)sig;
    stop_requested = stop_requested + 1;
}

typedef struct rec {
    const pyspy_config *cfg;
    pyspy_agg *agg;
    pyspy_progress progress;
    uint64_t kept;
    bool rate_warned;
    const char *lede;
    pyspy_error err;
} rec;

static int on_traces(void *ctx, const pyspy_traces *t, int64_t ts_us) {
    rec *r = ctx;
    size_t n;
    if (pyspy_agg_add(r->agg, t, ts_us, &n, &r->err))
        return -1;
    r->kept += n;
    return 0;
}

/* py-spy says this once the target is attached. */
static void on_attached(void *ctx, const pyspy_sampler_stats *st) {
    rec *r = ctx;
    const pyspy_config *cfg = r->cfg;
    (void)st;
    if (cfg->duration_unlimited)
        printf("%sSampling process %llu times a second. Press Control-C to "
               "exit.\n\n",
               r->lede, (unsigned long long)cfg->sampling_rate);
    else
        printf("%sSampling process %llu times a second for %llu seconds. "
               "Press Control-C to exit.\n\n",
               r->lede, (unsigned long long)cfg->sampling_rate,
               (unsigned long long)cfg->duration_secs);
    fflush(stdout);
}

/* Samples a second achieved so far, when it is short of the rate asked
 * by more than a tenth (a sample takes longer than a period, or we are
 * not scheduled often enough); 0 otherwise. Judged over at least a
 * second, or at the end over the whole run. */
static double rate_shortfall(const pyspy_config *cfg,
                             const pyspy_sampler_stats *st, bool at_end) {
    if (st->elapsed_us <= 0 || (!at_end && st->elapsed_us < 1000000))
        return 0;
    double period_us = 1e6 / (double)cfg->sampling_rate;
    /* A run of a few periods says nothing about a rate. */
    if ((double)st->elapsed_us < 10 * period_us)
        return 0;
    double achieved = (double)st->ticks * 1e6 / (double)st->elapsed_us;
    return achieved < 0.9 * (double)cfg->sampling_rate ? achieved : 0;
}

/* Once per run, in py-spy's spirit ("behind in sampling, results may be
 * inaccurate"), with the rate that was achieved. */
static void warn_rate(rec *r, const pyspy_sampler_stats *st, bool at_end) {
    if (r->rate_warned)
        return;
    double achieved = rate_shortfall(r->cfg, st, at_end);
    if (achieved <= 0)
        return;
    r->rate_warned = true;
    pyspy_progress_done(&r->progress);
    printf("%sCannot keep up with %llu samples a second: %.0f a second "
           "achieved%s. Results may be inaccurate; try a lower --rate.\n",
           r->lede, (unsigned long long)r->cfg->sampling_rate, achieved,
           at_end ? "" : " so far");
    fflush(stdout);
}

/* -d in microseconds; a century stands for anything longer. */
static int64_t duration_us(const pyspy_config *cfg) {
    const uint64_t most = 100ULL * 365 * 24 * 3600;
    uint64_t secs = cfg->duration_secs < most ? cfg->duration_secs : most;
    return (int64_t)secs * 1000000;
}

static int on_tick(void *ctx, const pyspy_sampler_stats *st) {
    rec *r = ctx;
    warn_rate(r, st, false);
    int64_t total_us = r->cfg->duration_unlimited ? 0 : duration_us(r->cfg);
    pyspy_progress_update_timed(&r->progress, st->elapsed_us, r->kept,
                                st->errors, total_us);
    return 0;
}

/* "pyspy record -- prog args" or "pyspy record --pid N": the title. */
static char *make_title(const pyspy_config *cfg) {
    if (cfg->pid) {
        char *s = NULL;
        return asprintf(&s, "pyspy record --pid %d", cfg->pid) < 0 ? NULL : s;
    }
    return pyspy_program_text("pyspy record --", cfg->python_program,
                              cfg->python_program_count);
}

static void install_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: the sampler's sleep must wake up. */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static const char *exit_message(pyspy_stop_reason r) {
    switch (r) {
    case PYSPY_STOP_SIGNAL:
        return "Stopped sampling because Control-C pressed";
    case PYSPY_STOP_EXITED:
        return "Stopped sampling because process exited";
    default:
        return NULL;
    }
}

static int record_live(const pyspy_config *cfg) {
    rec r = {.cfg = cfg};
    pyspy_spawned child = {.capture_fd = -1, .status_fd = -1, .ctl_fd = -1};
    pyspy_agg_opts ao = pyspy_record_agg_opts(cfg);
    char pidbuf[32], *filename = NULL, *title = NULL;
    int rc = 1, status = 0;
    /* Our messages share the terminal with the program's output when it
     * is not captured (py-spy: then there is no progress bar either). */
    r.lede =
        cfg->hide_progress
            ? (isatty(1) ? "\033[1;32mpyspy\033[0m\033[2m>\033[0m " : "pyspy> ")
            : "";
    if (!(r.agg = pyspy_agg_new(&ao, &r.err))) {
        fprintf(stderr, "Error: %s\n", r.err.msg);
        return 1;
    }
    snprintf(pidbuf, sizeof pidbuf, "%d", cfg->pid);
    filename = cfg->filename
                   ? strdup(cfg->filename)
                   : pyspy_record_default_name(
                         cfg, cfg->pid ? pidbuf : cfg->python_program[0]);
    title = make_title(cfg);
    if (!filename || !title) {
        fprintf(stderr, "Error: out of memory\n");
        goto out;
    }
    /* An output that will be refused is said before the program runs and
     * the sampling is done, not after. */
    if (pyspy_out_check(filename, &r.err) != 0) {
        fprintf(stderr, "Error: %s\n", r.err.msg);
        goto out;
    }
    stop_requested = 0;
    install_handlers();
    if (!cfg->pid &&
        pyspy_spawn(cfg->python_program, cfg->capture_output, &child, &r.err)) {
        fprintf(stderr, "Error: %s\n", r.err.msg);
        goto out;
    }
    pyspy_progress_init(&r.progress, cfg->hide_progress);
    pyspy_sampler_opts so = {
        .pid = cfg->pid ? cfg->pid : child.pid,
        .rate = cfg->sampling_rate,
        .timed = !cfg->duration_unlimited,
        .duration_us = duration_us(cfg),
        .lock = cfg->blocking,
        .subprocesses = cfg->subprocesses,
        .walk = pyspy_record_walk_opts(cfg),
        .skip_thread_states = cfg->include_idle,
        .attach_wait_ms = child.pid ? 10000 : 0,
        .stop = &stop_requested,
        .on_traces = on_traces,
        .on_attached = on_attached,
        .on_tick = on_tick,
        .ctx = &r,
    };
    pyspy_sampler_stats st;
    pyspy_error err = {0};
    int srun = pyspy_sampler_run(&so, &st, &err);
    pyspy_progress_done(&r.progress);
    if (srun) {
        fprintf(stderr, "Error: %s\n",
                r.err.code   ? r.err.msg
                : err.msg[0] ? err.msg
                             : "sampling failed");
        goto out;
    }
    const char *msg = exit_message(st.reason);
    if (msg)
        printf("\n%s%s\n", r.lede, msg);
    warn_rate(&r, &st, true);
    /* What Lock mode cost the target, measured rather than guessed. */
    if (st.pauses && st.elapsed_us > 0)
        printf("%sThe process was stopped for %.0f us per sample on average "
               "(%.2f%% of the time)\n",
               r.lede, (double)st.paused_ns / 1e3 / (double)st.pauses,
               100.0 * (double)st.paused_ns / 1e3 / (double)st.elapsed_us);
    /* Sleeping threads are left running; one that woke mid-walk made the
     * sample be taken again with every thread stopped. */
    if (st.rewalks)
        printf("%s%llu sample%s taken again with every thread stopped "
               "(a sleeping thread woke during the walk)\n",
               r.lede, (unsigned long long)st.rewalks,
               st.rewalks == 1 ? " was" : "s were");
    rc = pyspy_record_write(cfg, r.agg, filename, title, r.kept, st.errors,
                            r.lede);
out:
    if (child.pid) {
        if (pyspy_spawn_finish(&child, &status, false, &stop_requested)) {
            char desc[96];
            pyspy_describe_status(status, desc, sizeof desc);
            fprintf(stderr, "%sprogram %s\n", r.lede, desc);
        }
    }
    fflush(stdout);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    pyspy_agg_free(r.agg);
    free(filename);
    free(title);
    return rc;
}

int pyspy_cmd_record(const pyspy_config *cfg) {
    if (cfg->inputs && cfg->ninputs > 0)
        return pyspy_record_offline(cfg);
    return record_live(cfg);
}
