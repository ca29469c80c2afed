/* top: a live view of where a process spends its time, refreshed every
 * --delay seconds (py-spy's console viewer). */
#include "analyze/cli/commands.h"
#include "analyze/sample/sampler.h"
#include "capture/process/spawn.h"
#include "analyze/cli/top_ui.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stop_requested;

/* Counts: a signal after sampling stopped ends the wait for the
 * program too. */
static void on_stop_signal(int sig) {
    (void)sig;
    stop_requested = stop_requested + 1;
}

typedef struct top {
    const pyspy_config *cfg;
    pyspy_agg_opts filter;
    pyspy_top_stats stats;
    pyspy_top_view view;
    uint64_t errors_seen, late_seen;
    int64_t last_draw_us;
    char rate_note[160];
    char *command;
    char version[32];
    pyspy_error err;
} top;

static int on_traces(void *ctx, const pyspy_traces *t, int64_t ts_us) {
    top *tp = ctx;
    (void)ts_us;
    if (!tp->command && t->command_line && t->command_line[0])
        tp->command = strdup(t->command_line);
    return pyspy_top_add(&tp->stats, &tp->filter, t);
}

static int on_tick(void *ctx, const pyspy_sampler_stats *st) {
    top *tp = ctx;
    pyspy_top_tick(&tp->stats, st->errors - tp->errors_seen,
                   st->late > tp->late_seen);
    tp->errors_seen = st->errors;
    tp->late_seen = st->late;
    /* As py-spy's top, a line while the rate asked is not kept (by more
     * than a tenth over the run so far), with the rate achieved. */
    uint64_t rate = tp->cfg->sampling_rate;
    if (st->elapsed_us >= 1000000 && rate) {
        double achieved = (double)st->ticks * 1e6 / (double)st->elapsed_us;
        if (achieved < 0.9 * (double)rate)
            snprintf(tp->rate_note, sizeof tp->rate_note,
                     "Cannot keep up with %llu samples a second: %.0f a "
                     "second achieved. Results may be inaccurate; try a "
                     "lower --rate.",
                     (unsigned long long)rate, achieved);
        else
            tp->rate_note[0] = 0;
        tp->view.rate_note = tp->rate_note[0] ? tp->rate_note : NULL;
    }
    if (!tp->version[0] && st->python_version[0])
        snprintf(tp->version, sizeof tp->version, "%s", st->python_version);
    pyspy_top_keys(&tp->view);
    if (tp->view.quit)
        return 1;
    if (tp->view.reset) {
        pyspy_top_free(&tp->stats);
        memset(&tp->stats, 0, sizeof tp->stats);
        tp->view.reset = false;
    }
    uint64_t n = tp->stats.overall_samples;
    int64_t due = (int64_t)(tp->cfg->refresh_seconds * 1e6);
    /* Early refreshes so the screen is not empty for a whole delay. */
    if (tp->view.dirty || n == 10 || n == 100 || n == 500 ||
        st->elapsed_us - tp->last_draw_us >= due) {
        tp->view.command = tp->command ? tp->command : "";
        tp->view.version = tp->version;
        pyspy_top_render(&tp->view, &tp->stats);
        pyspy_top_reset_current(&tp->stats);
        tp->view.dirty = false;
        tp->last_draw_us = st->elapsed_us;
    }
    return 0;
}

static char *program_text(const pyspy_config *cfg) {
    if (cfg->pid) {
        char *s = NULL;
        return asprintf(&s, "Pid %d", cfg->pid) < 0 ? NULL : s;
    }
    return pyspy_program_text("", cfg->python_program,
                              cfg->python_program_count);
}

int pyspy_cmd_top(const pyspy_config *cfg) {
    top tp = {.cfg = cfg};
    pyspy_spawned child = {.capture_fd = -1, .status_fd = -1, .ctl_fd = -1};
    int status = 0, rc = 1;
    tp.filter.include_idle = cfg->include_idle;
    tp.filter.gil_only = cfg->gil_only;
    tp.view.sort_column = 3;
    tp.view.show_lines = cfg->show_line_numbers;
    tp.view.subprocesses = cfg->subprocesses;
    tp.view.period_s =
        1.0 / (double)(cfg->sampling_rate ? cfg->sampling_rate : 100);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (!cfg->pid && pyspy_spawn(cfg->python_program, cfg->capture_output,
                                 &child, &tp.err)) {
        fprintf(stderr, "Error: %s\n", tp.err.msg);
        return 1;
    }
    if (cfg->python_program)
        tp.command = program_text(cfg);
    pyspy_sampler_opts so = {
        .pid = cfg->pid ? cfg->pid : child.pid,
        .rate = cfg->sampling_rate,
        .lock = cfg->blocking,
        .subprocesses = cfg->subprocesses,
        .walk = {.lineno = cfg->lineno,
                 .full_filenames = cfg->full_filenames,
                 .native = cfg->native,
                 /* top shows no thread names */
                 .skip_thread_names = true,
                 .skip_gc = true},
        .attach_wait_ms = child.pid ? 10000 : 0,
        .stop = &stop_requested,
        .on_traces = on_traces,
        .on_tick = on_tick,
        .ctx = &tp,
    };
    pyspy_sampler_stats st;
    pyspy_error err = {0};
    pyspy_term_enter();
    int srun = pyspy_sampler_run(&so, &st, &err);
    pyspy_term_leave();
    if (srun) {
        fprintf(stderr, "Error: %s\n", err.msg[0] ? err.msg : tp.err.msg);
    } else {
        rc = 0;
        if (st.reason == PYSPY_STOP_EXITED && !cfg->subprocesses)
            printf("\nprocess %d ended\n", so.pid);
    }
    if (child.pid) {
        if (pyspy_spawn_finish(&child, &status, false, &stop_requested)) {
            char desc[96];
            pyspy_describe_status(status, desc, sizeof desc);
            fprintf(stderr, "program %s\n", desc);
        }
    }
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    pyspy_top_free(&tp.stats);
    free(tp.command);
    return rc;
}
