/* pyspy-analyze's command line: py-spy's subcommands, flags and effects,
 * parsed into a pyspy_config. Nothing is printed or touched here: text
 * for --help/--version/completions goes to *out, errors to err. */
#include "analyze/cli/cli.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* What the per-subcommand loop collects before it fills the config. */
typedef struct parse_state {
    const pyspy_cli_command *cmd;
    bool function, nolineno, capture, hideprogress, jobs_given;
    bool dashdash;   /* positionals came after "--" */
    int dashdash_at; /* pos[] index of the first one after "--" */
    const char **pos;
    int npos;
    const char *shell;
    const char *help_subject;
    bool help_subject_given;
} parse_state;

static int usage(pyspy_error *err, const char *msg) {
    return pyspy_error_set(err, PYSPY_E_USAGE, "%s", msg);
}

static int oom(pyspy_error *err) {
    return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
}

static int dup_into(char **dst, const char *s, pyspy_error *err) {
    char *d = strdup(s);
    if (!d)
        return oom(err);
    free(*dst);
    *dst = d;
    return 0;
}

static int dup_argv(const char **src, int n, char ***dst, int *count,
                    pyspy_error *err) {
    char **v = calloc((size_t)n + 1, sizeof *v);
    if (!v)
        return oom(err);
    for (int i = 0; i < n; i++) {
        v[i] = strdup(src[i]);
        if (!v[i]) {
            for (int j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return oom(err);
        }
    }
    *dst = v;
    *count = n;
    return 0;
}

/* Decimal, or hexadecimal after 0x, as py-spy accepts. */
static int parse_pid(const pyspy_opt *o, const char *v, int *pid,
                     pyspy_error *err) {
    uint64_t n = 0;
    const char *why = NULL;
    if (v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
        const char *p = v + 2;
        if (!*p)
            why = "cannot parse integer from empty string";
        for (; *p && !why; p++) {
            int d = (*p >= '0' && *p <= '9')   ? *p - '0'
                    : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10
                    : (*p >= 'A' && *p <= 'F') ? *p - 'A' + 10
                                               : -1;
            if (d < 0)
                why = "invalid digit found in string";
            else if (n > (uint64_t)INT_MAX)
                why = "number too large to fit in target type";
            else
                n = n * 16 + (uint64_t)d;
        }
    } else {
        pyspy_parse_u64(v, &n, &why);
    }
    if (!why && n > (uint64_t)INT_MAX)
        why = "number too large to fit in target type";
    if (!why && n == 0)
        why = "the pid must be a positive number";
    if (why)
        return pyspy_opt_invalid(err, o, v, why);
    *pid = (int)n;
    return 0;
}

static int parse_positive_u64(const pyspy_opt *o, const char *v, uint64_t max,
                              const char *range_why, uint64_t *out,
                              pyspy_error *err) {
    const char *why = NULL;
    uint64_t n = 0;
    if (pyspy_parse_u64(v, &n, &why))
        return pyspy_opt_invalid(err, o, v, why);
    if (n == 0 || n > max)
        return pyspy_opt_invalid(err, o, v, range_why);
    *out = n;
    return 0;
}

static int add_pos(parse_state *ps, const char *v, pyspy_error *err) {
    const char **p = realloc(ps->pos, ((size_t)ps->npos + 1) * sizeof *p);
    if (!p)
        return oom(err);
    ps->pos = p;
    ps->pos[ps->npos++] = v;
    return 0;
}

static int unexpected(const char *v, pyspy_error *err) {
    return pyspy_error_set(err, PYSPY_E_USAGE, "unexpected argument '%s' found",
                           v);
}

/* One positional argument; returns 1 when it swallowed the rest of argv
 * (a program's command line), 0 to keep scanning, -1 on error. */
static int positional(parse_state *ps, pyspy_argscan *s, const char *v,
                      pyspy_error *err) {
    switch (ps->cmd->positional) {
    case PYSPY_POS_PROGRAM:
    case PYSPY_POS_PROGRAM_OR_INPUTS:
        /* Everything from the program's name on is the program's own, so
         * its flags never reach our parser. */
        if (add_pos(ps, v, err))
            return -1;
        for (; s->next < s->argc; s->next++)
            if (add_pos(ps, s->argv[s->next], err))
                return -1;
        return 1;
    case PYSPY_POS_INPUTS:
    case PYSPY_POS_RECORDINGS:
        return add_pos(ps, v, err);
    case PYSPY_POS_BASE_NEW:
        if (ps->npos == 2)
            return unexpected(v, err);
        return add_pos(ps, v, err);
    case PYSPY_POS_SHELL:
        if (ps->shell)
            return unexpected(v, err);
        ps->shell = v;
        return 0;
    case PYSPY_POS_SUBCOMMAND:
        if (ps->help_subject_given)
            return unexpected(v, err);
        ps->help_subject = v;
        ps->help_subject_given = true;
        return 0;
    case PYSPY_POS_NONE:
        break;
    }
    return unexpected(v, err);
}

static int set_text(char **text, char *t, pyspy_error *err) {
    if (!t)
        return oom(err);
    *text = t;
    return 0;
}

/* Applies one option of a subcommand to the config. */
static int apply(parse_state *ps, const pyspy_opt *o, const char *v,
                 pyspy_config *c, char **text, pyspy_error *err) {
    const char *why = NULL;
    switch (o->id) {
    case PYSPY_O_HELP:
        c->command = PYSPY_CMD_HELP;
        return set_text(text, pyspy_cli_help(ps->cmd), err);
    case PYSPY_O_VERSION:
        c->command = PYSPY_CMD_VERSION;
        return set_text(text, pyspy_cli_version(), err);
    case PYSPY_O_PID:
        return parse_pid(o, v, &c->pid, err);
    case PYSPY_O_OUTPUT:
        return dup_into(&c->filename, v, err);
    case PYSPY_O_FORMAT: {
        pyspy_error e = {0};
        if (pyspy_file_format_from_str(v, &c->format, &e) == 0)
            return 0;
        char why_buf[sizeof e.msg + 96];
        snprintf(why_buf, sizeof why_buf,
                 "%s [possible values: flamegraph, raw, speedscope, "
                 "chrometrace, pprof, aggregate]",
                 e.msg);
        return pyspy_opt_invalid(err, o, v, why_buf);
    }
    case PYSPY_O_DURATION:
        if (strcasecmp(v, "unlimited") == 0) {
            c->duration_unlimited = true;
            c->duration_secs = 0;
            return 0;
        }
        if (pyspy_parse_u64(v, &c->duration_secs, &why)) {
            char why_buf[160];
            snprintf(why_buf, sizeof why_buf,
                     "%s (expected a number of seconds or 'unlimited')", why);
            return pyspy_opt_invalid(err, o, v, why_buf);
        }
        c->duration_unlimited = false;
        return 0;
    case PYSPY_O_RATE:
        return parse_positive_u64(o, v, UINT64_MAX,
                                  "the rate must be at least 1 sample per "
                                  "second",
                                  &c->sampling_rate, err);
    case PYSPY_O_SUBPROCESSES:
        c->subprocesses = true;
        return 0;
    case PYSPY_O_FUNCTION:
        ps->function = true;
        return 0;
    case PYSPY_O_NOLINENO:
        ps->nolineno = true;
        return 0;
    case PYSPY_O_THREADS:
        c->include_thread_ids = true;
        return 0;
    case PYSPY_O_GIL:
        c->gil_only = true;
        return 0;
    case PYSPY_O_IDLE:
        c->include_idle = true;
        return 0;
    case PYSPY_O_MODE:
        /* py-spy's flags are the modes: wall is --idle, gil is --gil, cpu
         * the default; exception keeps idle threads too, as wall does. */
        if (strcasecmp(v, "wall") == 0)
            c->include_idle = true;
        else if (strcasecmp(v, "gil") == 0)
            c->gil_only = true;
        else if (strcasecmp(v, "exception") == 0)
            c->include_idle = c->exception_only = true;
        else if (strcasecmp(v, "cpu") != 0)
            return pyspy_opt_invalid(err, o, v,
                                     "[possible values: wall, cpu, gil, "
                                     "exception]");
        return 0;
    case PYSPY_O_GC:
        c->gc_frames = true;
        return 0;
    case PYSPY_O_CAPTURE:
        ps->capture = true;
        return 0;
    case PYSPY_O_HIDEPROGRESS:
        ps->hideprogress = true;
        return 0;
    case PYSPY_O_NATIVE:
        c->native = true;
        return 0;
    case PYSPY_O_NONBLOCKING:
        c->blocking = PYSPY_NONBLOCKING;
        return 0;
    case PYSPY_O_FULL_FILENAMES:
        c->full_filenames = true;
        return 0;
    case PYSPY_O_JOBS: {
        uint64_t n = 0;
        if (parse_positive_u64(o, v, 1024, "must be between 1 and 1024", &n,
                               err))
            return -1;
        c->jobs = (int)n;
        ps->jobs_given = true;
        return 0;
    }
    case PYSPY_O_DELAY: {
        double d = 0;
        if (pyspy_parse_f64(v, &d, &why))
            return pyspy_opt_invalid(err, o, v, why);
        if (!(d > 0) || d > 1e9)
            return pyspy_opt_invalid(err, o, v,
                                     "the delay must be a positive number "
                                     "of seconds, at most 1e9");
        c->refresh_seconds = d;
        return 0;
    }
    case PYSPY_O_CORE:
        return dup_into(&c->core_filename, v, err);
    case PYSPY_O_LOCALS:
        c->dump_locals++;
        return 0;
    case PYSPY_O_JSON:
        c->dump_json = true;
        return 0;
    case PYSPY_O_EXECUTABLE:
        return dup_into(&c->executable, v, err);
    case PYSPY_O_LIB_SEARCH_PATH:
        return dup_into(&c->lib_search_path, v, err);
    case PYSPY_O_ALLOW_DAMAGED:
        c->allow_damaged = true;
        return 0;
    case PYSPY_O_SNAPSHOT:
        return dup_into(&c->lean_snapshot, v, err);
    case PYSPY_O_MAX_SIZE:
        return pyspy_opt_parse_bytes(o, v, &c->max_stream_size, err);
    }
    return unexpected(v ? v : "?", err);
}

bool pyspy_cli_snapshot_name(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if ((n > 5 && strcmp(base + n - 5, ".core") == 0) ||
        (n > 4 && strcmp(base + n - 4, ".zst") == 0) ||
        strcmp(base, "core") == 0)
        return true;
    if (strncmp(base, "core.", 5) != 0 || !base[5])
        return false;
    for (const char *p = base + 5; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true;
}

/* What no program can be: a FIFO, socket or device (read as a stream,
 * or refused by name). */
static bool is_special(const struct stat *st) {
    return S_ISFIFO(st->st_mode) || S_ISSOCK(st->st_mode) ||
           S_ISCHR(st->st_mode);
}

/* A file of a snapshot's name, stdin ("-"), a special file or a
 * directory (of snapshots: no program is one). */
static bool is_input(const char *path) {
    struct stat st;
    if (strcmp(path, "-") == 0)
        return true;
    if (stat(path, &st) != 0)
        return false;
    return is_special(&st) || S_ISDIR(st.st_mode) ||
           (S_ISREG(st.st_mode) && pyspy_cli_snapshot_name(path));
}

/* Any file dump can be given to read: a regular or special file. */
static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && (S_ISREG(st.st_mode) || is_special(&st));
}

/* record's trailing arguments: snapshot/core inputs or a program (the
 * rule --help states). */
static int record_positionals(parse_state *ps, pyspy_config *c,
                              pyspy_error *err) {
    bool inputs =
        !ps->dashdash && !c->pid && (ps->jobs_given || is_input(ps->pos[0]));
    if (!inputs)
        return dup_argv(ps->pos, ps->npos, &c->python_program,
                        &c->python_program_count, err);
    for (int i = 0; i < ps->npos; i++) {
        struct stat st;
        if (strcmp(ps->pos[i], "-") != 0 && stat(ps->pos[i], &st) != 0)
            return pyspy_error_set(err, PYSPY_E_USAGE,
                                   "snapshot/core file '%s' does not exist "
                                   "(put '--' before a program to run)",
                                   ps->pos[i]);
    }
    /* Offline, nothing shares the terminal: the progress bar is drawn
     * (on a terminal only) unless --hideprogress. */
    c->hide_progress = ps->hideprogress;
    return dup_argv(ps->pos, ps->npos, &c->inputs, &c->ninputs, err);
}

/* --nolineno and --function, for the commands that aggregate stacks.
 * --function --nolineno gives first lines that are not shown:
 * pyspy_config_validate refuses it after the checks that come first in
 * py-spy. */
static void line_options(const parse_state *ps, pyspy_config *c) {
    c->show_line_numbers = !ps->nolineno;
    c->lineno = ps->function   ? PYSPY_LINENO_FIRST
                : ps->nolineno ? PYSPY_LINENO_NONE
                               : PYSPY_LINENO_LAST_INSTRUCTION;
}

static int finish(parse_state *ps, pyspy_config *c, char **text,
                  pyspy_error *err) {
    switch (ps->cmd->command) {
    case PYSPY_CMD_RECORD:
        if (c->format == PYSPY_FORMAT_NONE)
            c->format = PYSPY_FORMAT_FLAMEGRAPH;
        line_options(ps, c);
        /* py-spy: a recorded program's output is left alone unless
         * --capture, and then the progress bar would tangle with it. */
        c->capture_output = ps->capture;
        c->hide_progress = ps->hideprogress || !c->capture_output;
        if (ps->npos)
            return record_positionals(ps, c, err);
        return 0;
    case PYSPY_CMD_TOP:
        if (ps->npos)
            return dup_argv(ps->pos, ps->npos, &c->python_program,
                            &c->python_program_count, err);
        return 0;
    case PYSPY_CMD_DUMP:
        /* py-spy's dump takes no program, and its parser refuses what
         * follows "--"; here "--" still passes files whose names start
         * with '-', so only what is not a file is refused. */
        for (int i = ps->dashdash ? ps->dashdash_at : ps->npos; i < ps->npos;
             i++)
            if (!is_file(ps->pos[i]))
                return pyspy_error_set(err, PYSPY_E_USAGE,
                                       "unexpected argument '%s' found",
                                       ps->pos[i]);
        if (ps->npos)
            return dup_argv(ps->pos, ps->npos, &c->inputs, &c->ninputs, err);
        return 0;
    case PYSPY_CMD_DIFF:
        if (ps->npos != 2)
            return usage(err, ps->npos ? "the following required arguments "
                                         "were not provided: <new>"
                                       : "the following required arguments "
                                         "were not provided: <base> <new>");
        c->format = PYSPY_FORMAT_FLAMEGRAPH;
        line_options(ps, c);
        c->hide_progress = true;
        return dup_argv(ps->pos, ps->npos, &c->inputs, &c->ninputs, err);
    case PYSPY_CMD_MERGE:
        if (ps->npos == 0)
            return usage(err, "the following required arguments were not "
                              "provided: <input>...");
        if (c->format == PYSPY_FORMAT_NONE)
            c->format = PYSPY_FORMAT_FLAMEGRAPH;
        line_options(ps, c);
        c->hide_progress = ps->hideprogress;
        return dup_argv(ps->pos, ps->npos, &c->inputs, &c->ninputs, err);
    case PYSPY_CMD_COMPLETIONS:
        if (!ps->shell)
            return usage(err, "the following required arguments were not "
                              "provided: <shell>");
        for (const char *const *sh = pyspy_cli_shells; *sh; sh++) {
            if (strcasecmp(ps->shell, *sh) == 0) {
                if (dup_into(&c->completions_shell, *sh, err))
                    return -1;
                return pyspy_cli_completions(*sh, text, err);
            }
        }
        return pyspy_error_set(err, PYSPY_E_USAGE,
                               "invalid value '%s' for '<shell>' [possible "
                               "values: " PYSPY_CLI_SHELL_LIST "]",
                               ps->shell);
    case PYSPY_CMD_HELP: {
        const pyspy_cli_command *about = NULL;
        if (ps->help_subject_given) {
            about = pyspy_cli_find(ps->help_subject, err);
            if (!about)
                return -1;
            if (about->command == PYSPY_CMD_HELP)
                about = NULL;
        }
        return set_text(text, pyspy_cli_help(about), err);
    }
    default:
        return 0;
    }
}

static int parse_subcommand(const pyspy_cli_command *cmd, int argc, char **argv,
                            int first, pyspy_config *c, char **text,
                            pyspy_error *err) {
    parse_state ps = {.cmd = cmd};
    pyspy_argscan s;
    pyspy_argscan_init(&s, argc, argv, first, cmd->opts, cmd->nopts);
    c->command = cmd->command;
    int rc = 0;
    for (bool done = false; !done && rc == 0;) {
        const pyspy_opt *o = NULL;
        const char *v = NULL;
        int r = pyspy_argscan_next(&s, &o, &v, err);
        if (r >= 0) {
            rc = apply(&ps, o, v, c, text, err);
            /* --help/--version end parsing where they stand, as clap's. */
            if (rc == 0 &&
                (c->command == PYSPY_CMD_HELP ||
                 c->command == PYSPY_CMD_VERSION) &&
                *text) {
                free(ps.pos);
                return 0;
            }
        } else if (r == PYSPY_ARG_POSITIONAL) {
            int p = positional(&ps, &s, v, err);
            rc = p < 0 ? -1 : 0;
            done = p == 1;
        } else if (r == PYSPY_ARG_DASHDASH) {
            ps.dashdash = true;
            ps.dashdash_at = ps.npos;
            while (rc == 0 && s.next < argc) {
                const char *a = argv[s.next++];
                int p = positional(&ps, &s, a, err);
                rc = p < 0 ? -1 : 0;
                if (p == 1)
                    break;
            }
            done = true;
        } else if (r == PYSPY_ARG_END) {
            done = true;
        } else {
            rc = -1;
        }
    }
    if (rc == 0)
        rc = finish(&ps, c, text, err);
    free(ps.pos);
    return rc;
}

static int parse(int argc, char **argv, pyspy_config *c, char **text,
                 pyspy_error *err) {
    pyspy_argscan s;
    pyspy_argscan_init(&s, argc, argv, 1, pyspy_cli_top_opts,
                       pyspy_cli_ntop_opts);
    const pyspy_opt *o = NULL;
    const char *v = NULL;
    int r =
        argc > 1 && argv ? pyspy_argscan_next(&s, &o, &v, err) : PYSPY_ARG_END;
    switch (r) {
    case PYSPY_O_HELP:
        c->command = PYSPY_CMD_HELP;
        return set_text(text, pyspy_cli_help(NULL), err);
    case PYSPY_O_VERSION:
        c->command = PYSPY_CMD_VERSION;
        return set_text(text, pyspy_cli_version(), err);
    case PYSPY_ARG_POSITIONAL: {
        const pyspy_cli_command *cmd = pyspy_cli_find(v, err);
        if (!cmd)
            return -1;
        return parse_subcommand(cmd, argc, argv, s.next, c, text, err);
    }
    case PYSPY_ARG_DASHDASH:
        return unexpected("--", err);
    case PYSPY_ARG_END:
        return usage(err, "'" PYSPY_CLI_NAME "' requires a subcommand but "
                          "one was not provided [subcommands: record, top, "
                          "dump, diff, merge, completions, help]");
    default:
        return -1;
    }
}

int pyspy_config_from_args(int argc, char **argv, pyspy_config *cfg, char **out,
                           pyspy_error *err) {
    pyspy_config c = pyspy_config_default();
    char *text = NULL;
    if (out)
        *out = NULL;
    int rc = parse(argc, argv, &c, &text, err);
    if (rc == 0 && c.command != PYSPY_CMD_HELP &&
        c.command != PYSPY_CMD_VERSION)
        rc = pyspy_config_validate(&c, err);
    if (rc != 0) {
        if (err && !err->code)
            pyspy_error_set(err, PYSPY_E_USAGE, "invalid command line");
        pyspy_config_free(&c);
        free(text);
        *cfg = pyspy_config_default();
        return -1;
    }
    *cfg = c;
    if (out)
        *out = text;
    else
        free(text);
    return 0;
}
