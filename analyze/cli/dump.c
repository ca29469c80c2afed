/* `dump`: the stacks of a live process (and with --subprocesses its
 * descendants), a core file given with --core, and every snapshot or core
 * named on the command line, each under its own process header. */
#include "analyze/cli/commands.h"
#include "analyze/cpython/python.h"
#include "analyze/sample/sampler.h"
#include "analyze/walk/lean.h"
#include "analyze/walk/walker.h"
#include "capture/process/proc.h"
#include "formats/dump_formats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DESCENDANTS 1024
/* py-spy's separator before a subprocess: a rule as wide as a terminal it
 * cannot measure (79 columns). */
#define RULE_WIDTH 79

/* What one dump gathers over all its processes and files. */
typedef struct dump_run {
    bool incomplete; /* a stack printed is not the whole of it */
    pyspy_json_array json;
} dump_run;

static pyspy_trace_opts trace_opts(const pyspy_config *cfg) {
    pyspy_trace_opts o = {.lineno = cfg->lineno,
                          .locals = cfg->dump_locals,
                          .full_filenames = cfg->full_filenames,
                          .native = cfg->native};
    return o;
}

/* Finds the interpreter, stops the target for the walk when the source is
 * live, and prints. */
static int dump_source(pyspy_memsrc *src, const pyspy_config *cfg,
                       pyspy_dump_header *h, dump_run *run, pyspy_error *err) {
    pyspy_trace_opts to = trace_opts(cfg);
    pyspy_traces traces;
    pyspy_lean_stats ls;
    if (cfg->lean_snapshot
            ? pyspy_traces_read_lean(src, &to, cfg->lean_snapshot, &traces, &ls,
                                     err) < 0
            : pyspy_traces_read(src, &to, &traces, err) < 0)
        return -1;
    if (cfg->lean_snapshot)
        fprintf(stderr,
                "pyspy: lean snapshot %s: %zu pages, %.1f KiB of memory -> "
                "%.1f KiB, paused %.2f ms\n",
                cfg->lean_snapshot, ls.pages,
                (double)ls.io.memory_bytes / 1024.0,
                (double)ls.io.file_bytes / 1024.0, (double)ls.pause_ns / 1e6);
    /* Damage is an error unless asked for: nothing is printed from it. */
    if (src->damage && !cfg->allow_damaged) {
        pyspy_traces_free(&traces);
        return pyspy_error_set(err, PYSPY_E_FORMAT, "%s", src->damage);
    }
    h->crash_signal = src->proc.crash_signal;
    size_t cut = 0;
    for (size_t i = 0; i < traces.ntraces; i++)
        cut += traces.traces[i].incomplete;
    run->incomplete |= cut > 0 || traces.lists_cut > 0;
    h->incomplete_stacks = cut;
    for (size_t i = 0; i < traces.ntraces; i++) {
        const pyspy_trace *t = &traces.traces[i];
        h->damaged_threads += t->damaged;
        for (size_t k = 0; k < t->nframes; k++)
            h->damaged_frames += t->frames[k].damaged;
    }
    h->lists_cut = traces.lists_cut;
    int rc = cfg->dump_json ? pyspy_dump_json(stdout, &traces, h, &run->json)
                            : pyspy_dump_text(stdout, &traces, h);
    fflush(stdout);
    pyspy_traces_free(&traces);
    if (rc < 0)
        return pyspy_error_set(err, PYSPY_E_IO, "failed to write the dump");
    return 0;
}

/* One line on stderr when reads wanted memory the file lacks: what, why,
 * and what would bring it back. */
bool pyspy_warn_missed(const pyspy_memsrc *src) {
    char what[1536];
    if (pyspy_memsrc_describe_missed(src, what, sizeof what) == 0)
        return false;
    /* Files help only where absent regions were wanted, not pages a lean
     * snapshot left out. */
    bool files = false;
    for (size_t i = 0; i < src->nregions; i++)
        files |= src->regions[i].wanted && !src->regions[i].present;
    fprintf(stderr, "Warning: %s lacks memory the stacks need: %s%s\n",
            src->origin, what,
            files ? "; give --executable FILE or --lib-search-path "
                    "DIR[:DIR] with the same build of those files"
                  : "");
    return true;
}

/* With --allow-damaged: one line saying the output is best-effort, what
 * was damaged first and how what was read from it is marked. */
static void warn_damaged(const pyspy_memsrc *src, size_t frames,
                         size_t threads) {
    fprintf(stderr,
            "Warning: %s; --allow-damaged: best-effort output, %zu frame%s "
            "and %zu thread%s read from damaged bytes marked damaged\n",
            src->damage, frames, frames == 1 ? "" : "s", threads,
            threads == 1 ? "" : "s");
}

static int dump_file(const char *path, const pyspy_config *cfg, dump_run *run,
                     pyspy_error *err) {
    pyspy_memsrc *src = NULL;
    pyspy_file_opts fo = {.executable = cfg->executable,
                          .lib_search_path = cfg->lib_search_path,
                          .allow_damaged = cfg->allow_damaged,
                          .max_stream_size = cfg->max_stream_size};
    if (pyspy_memsrc_open_file_with(path, &fo, &src, err) < 0)
        return -1;
    pyspy_dump_header h = {0};
    int rc = dump_source(src, cfg, &h, run, err);
    /* Reads the walk or the search for the interpreter lost to damage
     * fail it for that reason, not for what they made it miss. */
    if (rc < 0 && src->damage && !cfg->allow_damaged)
        pyspy_error_set(err, PYSPY_E_FORMAT, "%s", src->damage);
    if (src->damage && cfg->allow_damaged) {
        if (rc == 0)
            warn_damaged(src, h.damaged_frames, h.damaged_threads);
        else
            pyspy_error_prefix(err, "%s", src->damage);
        run->incomplete = true;
        if (rc < 0) {
            pyspy_memsrc_close(src);
            return -1;
        }
    }
    /* One line either way: what the file lacks, or else that stacks lost
     * frames to memory it holds wrongly (zeros where frames were). */
    bool warned = pyspy_warn_missed(src);
    if (!warned && rc == 0 && h.lists_cut) {
        fprintf(stderr,
                "Warning: %s: %zu list%s of threads end%s at memory that "
                "cannot be read: the threads past that point are not shown\n",
                src->origin, h.lists_cut, h.lists_cut == 1 ? "" : "s",
                h.lists_cut == 1 ? "s" : "");
        warned = true;
    }
    if (!warned && rc == 0 && h.incomplete_stacks)
        fprintf(stderr,
                "Warning: %s: %zu stack%s could not be read whole (marked "
                "incomplete): where they continue the file holds no frames "
                "(zeros or damage; gdb's gcore writes zeros for pages it "
                "could not read)\n",
                src->origin, h.incomplete_stacks,
                h.incomplete_stacks == 1 ? "" : "s");
    pyspy_memsrc_close(src);
    return rc;
}

static int dump_pid(int pid, int parent, const pyspy_config *cfg, dump_run *run,
                    pyspy_error *err) {
    pyspy_memsrc *src = NULL;
    if (pyspy_memsrc_open_pid(pid, cfg->blocking, &src, err) < 0)
        return -1;
    pyspy_dump_header h = {0};
    pyspy_process_info pinfo = {0};
    if (parent > 0) {
        /* Gone meanwhile: the header shows the pid alone. */
        pyspy_proc_read_info(parent, &pinfo, NULL);
        h.parent_pid = parent;
        h.parent_cmdline = pinfo.cmdline;
    }
    int rc = dump_source(src, cfg, &h, run, err);
    pyspy_process_info_free(&pinfo);
    pyspy_memsrc_close(src);
    return rc;
}

static int parent_of(int pid) {
    pyspy_process_info info;
    if (pyspy_proc_read_info(pid, &info, NULL) != 0)
        return 0;
    int ppid = info.ppid;
    pyspy_process_info_free(&info);
    return ppid;
}

/* Descendants that run Python, each after a rule; ones that do not (a
 * shell between two interpreters) or that exit meanwhile are passed
 * over. */
static void dump_descendants(int root, const pyspy_config *cfg, dump_run *run) {
    int *kids = malloc(MAX_DESCENDANTS * sizeof *kids);
    if (!kids)
        return;
    size_t n = pyspy_descendant_pids(root, kids, MAX_DESCENDANTS);
    for (size_t i = 0; i < n; i++) {
        pyspy_memsrc *src = NULL;
        pyspy_error e = {0};
        if (pyspy_memsrc_open_pid(kids[i], cfg->blocking, &src, &e) < 0)
            continue;
        pyspy_python py;
        memset(&py, 0, sizeof py);
        int found = pyspy_python_find(src, &py, &e);
        if (found == 0)
            pyspy_python_free(&py);
        pyspy_memsrc_close(src);
        if (found < 0)
            continue;
        if (!cfg->dump_json) {
            char rule[RULE_WIDTH + 1];
            memset(rule, '-', RULE_WIDTH);
            rule[RULE_WIDTH] = 0;
            printf("\n%s\n", rule);
        }
        if (dump_pid(kids[i], parent_of(kids[i]), cfg, run, &e) < 0)
            fprintf(stderr, "Error: %s\n", e.msg);
    }
    free(kids);
}

int pyspy_cmd_dump(const pyspy_config *cfg) {
    int failed = 0, done = 0;
    dump_run run = {0};
    pyspy_error err = {0};
    if (cfg->pid > 0) {
        if (dump_pid(cfg->pid, 0, cfg, &run, &err) < 0) {
            fprintf(stderr, "Error: %s\n", err.msg);
            failed++;
        } else {
            done++;
            if (cfg->subprocesses)
                dump_descendants(cfg->pid, cfg, &run);
        }
    }
    if (cfg->core_filename) {
        pyspy_error_clear(&err);
        if (dump_file(cfg->core_filename, cfg, &run, &err) < 0) {
            fprintf(stderr, "Error: %s\n", err.msg);
            failed++;
        } else {
            done++;
        }
    }
    for (int i = 0; i < cfg->ninputs; i++) {
        pyspy_error_clear(&err);
        /* Several inputs: a blank line between them, as between the
         * processes of one dump. */
        if (done && !cfg->dump_json)
            putchar('\n');
        if (dump_file(cfg->inputs[i], cfg, &run, &err) < 0) {
            fprintf(stderr, "Error: %s\n", err.msg);
            failed++;
        } else {
            done++;
        }
    }
    if (!done && !failed) {
        fprintf(stderr, "Error: nothing to dump (give --pid, --core or a "
                        "snapshot)\n");
        return 1;
    }
    if (cfg->dump_json && done && pyspy_dump_json_end(stdout, &run.json) < 0) {
        fprintf(stderr, "Error: failed to write the dump\n");
        return 1;
    }
    if (failed)
        return 1;
    /* Printed, but not every stack whole: scripts must be able to tell. */
    return run.incomplete ? PYSPY_EXIT_INCOMPLETE : 0;
}
