/* pyspy-capture's command line. Like the analyzer's it prints nothing:
 * --help/--version text goes to *out, errors to err. */
#include "capture/base/cli_args.h"
#include "capture/snapshot/snapshot.h"
#include <pyspy.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define NAME "pyspy-capture"

enum {
    C_HELP,
    C_VERSION,
    C_PID,
    C_OUTPUT,
    C_CORE,
    C_NONBLOCKING,
    C_ALREADY_LOCKED,
    C_SUBPROCESSES,
    C_HIDEPROGRESS,
    C_FILTER,
    C_RATE,
    C_DURATION,
    C_MEMORY_BUDGET,
    C_MAX_SIZE
};

static const pyspy_opt opts[] = {
    {C_PID, 'p', "pid", PYSPY_OPT_VALUE, "pid",
     "PID of the process to snapshot (decimal, or hex with 0x)", NULL, false},
    {C_CORE, 'c', "core", PYSPY_OPT_VALUE, "core",
     "Existing core file to turn into a snapshot; '-' reads it from stdin "
     "(for kernel.core_pattern = |...)",
     NULL, false},
    {C_OUTPUT, 'o', "output", PYSPY_OPT_VALUE, "output",
     "Snapshot file to write; with --rate, the directory to write the series "
     "into",
     "pyspy-<pid>-<UTC time>.core.zst", false},
    {C_NONBLOCKING, 0, "nonblocking", PYSPY_OPT_FLAG, NULL,
     "Copy memory while the process keeps running (no pause; the copy may be "
     "inconsistent)",
     NULL, false},
    {C_ALREADY_LOCKED, 0, "already-locked", PYSPY_OPT_FLAG, NULL,
     "The process is already stopped by someone else (a debugger): do not "
     "pause or resume it",
     NULL, false},
    {C_SUBPROCESSES, 's', "subprocesses", PYSPY_OPT_FLAG, NULL,
     "Snapshot the child processes of the target as well", NULL, false},
    {C_HIDEPROGRESS, 0, "hideprogress", PYSPY_OPT_FLAG, NULL,
     "Do not draw the progress bar", NULL, false},
    {C_FILTER, 0, "filter", PYSPY_OPT_VALUE, "hex",
     "coredump_filter bits choosing which mappings to copy (hexadecimal, "
     "0x optional; see man 5 core)",
     "37", false},
    {C_RATE, 'r', "rate", PYSPY_OPT_VALUE, "rate",
     "Take a series of snapshots, this many per second (needs --pid and "
     "--duration)",
     NULL, false},
    {C_DURATION, 'd', "duration", PYSPY_OPT_VALUE, "seconds",
     "How many seconds a series lasts", NULL, false},
    {C_MEMORY_BUDGET, 0, "memory-budget", PYSPY_OPT_VALUE, "bytes",
     "Most memory to hold at once while capturing (suffixes K, M, G, T)",
     "half of the available RAM", false},
    {C_MAX_SIZE, 0, "max-size", PYSPY_OPT_VALUE, "bytes",
     "Most of a streamed core (--core - or a pipe) to spool to $TMPDIR "
     "before refusing it (suffixes K, M, G, T)",
     "64G", false},
    {C_HELP, 'h', "help", PYSPY_OPT_FLAG, NULL, "Print help", NULL, false},
    {C_VERSION, 'V', "version", PYSPY_OPT_FLAG, NULL, "Print version", NULL,
     false},
};
#define NOPTS (sizeof opts / sizeof opts[0])

pyspy_capture_config pyspy_capture_config_default(void) {
    pyspy_capture_config c = {0};
    c.pid = 0;
    c.output = NULL;
    c.blocking = PYSPY_LOCK;
    c.core = NULL;
    c.filter_given = false;
    c.filter = PYSPY_FILTER_DEFAULT;
    c.rate = 0;
    c.duration_secs = 0;
    c.memory_budget = 0;
    c.max_size = 0;
    c.command = PYSPY_CMD_NONE;
    return c;
}

void pyspy_capture_config_free(pyspy_capture_config *cfg) {
    if (!cfg)
        return;
    free(cfg->output);
    free(cfg->core);
    cfg->output = NULL;
    cfg->core = NULL;
}

static char *help_text(void) {
    pyspy_sb sb = {0};
    pyspy_sb_puts(&sb, NAME " " PYSPY_VERSION "\n"
                            "Copies a process's memory and threads, or an "
                            "existing core file, into a compressed snapshot "
                            "for pyspy\n\n"
                            "USAGE:\n"
                            "    " NAME " [OPTIONS] --pid <pid>\n"
                            "    " NAME " [OPTIONS] --pid <pid> --rate <rate> "
                            "--duration <seconds> -o <dir>\n"
                            "    " NAME " [OPTIONS] --core <core|->\n\n");
    pyspy_opts_help(&sb, opts, NOPTS);
    pyspy_sb_puts(&sb, "\n");
    pyspy_sb_wrap(&sb, "The snapshot is an ELF core file compressed with "
                       "zstd, written with mode 0600 since it holds the "
                       "process's memory. Read it with: pyspy dump "
                       "<snapshot>, or pyspy record <snapshot>...");
    return pyspy_sb_take(&sb);
}

static int parse_uint(const pyspy_opt *o, const char *v, uint64_t max,
                      uint64_t *out, pyspy_error *err) {
    const char *why = NULL;
    uint64_t n = 0;
    if (pyspy_parse_u64(v, &n, &why))
        return pyspy_opt_invalid(err, o, v, why);
    if (n == 0)
        return pyspy_opt_invalid(err, o, v, "must be at least 1");
    if (n > max)
        return pyspy_opt_invalid(err, o, v, "number too large");
    *out = n;
    return 0;
}

/* Hex digits, an optional 0x in front. */
static int parse_hex(const char *s, uint64_t max, uint64_t *out,
                     const char **why) {
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    if (!*s) {
        *why = "cannot parse integer from empty string";
        return -1;
    }
    uint64_t n = 0;
    for (; *s; s++) {
        int d = (*s >= '0' && *s <= '9')   ? *s - '0'
                : (*s >= 'a' && *s <= 'f') ? *s - 'a' + 10
                : (*s >= 'A' && *s <= 'F') ? *s - 'A' + 10
                                           : -1;
        if (d < 0) {
            *why = "invalid digit found in string";
            return -1;
        }
        n = n * 16 + (uint64_t)d;
        if (n > max) {
            *why = "number too large to fit in target type";
            return -1;
        }
    }
    *out = n;
    return 0;
}

static int parse_pid(const pyspy_opt *o, const char *v, int *pid,
                     pyspy_error *err) {
    uint64_t n = 0;
    const char *why = NULL;
    if (v[0] == '0' && (v[1] == 'x' || v[1] == 'X'))
        parse_hex(v, (uint64_t)INT_MAX, &n, &why);
    else if (pyspy_parse_u64(v, &n, &why) == 0 && n > (uint64_t)INT_MAX)
        why = "number too large to fit in target type";
    if (!why && n == 0)
        why = "the pid must be a positive number";
    if (why)
        return pyspy_opt_invalid(err, o, v, why);
    *pid = (int)n;
    return 0;
}

static int dup_into(char **dst, const char *s, pyspy_error *err) {
    char *d = strdup(s);
    if (!d)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    free(*dst);
    *dst = d;
    return 0;
}

static int conflict(pyspy_error *err, const char *a, const char *b) {
    return pyspy_error_set(err, PYSPY_E_USAGE,
                           "the argument '%s' cannot be used with '%s'", a, b);
}

static int validate(const pyspy_capture_config *c, bool nonblocking,
                    bool already_locked, bool duration_given,
                    pyspy_error *err) {
    if (c->pid && c->core)
        return conflict(err, "--pid <pid>", "--core <core>");
    if (!c->pid && !c->core)
        return pyspy_error_set(err, PYSPY_E_USAGE,
                               "the following required arguments were not "
                               "provided: --pid <pid> or --core <core>");
    if (nonblocking && already_locked)
        return conflict(err, "--nonblocking", "--already-locked");
    if (c->core && nonblocking)
        return conflict(err, "--nonblocking", "--core <core>");
    if (c->core && already_locked)
        return conflict(err, "--already-locked", "--core <core>");
    if (c->core && c->subprocesses)
        return conflict(err, "--subprocesses", "--core <core>");
    if (c->rate && c->core)
        return conflict(err, "--rate <rate>", "--core <core>");
    if (c->rate && !duration_given)
        return pyspy_error_set(err, PYSPY_E_USAGE,
                               "the argument '--rate <rate>' requires "
                               "'--duration <seconds>'");
    if (duration_given && !c->rate)
        return pyspy_error_set(err, PYSPY_E_USAGE,
                               "the argument '--duration <seconds>' requires "
                               "'--rate <rate>'");
    return 0;
}

static int parse(int argc, char **argv, pyspy_capture_config *c, char **text,
                 pyspy_error *err) {
    pyspy_argscan s;
    pyspy_argscan_init(&s, argc, argv, 1, opts, NOPTS);
    bool nonblocking = false, already_locked = false, duration_given = false;
    bool max_size_given = false;
    for (;;) {
        const pyspy_opt *o = NULL;
        const char *v = NULL;
        int r = argv ? pyspy_argscan_next(&s, &o, &v, err) : PYSPY_ARG_END;
        uint64_t n = 0;
        const char *why = NULL;
        switch (r) {
        case C_HELP:
            c->command = PYSPY_CMD_HELP;
            *text = help_text();
            return *text
                       ? 0
                       : pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        case C_VERSION:
            c->command = PYSPY_CMD_VERSION;
            *text = strdup(NAME " " PYSPY_VERSION "\n");
            return *text
                       ? 0
                       : pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        case C_PID:
            if (parse_pid(o, v, &c->pid, err))
                return -1;
            break;
        case C_OUTPUT:
            if (dup_into(&c->output, v, err))
                return -1;
            break;
        case C_CORE:
            if (dup_into(&c->core, v, err))
                return -1;
            break;
        case C_NONBLOCKING:
            nonblocking = true;
            c->blocking = PYSPY_NONBLOCKING;
            break;
        case C_ALREADY_LOCKED:
            already_locked = true;
            c->blocking = PYSPY_ALREADY_LOCKED;
            break;
        case C_SUBPROCESSES:
            c->subprocesses = true;
            break;
        case C_HIDEPROGRESS:
            c->hide_progress = true;
            break;
        case C_FILTER:
            /* Bits past 8 (dax private/shared) mean nothing to the kernel. */
            if (parse_hex(v, 0x1ff, &n, &why))
                return pyspy_opt_invalid(err, o, v, why);
            c->filter = (uint32_t)n;
            c->filter_given = true;
            break;
        case C_RATE:
            if (parse_uint(o, v, 100000, &c->rate, err))
                return -1;
            break;
        case C_DURATION:
            if (parse_uint(o, v, 100ULL * 365 * 24 * 3600, &c->duration_secs,
                           err))
                return -1;
            duration_given = true;
            break;
        case C_MEMORY_BUDGET:
            if (pyspy_opt_parse_bytes(o, v, &c->memory_budget, err))
                return -1;
            break;
        case C_MAX_SIZE:
            if (pyspy_opt_parse_bytes(o, v, &c->max_size, err))
                return -1;
            max_size_given = true;
            break;
        case PYSPY_ARG_POSITIONAL:
            return pyspy_error_set(err, PYSPY_E_USAGE,
                                   "unexpected argument '%s' found", v);
        case PYSPY_ARG_DASHDASH:
            return pyspy_error_set(err, PYSPY_E_USAGE,
                                   "unexpected argument '--' found");
        case PYSPY_ARG_END:
            if (max_size_given && !c->core)
                return pyspy_error_set(err, PYSPY_E_USAGE,
                                       "the argument '--max-size <bytes>' "
                                       "requires '--core <core>'");
            return validate(c, nonblocking, already_locked, duration_given,
                            err);
        default:
            return -1;
        }
    }
}

int pyspy_capture_config_from_args(int argc, char **argv,
                                   pyspy_capture_config *cfg, char **out,
                                   pyspy_error *err) {
    pyspy_capture_config c = pyspy_capture_config_default();
    char *text = NULL;
    if (out)
        *out = NULL;
    if (parse(argc, argv, &c, &text, err) != 0) {
        if (err && !err->code)
            pyspy_error_set(err, PYSPY_E_USAGE, "invalid command line");
        pyspy_capture_config_free(&c);
        free(text);
        *cfg = pyspy_capture_config_default();
        return -1;
    }
    *cfg = c;
    if (out)
        *out = text;
    else
        free(text);
    return 0;
}
