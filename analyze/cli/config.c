/* py-spy's Config: defaults, file-format names, contradictions, freeing. */
#include <pyspy.h>

#include "analyze/cli/cli.h"

#include <math.h>
#include <stdlib.h>
#include <strings.h>

pyspy_config pyspy_config_default(void) {
    pyspy_config c = {0};
    c.blocking = PYSPY_LOCK;
    c.native = false;
    c.sampling_rate = 100;
    c.format = PYSPY_FORMAT_NONE;
    c.show_line_numbers = false;
    c.duration_unlimited = true;
    c.duration_secs = 0;
    c.include_idle = false;
    c.include_thread_ids = false;
    c.subprocesses = false;
    c.gil_only = false;
    c.hide_progress = false;
    c.capture_output = true;
    c.dump_json = false;
    c.dump_locals = 0;
    c.full_filenames = false;
    c.lineno = PYSPY_LINENO_LAST_INSTRUCTION;
    c.refresh_seconds = 1.0;
    c.core_filename = NULL;
    c.command = PYSPY_CMD_NONE;
    c.pid = 0;
    return c;
}

static const char *const format_names[] = {
    [PYSPY_FORMAT_FLAMEGRAPH] = "flamegraph",
    [PYSPY_FORMAT_RAW] = "raw",
    [PYSPY_FORMAT_SPEEDSCOPE] = "speedscope",
    [PYSPY_FORMAT_CHROMETRACE] = "chrometrace",
    [PYSPY_FORMAT_PPROF] = "pprof",
    [PYSPY_FORMAT_AGGREGATE] = "aggregate",
};

int pyspy_file_format_from_str(const char *s, pyspy_format *out,
                               pyspy_error *err) {
    for (int f = PYSPY_FORMAT_FLAMEGRAPH; s && f <= PYSPY_FORMAT_AGGREGATE;
         f++) {
        if (strcasecmp(s, format_names[f]) == 0) {
            if (out)
                *out = (pyspy_format)f;
            return 0;
        }
    }
    return pyspy_error_set(err, PYSPY_E_USAGE, "Invalid fileformat: %s",
                           s ? s : "");
}

const char *pyspy_file_format_name(pyspy_format f) {
    if (f >= PYSPY_FORMAT_FLAMEGRAPH && f <= PYSPY_FORMAT_AGGREGATE)
        return format_names[f];
    return "none";
}

static int usage(pyspy_error *err, const char *msg) {
    return pyspy_error_set(err, PYSPY_E_USAGE, "%s", msg);
}

/* Checks what a well-formed command line can still get wrong together;
 * from_args calls it, and callers that build a config by hand can too. */
int pyspy_config_validate(const pyspy_config *cfg, pyspy_error *err) {
    if (!cfg)
        return usage(err, "no configuration");
    bool program = cfg->python_program && cfg->python_program_count > 0;
    bool inputs = cfg->inputs && cfg->ninputs > 0;
    if (cfg->pid < 0)
        return usage(err, "invalid value for '--pid <pid>': the pid must be "
                          "a positive number");
    if ((cfg->executable || cfg->lib_search_path) && (cfg->pid || program))
        return usage(err, cfg->executable
                              ? "the argument '--executable <file>' is for "
                                "core files and snapshots, not a live process"
                              : "the argument '--lib-search-path <dir[:dir]>' "
                                "is for core files and snapshots, not a live "
                                "process");
    if (cfg->allow_damaged && (cfg->pid || program))
        return usage(err, "the argument '--allow-damaged' is for snapshots "
                          "and core files, not a live process");
    if (cfg->max_stream_size && (cfg->pid || program))
        return usage(err, "the argument '--max-size <bytes>' is for "
                          "snapshots and core files, not a live process");
    switch (cfg->command) {
    case PYSPY_CMD_RECORD:
    case PYSPY_CMD_TOP: {
        bool rec = cfg->command == PYSPY_CMD_RECORD;
        if (cfg->pid && program)
            return usage(err, "the argument '--pid <pid>' cannot be used "
                              "with a python program to run");
        if (cfg->pid && inputs)
            return usage(err, "the argument '--pid <pid>' cannot be used "
                              "with snapshot/core files");
        if (program && inputs)
            return usage(err, "a python program to run cannot be combined "
                              "with snapshot/core files");
        if (inputs && !rec)
            return usage(err, "'top' cannot read snapshot/core files");
        if (!cfg->pid && !program && !inputs)
            return usage(err,
                         rec ? "the following required arguments were not "
                               "provided: --pid <pid> (or a python program "
                               "to run, or snapshot/core files)"
                             : "the following required arguments were not "
                               "provided: --pid <pid> (or a python program "
                               "to run)");
        if (cfg->sampling_rate == 0)
            return usage(err, "invalid value '0' for '--rate <rate>': the "
                              "rate must be at least 1 sample per second");
        if (!rec &&
            !(cfg->refresh_seconds > 0 && isfinite(cfg->refresh_seconds)))
            return usage(err, "invalid value for '--delay <seconds>': the "
                              "delay must be a positive number of seconds");
        if (cfg->jobs < 0)
            return usage(err, "invalid value for '--jobs <jobs>': must be "
                              "at least 1");
        if (cfg->jobs > 0 && !inputs)
            return usage(err, "the argument '--jobs <jobs>' needs "
                              "snapshot/core files to read");
        break;
    }
    case PYSPY_CMD_DUMP: {
        bool core = cfg->core_filename != NULL;
        if (cfg->pid && core)
            return usage(err, "the argument '--pid <pid>' cannot be used "
                              "with '--core <core>'");
        if (cfg->pid && inputs)
            return usage(err, "the argument '--pid <pid>' cannot be used "
                              "with snapshot/core files");
        if (core && inputs)
            return usage(err, "the argument '--core <core>' cannot be used "
                              "with positional snapshot/core files");
        if (program)
            return usage(err, "'dump' does not run a program");
        if (!cfg->pid && !core && !inputs)
            return usage(err, "the following required arguments were not "
                              "provided: --pid <pid> (or --core <core>, or "
                              "snapshot/core files)");
        if (cfg->lean_snapshot && (cfg->subprocesses || cfg->ninputs > 1))
            return usage(err, "the argument '--snapshot <file>' takes the "
                              "stacks of one process or file");
        break;
    }
    case PYSPY_CMD_COMPLETIONS: {
        const char *s = cfg->completions_shell;
        bool known = false;
        for (const char *const *sh = pyspy_cli_shells; s && *sh && !known; sh++)
            known = strcasecmp(s, *sh) == 0;
        if (!known)
            return usage(err,
                         "the shell must be one of: " PYSPY_CLI_SHELL_LIST);
        break;
    }
    default:
        break;
    }
    /* Refused by py-spy after its parser accepted the command line: one
     * bare line and status 1, not a usage error. */
    if ((cfg->command == PYSPY_CMD_RECORD || cfg->command == PYSPY_CMD_DIFF ||
         cfg->command == PYSPY_CMD_MERGE) &&
        !cfg->show_line_numbers && cfg->lineno == PYSPY_LINENO_FIRST)
        return pyspy_error_set(err, PYSPY_E_GENERIC,
                               "--function & --nolinenos can't be used "
                               "together");
    if (cfg->native && cfg->blocking == PYSPY_NONBLOCKING)
        return pyspy_error_set(err, PYSPY_E_GENERIC,
                               "Can't get native stack traces with the "
                               "--nonblocking option.");
    return 0;
}

static void free_argv(char **v, int n) {
    if (!v)
        return;
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void pyspy_config_free(pyspy_config *cfg) {
    if (!cfg)
        return;
    free(cfg->core_filename);
    free(cfg->lean_snapshot);
    free_argv(cfg->python_program, cfg->python_program_count);
    free(cfg->filename);
    free(cfg->completions_shell);
    free_argv(cfg->inputs, cfg->ninputs);
    free(cfg->executable);
    free(cfg->lib_search_path);
    cfg->executable = NULL;
    cfg->lib_search_path = NULL;
    cfg->core_filename = NULL;
    cfg->lean_snapshot = NULL;
    cfg->python_program = NULL;
    cfg->python_program_count = 0;
    cfg->filename = NULL;
    cfg->completions_shell = NULL;
    cfg->inputs = NULL;
    cfg->ninputs = 0;
}
