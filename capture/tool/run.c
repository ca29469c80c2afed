/* Capturing a live process: open, stop, copy what the filter selects into
 * RAM, resume, and only then compress and write -- so the pause is the
 * copy, not the compression. When the copy would not fit the memory
 * budget the snapshot is written straight from the stopped process. */
#include "capture/base/clock.h"
#include "capture/base/out_file.h"
#include "capture/tool/run.h"
#include "capture/elf/symbols.h"
#include "capture/memsrc/ram.h"
#include "capture/process/proc.h"
#include "capture/snapshot/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

static int64_t real_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double mib(uint64_t b) {
    return (double)b / (1024.0 * 1024.0);
}

int pyspy_capture_pid(int pid, const pyspy_capture_config *cfg,
                      const char *path, FILE *log, pyspy_capture_result *res,
                      pyspy_error *err) {
    memset(res, 0, sizeof *res);
    res->pid = pid;
    /* Before the target is paused for a file that would be refused. */
    if (pyspy_out_check(path, err) != 0)
        return -1;
    pyspy_memsrc *live = NULL, *view = NULL;
    if (pyspy_memsrc_open_pid(pid, cfg->blocking, &live, err) != 0)
        return -1;
    int rc = -1;
    uint32_t filter = cfg->filter_given ? cfg->filter : PYSPY_FILTER_DEFAULT;
    uint64_t budget =
        cfg->memory_budget ? cfg->memory_budget : pyspy_default_memory_budget();
    /* Size the copy on the running process and fault its memory in now,
     * so the pause is spent reading the target, not allocating. Only a
     * pause of ours is worth that time. */
    pyspy_ram_pool pool = {0};
    int old_nice = 0;
    bool reniced = false;
    if (cfg->blocking == PYSPY_LOCK) {
        if (pyspy_memsrc_view_open(live, filter, &view, err) != 0)
            goto out;
        uint64_t estimate = pyspy_memsrc_view_bytes(view);
        pyspy_memsrc_close(view);
        view = NULL;
        uint64_t slack = estimate / 8 + (8u << 20);
        if ((!budget || estimate + slack <= budget) &&
            pyspy_ram_pool_init(&pool, estimate + slack, err) != 0)
            goto out;
    }
    /* A snapshot carries every module's symbols, which a live source reads
     * on first use: read them now, not during a streamed write while the
     * target waits. */
    for (size_t i = 0; i < live->nmodules; i++)
        pyspy_module_ensure_symbols(&live->modules[i]);
    int64_t t0 = pyspy_clock_ns();
    if (live->ops->suspend(live, err) != 0)
        goto out;
    bool ours = pyspy_memsrc_is_stopped(live);
    /* the map may have changed since open; the copy must match the stop */
    if (pyspy_memsrc_reread_regions(live, err) != 0 ||
        pyspy_memsrc_view_open(live, filter, &view, err) != 0)
        goto out;
    uint64_t need = pyspy_memsrc_view_bytes(view);
    if (budget && need > budget) {
        res->streamed = true;
        if (log)
            fprintf(log,
                    "pyspy-capture: %.1f MiB of memory exceed the memory "
                    "budget of %.1f MiB: writing straight from process %d, "
                    "which stays %s until the file is written\n",
                    mib(need), mib(budget), pid, ours ? "stopped" : "as it is");
        pyspy_ram_pool_free(&pool);
    } else {
        if (pyspy_memsrc_view_copy(view, &pool, err) != 0)
            goto out;
        /* A process killed while stopped reads as unreadable regions,
         * which would make a snapshot of nothing. */
        char st = pyspy_proc_state(pid);
        if (st == 0 || st == 'Z' || st == 'X') {
            pyspy_error_set(err, PYSPY_E_NOPROC,
                            "process %d exited during the capture", pid);
            goto out;
        }
        live->ops->resume(live);
        if (ours)
            res->pause_ns = (uint64_t)(pyspy_clock_ns() - t0);
        /* The compression that follows would take every core from a
         * target that has just been let go; it yields instead (the
         * workers it starts inherit this). */
        errno = 0;
        old_nice = getpriority(PRIO_PROCESS, 0);
        reniced = errno == 0 && setpriority(PRIO_PROCESS, 0, 10) == 0;
    }
    /* The pause is known only once it is over; streamed, it lasts the
     * whole write and the note stays 0 (unknown). */
    view->proc.pause_ns = res->pause_ns;
    view->proc.lock = cfg->blocking;
    res->nthreads = view->nthreads;
    pyspy_snapshot_opts opts = {0};
    opts.hide_progress = cfg->hide_progress;
    opts.tool_version = PYSPY_VERSION;
    pyspy_snapshot_stats stats = {0};
    pyspy_capture_mark_writing(path);
    rc = pyspy_snapshot_write(view, &opts, path, &stats, err);
    pyspy_capture_mark_writing(NULL);
    if (rc != 0 && res->streamed) {
        char st = pyspy_proc_state(pid);
        if (st == 0 || st == 'Z' || st == 'X')
            pyspy_error_set(err, PYSPY_E_NOPROC,
                            "process %d exited during the capture", pid);
    }
    if (res->streamed) {
        live->ops->resume(live);
        if (ours)
            res->pause_ns = (uint64_t)(pyspy_clock_ns() - t0);
    }
    res->memory_bytes = stats.memory_bytes;
    res->file_bytes = stats.file_bytes;
out:
    if (reniced)
        setpriority(PRIO_PROCESS, 0, old_nice);
    pyspy_ram_pool_free(&pool);
    pyspy_memsrc_close(view);
    pyspy_memsrc_close(live); /* resumes if still stopped */
    return rc;
}

char *pyspy_capture_default_name(const char *dir, int pid, int64_t time_ns,
                                 long seq) {
    time_t secs = (time_t)(time_ns / 1000000000LL);
    struct tm tm;
    char stamp[32] = "unknown";
    if (gmtime_r(&secs, &tm))
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    char who[24], sq[24] = "";
    if (pid > 0)
        snprintf(who, sizeof who, "%d", pid);
    else
        snprintf(who, sizeof who, "core");
    if (seq >= 0)
        snprintf(sq, sizeof sq, "-%06ld", seq);
    size_t n = (dir ? strlen(dir) : 0) + 96;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%spyspy-%s-%s%s.core.zst", dir ? dir : "",
                 dir && *dir && dir[strlen(dir) - 1] != '/' ? "/" : "", who,
                 stamp, sq);
    return s;
}

char *pyspy_capture_tree_name(const char *output, int pid, int64_t time_ns) {
    struct stat st;
    if (!output || (stat(output, &st) == 0 && S_ISDIR(st.st_mode)))
        return pyspy_capture_default_name(output, pid, time_ns, -1);
    const char *slash = strrchr(output, '/');
    const char *base = slash ? slash + 1 : output;
    /* The pid goes before the extension: "out.core.zst" -> out-PID.core.zst */
    const char *ext = strstr(base, ".core");
    if (!ext)
        ext = strrchr(base, '.');
    if (!ext || ext == base)
        ext = base + strlen(base);
    size_t n = strlen(output) + 24;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%.*s-%d%s", (int)(ext - output), output, pid, ext);
    return s;
}

static void human(char *buf, size_t n, uint64_t b) {
    if (b >= 1024ULL * 1024 * 1024)
        snprintf(buf, n, "%.2f GiB", (double)b / (1024.0 * 1024 * 1024));
    else if (b >= 1024 * 1024)
        snprintf(buf, n, "%.1f MiB", mib(b));
    else
        snprintf(buf, n, "%.1f KiB", (double)b / 1024.0);
}

void pyspy_capture_summary(FILE *out, const char *path,
                           const pyspy_capture_result *res) {
    char mem[32], file[32];
    human(mem, sizeof mem, res->memory_bytes);
    human(file, sizeof file, res->file_bytes);
    double ratio = res->file_bytes
                       ? (double)res->memory_bytes / (double)res->file_bytes
                       : 0.0;
    fprintf(out,
            "pid %d: %zu threads, %s of memory -> %s (%.1fx smaller), "
            "paused %.1f ms%s: %s\n",
            res->pid, res->nthreads, mem, file, ratio,
            (double)res->pause_ns / 1e6,
            res->streamed ? " (written while stopped)" : "", path);
    fflush(out);
}

/* The pid and, with --subprocesses, every descendant. */
static int targets(const pyspy_capture_config *cfg, int **out, size_t *n,
                   pyspy_error *err) {
    int *kids = NULL;
    size_t nk = 0;
    if (cfg->subprocesses &&
        pyspy_proc_descendants(cfg->pid, &kids, &nk, err) != 0)
        return -1;
    int *all = malloc((nk + 1) * sizeof *all);
    if (!all) {
        free(kids);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    all[0] = cfg->pid;
    if (nk)
        memcpy(all + 1, kids, nk * sizeof *kids);
    free(kids);
    *out = all;
    *n = nk + 1;
    return 0;
}

int pyspy_capture_series(const pyspy_capture_config *cfg, FILE *out, FILE *log,
                         size_t *count, pyspy_error *err) {
    *count = 0;
    const char *dir = cfg->output ? cfg->output : ".";
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return pyspy_error_set(err, PYSPY_E_IO, "cannot create %s: %s", dir,
                               strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return pyspy_error_set(err, PYSPY_E_IO,
                               "%s is not a directory (with --rate, -o names "
                               "the directory of the series)",
                               dir);
    uint64_t total = cfg->rate * cfg->duration_secs;
    if (total == 0)
        total = 1;
    int64_t period = 1000000000LL / (int64_t)cfg->rate;
    int64_t start = pyspy_clock_ns();
    uint64_t late = 0;
    for (uint64_t k = 0; k < total; k++) {
        /* Absolute deadlines: a slow snapshot delays the next one but
         * does not shift the whole series. */
        int64_t due = start + (int64_t)k * period;
        int64_t now = pyspy_clock_ns();
        if (now < due) {
            struct timespec ts = {(time_t)((due - now) / 1000000000LL),
                                  (long)((due - now) % 1000000000LL)};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
        } else if (k > 0 && now - due > period) {
            late++;
            continue;
        }
        int *pids = NULL;
        size_t np = 0;
        if (targets(cfg, &pids, &np, err) != 0) {
            if (*count && err->code == PYSPY_E_NOPROC)
                break;
            return -1;
        }
        for (size_t i = 0; i < np; i++) {
            char *path =
                pyspy_capture_default_name(dir, pids[i], real_ns(), (long)k);
            pyspy_capture_result res;
            pyspy_error e = {0};
            int rc =
                path ? pyspy_capture_pid(pids[i], cfg, path, log, &res, &e)
                     : pyspy_error_set(&e, PYSPY_E_GENERIC, "out of memory");
            if (rc == 0) {
                pyspy_capture_summary(out, path, &res);
                ++*count;
            } else if (i == 0 && !(*count && e.code == PYSPY_E_NOPROC)) {
                free(path);
                free(pids);
                *err = e;
                return -1;
            } else if (i == 0) {
                free(path);
                free(pids);
                if (log)
                    fprintf(log,
                            "pyspy-capture: process %d exited after %zu "
                            "snapshots\n",
                            cfg->pid, *count);
                return 0;
            }
            free(path);
        }
        free(pids);
    }
    if (late && log)
        fprintf(log,
                "pyspy-capture: %llu snapshots skipped: each took longer "
                "than 1/%llu s\n",
                (unsigned long long)late, (unsigned long long)cfg->rate);
    return 0;
}
