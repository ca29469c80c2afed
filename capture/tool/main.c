/* pyspy-capture: snapshots of live processes (one, a tree, or a series)
 * and re-writing of existing core files. The one place that exits. */
#include "capture/tool/run.h"
#include "capture/base/out_file.h"
#include "capture/process/proc.h"
#include "capture/process/ptrace_lock.h"
#include "capture/snapshot/snapshot.h"
#include <pyspy.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Whatever interrupts us, the target must not stay stopped: let every
 * thread go, drop the half-written file, then die of the same signal.
 * (SIGKILL cannot be caught; the kernel detaches a dead tracer's
 * tracees itself.) */
static void on_fatal_signal(int sig) {
    pyspy_ptrace_emergency_release();
    pyspy_capture_remove_partial();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sigfillset(&sa.sa_mask);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int fail(pyspy_error *err) {
    fprintf(stderr, "Error: %s\n", err->msg[0] ? err->msg : "failed");
    return 1;
}

static int run_core(const pyspy_capture_config *cfg) {
    pyspy_error err = {0};
    char *path = NULL;
    int pid = 0;
    if (cfg->output) {
        path = strdup(cfg->output);
    } else {
        /* Name it after the process the core is of, when readable. */
        pyspy_memsrc *src = NULL;
        pyspy_error e = {0};
        struct stat st;
        /* Only a file can be read twice; a stream is read once, below. */
        if (strcmp(cfg->core, "-") != 0 && stat(cfg->core, &st) == 0 &&
            S_ISREG(st.st_mode) &&
            pyspy_memsrc_open_file(cfg->core, &src, &e) == 0) {
            pid = src->proc.pid;
            pyspy_memsrc_close(src);
        }
        path = pyspy_capture_default_name(NULL, pid, now_ns(), -1);
    }
    if (!path) {
        pyspy_error_set(&err, PYSPY_E_GENERIC, "out of memory");
        return fail(&err);
    }
    if (pyspy_out_check(path, &err) != 0) {
        free(path);
        return fail(&err);
    }
    pyspy_snapshot_opts opts = {0};
    opts.hide_progress = cfg->hide_progress;
    opts.tool_version = PYSPY_VERSION;
    opts.max_input_size = cfg->max_size;
    pyspy_snapshot_stats stats = {0};
    pyspy_capture_mark_writing(path);
    int rc = pyspy_core_ingest_filtered(cfg->core, path, &opts,
                                        cfg->filter_given ? cfg->filter : 0,
                                        &stats, &err);
    pyspy_capture_mark_writing(NULL);
    if (rc != 0) {
        free(path);
        return fail(&err);
    }
    pyspy_capture_result res = {0};
    res.memory_bytes = stats.memory_bytes;
    res.file_bytes = stats.file_bytes;
    pyspy_memsrc *out = NULL;
    pyspy_error e = {0};
    if (pyspy_memsrc_open_file(path, &out, &e) == 0) {
        res.pid = out->proc.pid;
        res.nthreads = out->nthreads;
        res.pause_ns = out->proc.pause_ns;
        pyspy_memsrc_close(out);
    }
    pyspy_capture_summary(stdout, path, &res);
    free(path);
    return 0;
}

static int run_live(const pyspy_capture_config *cfg) {
    pyspy_error err = {0};
    if (cfg->rate) {
        size_t count = 0;
        if (pyspy_capture_series(cfg, stdout, stderr, &count, &err) != 0)
            return fail(&err);
        return 0;
    }
    int *pids = NULL;
    size_t n = 1;
    int single = cfg->pid;
    if (cfg->subprocesses) {
        extern int pyspy_proc_descendants(int, int **, size_t *, pyspy_error *);
        int *kids = NULL;
        size_t nk = 0;
        if (pyspy_proc_descendants(cfg->pid, &kids, &nk, &err) != 0)
            return fail(&err);
        pids = malloc((nk + 1) * sizeof *pids);
        if (!pids) {
            free(kids);
            pyspy_error_set(&err, PYSPY_E_GENERIC, "out of memory");
            return fail(&err);
        }
        pids[0] = cfg->pid;
        for (size_t i = 0; i < nk; i++)
            pids[i + 1] = kids[i];
        free(kids);
        n = nk + 1;
    } else {
        pids = &single;
    }
    int status = 0;
    for (size_t i = 0; i < n; i++) {
        char *path =
            cfg->subprocesses
                ? pyspy_capture_tree_name(cfg->output, pids[i], now_ns())
            : cfg->output
                ? strdup(cfg->output)
                : pyspy_capture_default_name(NULL, pids[i], now_ns(), -1);
        pyspy_capture_result res;
        pyspy_error e = {0};
        int rc = path ? pyspy_capture_pid(pids[i], cfg, path, stderr, &res, &e)
                      : pyspy_error_set(&e, PYSPY_E_GENERIC, "out of memory");
        if (rc == 0) {
            pyspy_capture_summary(stdout, path, &res);
        } else if (i > 0 && e.code == PYSPY_E_NOPROC) {
            /* a child that exited meanwhile is not an error */
            fprintf(stderr, "pyspy-capture: process %d exited, skipped\n",
                    pids[i]);
        } else {
            status = fail(&e);
            free(path);
            break;
        }
        free(path);
    }
    if (pids != &single)
        free(pids);
    return status;
}

int main(int argc, char **argv) {
    install_handlers();
    pyspy_capture_config cfg = pyspy_capture_config_default();
    pyspy_error err = {0};
    char *out = NULL;
    if (pyspy_capture_config_from_args(argc, argv, &cfg, &out, &err) != 0) {
        if (err.code == PYSPY_E_USAGE) {
            fprintf(stderr, "error: %s\n", err.msg);
            fprintf(stderr, "\nFor more information, try '--help'.\n");
            return 2;
        }
        return fail(&err);
    }
    if (out) {
        fputs(out, stdout);
        free(out);
        pyspy_capture_config_free(&cfg);
        return 0;
    }
    int rc = cfg.core ? run_core(&cfg) : run_live(&cfg);
    pyspy_capture_config_free(&cfg);
    return rc;
}
