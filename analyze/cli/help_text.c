/* What pyspy-analyze's command line accepts, in words: the option tables
 * (each option with its help line) and the --help/--version texts. */
#include "analyze/cli/cli.h"

#include <stdlib.h>
#include <string.h>

#define OPT_HELP                                                               \
    {                                                                          \
        PYSPY_O_HELP, 'h', "help", PYSPY_OPT_FLAG, NULL, "Print help", NULL,   \
            false                                                              \
    }
#define OPT_VERSION                                                            \
    {                                                                          \
        PYSPY_O_VERSION, 'V', "version", PYSPY_OPT_FLAG, NULL,                 \
            "Print version", NULL, false                                       \
    }
#define OPT_PID                                                                \
    {                                                                          \
        PYSPY_O_PID, 'p', "pid", PYSPY_OPT_VALUE, "pid",                       \
            "PID of a running Python program to inspect (decimal, or hex "     \
            "with 0x)",                                                        \
            NULL, false                                                        \
    }
#define OPT_NATIVE                                                             \
    {                                                                          \
        PYSPY_O_NATIVE, 'n', "native", PYSPY_OPT_FLAG, NULL,                   \
            "Also collect native frames from C, C++ and Cython extensions",    \
            NULL, false                                                        \
    }
#define OPT_NONBLOCKING                                                        \
    {                                                                          \
        PYSPY_O_NONBLOCKING, 0, "nonblocking", PYSPY_OPT_FLAG, NULL,           \
            "Read the process while it keeps running instead of pausing it: "  \
            "less "                                                            \
            "impact on the target, but samples may be inaccurate",             \
            NULL, false                                                        \
    }
#define OPT_RATE                                                               \
    {                                                                          \
        PYSPY_O_RATE, 'r', "rate", PYSPY_OPT_VALUE, "rate",                    \
            "How many samples to take per second", "100", false                \
    }
#define OPT_SUBPROCESSES                                                       \
    {                                                                          \
        PYSPY_O_SUBPROCESSES, 's', "subprocesses", PYSPY_OPT_FLAG, NULL,       \
            "Include the child processes of the target as well", NULL, false   \
    }
#define OPT_FULL_FILENAMES                                                     \
    {                                                                          \
        PYSPY_O_FULL_FILENAMES, 0, "full-filenames", PYSPY_OPT_FLAG, NULL,     \
            "Show whole Python file paths instead of shortening them to the "  \
            "package-relative part",                                           \
            NULL, false                                                        \
    }
#define OPT_EXECUTABLE                                                         \
    {                                                                          \
        PYSPY_O_EXECUTABLE, 0, "executable", PYSPY_OPT_VALUE, "file",          \
            "The interpreter's file, for a core read on another host (it "     \
            "must be the same build)",                                         \
            NULL, false                                                        \
    }
#define OPT_LIB_SEARCH_PATH                                                    \
    {                                                                          \
        PYSPY_O_LIB_SEARCH_PATH, 0, "lib-search-path", PYSPY_OPT_VALUE,        \
            "dir[:dir]",                                                       \
            "Folders holding the files a core maps (libraries, the "           \
            "interpreter), searched before the paths the core names",          \
            NULL, false                                                        \
    }
#define OPT_ALLOW_DAMAGED                                                      \
    {                                                                          \
        PYSPY_O_ALLOW_DAMAGED, 0, "allow-damaged", PYSPY_OPT_FLAG, NULL,       \
            "Read snapshots that fail their integrity checks: best-effort "    \
            "output, every frame read from damaged bytes marked [damaged]",    \
            NULL, false                                                        \
    }
#define OPT_MAX_SIZE                                                           \
    {                                                                          \
        PYSPY_O_MAX_SIZE, 0, "max-size", PYSPY_OPT_VALUE, "bytes",             \
            "Most of a streamed input (-, /dev/stdin, a FIFO) to spool to "    \
            "$TMPDIR before refusing it (suffixes K, M, G, T)",                \
            "64G", false                                                       \
    }
#define OPT_IDLE                                                               \
    {                                                                          \
        PYSPY_O_IDLE, 'i', "idle", PYSPY_OPT_FLAG, NULL,                       \
            "Keep stack traces of idle threads too", NULL, false               \
    }
#define OPT_GIL                                                                \
    {                                                                          \
        PYSPY_O_GIL, 'g', "gil", PYSPY_OPT_FLAG, NULL,                         \
            "Keep only the threads that hold the GIL", NULL, false             \
    }

const pyspy_opt pyspy_cli_top_opts[] = {OPT_HELP, OPT_VERSION};
const size_t pyspy_cli_ntop_opts =
    sizeof pyspy_cli_top_opts / sizeof pyspy_cli_top_opts[0];

static const pyspy_opt record_opts[] = {
    OPT_PID,
    OPT_FULL_FILENAMES,
    {PYSPY_O_OUTPUT, 'o', "output", PYSPY_OPT_VALUE, "filename",
     "File to write the result to (by default a name made of the program "
     "or pid, the time and the format's extension)",
     NULL, false},
    {PYSPY_O_FORMAT, 'f', "format", PYSPY_OPT_VALUE, "format",
     "Output format: flamegraph, raw, speedscope, chrometrace, pprof or "
     "aggregate (any case)",
     "flamegraph", false},
    {PYSPY_O_DURATION, 'd', "duration", PYSPY_OPT_VALUE, "duration",
     "How many seconds to sample for, or 'unlimited' (until the program ends "
     "or Ctrl-C)",
     "unlimited", false},
    OPT_RATE,
    OPT_SUBPROCESSES,
    {PYSPY_O_FUNCTION, 'F', "function", PYSPY_OPT_FLAG, NULL,
     "Group samples by the first line of each function rather than the line "
     "being run",
     NULL, false},
    {PYSPY_O_NOLINENO, 0, "nolineno", PYSPY_OPT_FLAG, NULL,
     "Leave line numbers out of the output", NULL, false},
    {PYSPY_O_THREADS, 't', "threads", PYSPY_OPT_FLAG, NULL,
     "Add each thread's id to the output", NULL, false},
    OPT_GIL,
    OPT_IDLE,
    {PYSPY_O_MODE, 0, "mode", PYSPY_OPT_VALUE, "mode",
     "Which samples to keep: wall (every thread, as --idle), cpu (threads "
     "that are running), gil (the thread holding the GIL, as --gil) or "
     "exception (threads handling an exception, running or not)",
     "cpu", false},
    {PYSPY_O_GC, 0, "gc", PYSPY_OPT_FLAG, NULL,
     "Add a <GC> frame on top of samples taken while the thread ran a "
     "garbage collection",
     NULL, false},
    {PYSPY_O_CAPTURE, 0, "capture", PYSPY_OPT_FLAG, NULL,
     "Capture the output of the program started by pyspy instead of letting "
     "it print",
     NULL, false},
    {PYSPY_O_HIDEPROGRESS, 0, "hideprogress", PYSPY_OPT_FLAG, NULL,
     "Do not draw the progress bar", NULL, false},
    {PYSPY_O_JOBS, 'j', "jobs", PYSPY_OPT_VALUE, "jobs",
     "Threads reading snapshot/core files at once (offline record only)",
     "number of CPUs", false},
    OPT_EXECUTABLE,
    OPT_LIB_SEARCH_PATH,
    OPT_ALLOW_DAMAGED,
    OPT_MAX_SIZE,
    OPT_NATIVE,
    OPT_NONBLOCKING,
    OPT_HELP,
    OPT_VERSION,
};

static const pyspy_opt top_opts[] = {
    OPT_PID,
    OPT_RATE,
    OPT_SUBPROCESSES,
    OPT_FULL_FILENAMES,
    OPT_GIL,
    OPT_IDLE,
    {PYSPY_O_DELAY, 0, "delay", PYSPY_OPT_VALUE, "seconds",
     "Seconds between two refreshes of the screen", "1.0", false},
    OPT_NATIVE,
    OPT_NONBLOCKING,
    OPT_HELP,
    OPT_VERSION,
};

static const pyspy_opt dump_opts[] = {
    OPT_PID,
    {PYSPY_O_CORE, 'c', "core", PYSPY_OPT_VALUE, "core",
     "Core file or snapshot to read the stacks from instead of a live process",
     NULL, false},
    OPT_FULL_FILENAMES,
    {PYSPY_O_LOCALS, 'l', "locals", PYSPY_OPT_COUNT, NULL,
     "Show the local variables of every frame; give it twice (-ll) for more "
     "detail",
     NULL, false},
    {PYSPY_O_JSON, 'j', "json", PYSPY_OPT_FLAG, NULL,
     "Print the stacks as JSON", NULL, false},
    OPT_EXECUTABLE,
    OPT_LIB_SEARCH_PATH,
    OPT_ALLOW_DAMAGED,
    OPT_MAX_SIZE,
    {PYSPY_O_SNAPSHOT, 0, "snapshot", PYSPY_OPT_VALUE, "file",
     "Also write a lean snapshot: only the memory this dump read (with "
     "--locals and --native what those read), which dumps the same",
     NULL, false},
    OPT_SUBPROCESSES,
    OPT_NATIVE,
    OPT_NONBLOCKING,
    OPT_HELP,
    OPT_VERSION,
};

/* diff's options that shape the stacks apply to snapshot inputs; a raw
 * file's stacks are already made. */
static const pyspy_opt diff_opts[] = {
    {PYSPY_O_OUTPUT, 'o', "output", PYSPY_OPT_VALUE, "filename",
     "File to write the differential flamegraph (SVG) to", "diff.svg", false},
    OPT_FULL_FILENAMES,
    {PYSPY_O_FUNCTION, 'F', "function", PYSPY_OPT_FLAG, NULL,
     "Group samples by the first line of each function rather than the line "
     "being run (snapshot inputs)",
     NULL, false},
    {PYSPY_O_NOLINENO, 0, "nolineno", PYSPY_OPT_FLAG, NULL,
     "Leave line numbers out of the frames of snapshot inputs", NULL, false},
    {PYSPY_O_THREADS, 't', "threads", PYSPY_OPT_FLAG, NULL,
     "Add each thread's id to the stacks of snapshot inputs", NULL, false},
    OPT_GIL,
    OPT_IDLE,
    {PYSPY_O_JOBS, 'j', "jobs", PYSPY_OPT_VALUE, "jobs",
     "Threads reading snapshot/core files at once", "number of CPUs", false},
    OPT_EXECUTABLE,
    OPT_LIB_SEARCH_PATH,
    OPT_MAX_SIZE,
    OPT_HELP,
    OPT_VERSION,
};

/* merge's options that shape the stacks apply to snapshot inputs, as
 * offline record's; recorded inputs carry their own and must agree. */
static const pyspy_opt merge_opts[] = {
    {PYSPY_O_OUTPUT, 'o', "output", PYSPY_OPT_VALUE, "filename",
     "File to write the merged profile to (by default merge-<time> and the "
     "format's extension)",
     NULL, false},
    {PYSPY_O_FORMAT, 'f', "format", PYSPY_OPT_VALUE, "format",
     "Output format: flamegraph, raw, speedscope, chrometrace, pprof or "
     "aggregate (any case)",
     "flamegraph", false},
    OPT_RATE,
    OPT_FULL_FILENAMES,
    {PYSPY_O_FUNCTION, 'F', "function", PYSPY_OPT_FLAG, NULL,
     "Group samples by the first line of each function rather than the line "
     "being run (snapshot inputs)",
     NULL, false},
    {PYSPY_O_NOLINENO, 0, "nolineno", PYSPY_OPT_FLAG, NULL,
     "Leave line numbers out of the frames of snapshot inputs", NULL, false},
    {PYSPY_O_THREADS, 't', "threads", PYSPY_OPT_FLAG, NULL,
     "Add each thread's id to the stacks of snapshot inputs", NULL, false},
    OPT_GIL,
    OPT_IDLE,
    {PYSPY_O_HIDEPROGRESS, 0, "hideprogress", PYSPY_OPT_FLAG, NULL,
     "Do not draw the progress bar", NULL, false},
    {PYSPY_O_JOBS, 'j', "jobs", PYSPY_OPT_VALUE, "jobs",
     "Threads reading snapshot/core files at once", "number of CPUs", false},
    OPT_EXECUTABLE,
    OPT_LIB_SEARCH_PATH,
    OPT_MAX_SIZE,
    OPT_HELP,
    OPT_VERSION,
};

static const pyspy_opt plain_opts[] = {OPT_HELP, OPT_VERSION};

#define N(a) (sizeof(a) / sizeof((a)[0]))

const pyspy_cli_command pyspy_cli_commands[] = {
    {"record", PYSPY_CMD_RECORD,
     "Samples stack traces into a flamegraph, speedscope, chrometrace, pprof "
     "or raw file",
     record_opts, N(record_opts), PYSPY_POS_PROGRAM_OR_INPUTS, false},
    {"top", PYSPY_CMD_TOP,
     "Shows a live, top-like view of the functions taking the most time",
     top_opts, N(top_opts), PYSPY_POS_PROGRAM, false},
    {"dump", PYSPY_CMD_DUMP,
     "Prints the current stack traces of a process, a core file or a "
     "snapshot",
     dump_opts, N(dump_opts), PYSPY_POS_INPUTS, false},
    {"diff", PYSPY_CMD_DIFF,
     "Draws a differential flamegraph of two recordings or snapshot sets",
     diff_opts, N(diff_opts), PYSPY_POS_BASE_NEW, false},
    {"merge", PYSPY_CMD_MERGE,
     "Merges partial recordings into one, in any of record's formats",
     merge_opts, N(merge_opts), PYSPY_POS_RECORDINGS, false},
    {"completions", PYSPY_CMD_COMPLETIONS,
     "Prints a completion script for bash, elvish, fish, powershell or zsh",
     plain_opts, N(plain_opts), PYSPY_POS_SHELL, false},
    {"help", PYSPY_CMD_HELP,
     "Prints this message or the help of the given subcommand", plain_opts,
     N(plain_opts), PYSPY_POS_SUBCOMMAND, false},
};
const size_t pyspy_cli_ncommands = N(pyspy_cli_commands);

const char *const pyspy_cli_shells[] = {"bash",       "elvish", "fish",
                                        "powershell", "zsh",    NULL};

const pyspy_cli_command *pyspy_cli_find(const char *name, pyspy_error *err) {
    const pyspy_cli_command *hit = NULL;
    int nhits = 0;
    size_t n = strlen(name);
    for (size_t i = 0; i < pyspy_cli_ncommands; i++) {
        if (strcmp(pyspy_cli_commands[i].name, name) == 0)
            return &pyspy_cli_commands[i];
        if (n && strncmp(pyspy_cli_commands[i].name, name, n) == 0) {
            hit = &pyspy_cli_commands[i];
            nhits++;
        }
    }
    if (nhits == 1)
        return hit;
    if (nhits > 1) {
        pyspy_error_set(err, PYSPY_E_USAGE,
                        "unrecognized subcommand '%s': it is a prefix of "
                        "more than one subcommand",
                        name);
        return NULL;
    }
    pyspy_error_set(err, PYSPY_E_USAGE,
                    "unrecognized subcommand '%s' (expected record, top, dump, "
                    "diff, merge, completions or help)",
                    name);
    return NULL;
}

char *pyspy_cli_version(void) {
    pyspy_sb sb = {0};
    pyspy_sb_puts(&sb, PYSPY_CLI_NAME " " PYSPY_VERSION "\n");
    return pyspy_sb_take(&sb);
}

static const char record_after[] =
    "Without --pid, trailing arguments are snapshot/core files to profile "
    "offline when -j is given or when the first one is a directory or an "
    "existing file named *.core, *.zst (as in *.core.zst), core or core.<N>; "
    "each of them must then exist. A directory stands for all its files, in "
    "name order (a series' time order), so a set too large for the command "
    "line is given as its folder: 'pyspy record -o out.svg DIR'. Otherwise "
    "they are a program to start. Arguments after '--' are always a "
    "program.";

static const char diff_after[] =
    "Each of <base> and <new> is a file of collapsed stacks ('pyspy record "
    "-f raw'), one snapshot or core file, or a directory whose files are "
    "all snapshots or cores (as 'pyspy-capture --rate R --duration D -o "
    "DIR' writes a series); the two may be of different kinds. The boxes "
    "are laid out by <new>'s samples. Each is coloured by how its share of "
    "all samples changed from <base> to <new>: red grew, blue shrank, the "
    "deeper the larger the change, white about the same; hovering shows "
    "both counts and shares. A legend says what share of <base> lies in "
    "stacks <new> lacks.";

static const char merge_after[] =
    "Each <input> is an aggregate file ('pyspy record -f aggregate', which "
    "keeps threads, their names and the time line), a file of collapsed "
    "stacks ('pyspy record -f raw'), a snapshot or core file, or a "
    "directory of them, merged in the order given: the result is what one "
    "'pyspy record' over all their snapshots gives (the time line too, "
    "when each input's samples come after the previous input's). Inputs "
    "must be recorded with the same --idle, --gil, --threads, --nolineno "
    "and --rate. Raw files have only stack labels, so with any of them the "
    "output is a flamegraph or raw file.";

static void usage_and_args(pyspy_sb *sb, const pyspy_cli_command *c) {
    const char *n = c->name;
    pyspy_sb_puts(sb, "USAGE:\n");
    switch (c->positional) {
    case PYSPY_POS_PROGRAM_OR_INPUTS:
        pyspy_sb_printf(
            sb,
            "    " PYSPY_CLI_NAME " %s [OPTIONS] --pid <pid>\n"
            "    " PYSPY_CLI_NAME " %s [OPTIONS] [--] <python_program>...\n"
            "    " PYSPY_CLI_NAME " %s [OPTIONS] [-j <jobs>] <snapshot>...\n\n",
            n, n, n);
        pyspy_sb_puts(sb, "ARGS:\n"
                          "    <python_program>...    Command line of a "
                          "Python program to start and profile\n"
                          "    <snapshot>...          Snapshot or core files "
                          "to profile offline, all into one output\n\n");
        break;
    case PYSPY_POS_PROGRAM:
        pyspy_sb_printf(sb,
                        "    " PYSPY_CLI_NAME " %s [OPTIONS] --pid <pid>\n"
                        "    " PYSPY_CLI_NAME
                        " %s [OPTIONS] [--] <python_program>...\n\n",
                        n, n);
        pyspy_sb_puts(sb, "ARGS:\n"
                          "    <python_program>...    Command line of a "
                          "Python program to start and watch\n\n");
        break;
    case PYSPY_POS_INPUTS:
        pyspy_sb_printf(sb,
                        "    " PYSPY_CLI_NAME " %s [OPTIONS] --pid <pid>\n"
                        "    " PYSPY_CLI_NAME " %s [OPTIONS] --core <core>\n"
                        "    " PYSPY_CLI_NAME " %s [OPTIONS] <snapshot>...\n\n",
                        n, n, n);
        pyspy_sb_puts(sb, "ARGS:\n"
                          "    <snapshot>...    Snapshot or core files to "
                          "read, each dumped in turn\n\n");
        break;
    case PYSPY_POS_BASE_NEW:
        pyspy_sb_printf(sb,
                        "    " PYSPY_CLI_NAME
                        " %s [OPTIONS] <base> <new> [-o diff.svg]\n\n",
                        n);
        pyspy_sb_puts(sb, "ARGS:\n"
                          "    <base>    The recording before: a raw file "
                          "(record -f raw), a snapshot or core, or a "
                          "directory of snapshots\n"
                          "    <new>     The recording after, any of the "
                          "same\n\n");
        break;
    case PYSPY_POS_RECORDINGS:
        pyspy_sb_printf(sb,
                        "    " PYSPY_CLI_NAME
                        " %s [OPTIONS] <input>... [-o OUT] [-f FORMAT]\n\n",
                        n);
        pyspy_sb_puts(sb, "ARGS:\n"
                          "    <input>...    Recordings to merge: aggregate "
                          "or raw files, snapshots or cores, or directories "
                          "of them\n\n");
        break;
    case PYSPY_POS_SHELL:
        pyspy_sb_printf(sb, "    " PYSPY_CLI_NAME " %s <shell>\n\n", n);
        pyspy_sb_puts(sb, "ARGS:\n"
                          "    <shell>    Shell to write the script for "
                          "[possible values: " PYSPY_CLI_SHELL_LIST "]\n\n");
        break;
    case PYSPY_POS_SUBCOMMAND:
        pyspy_sb_printf(sb, "    " PYSPY_CLI_NAME " %s [subcommand]\n\n", n);
        pyspy_sb_puts(sb, "ARGS:\n"
                          "    [subcommand]    Subcommand whose help to "
                          "print\n\n");
        break;
    case PYSPY_POS_NONE:
        pyspy_sb_printf(sb, "    " PYSPY_CLI_NAME " %s [OPTIONS]\n\n", n);
        break;
    }
}

char *pyspy_cli_help(const pyspy_cli_command *c) {
    pyspy_sb sb = {0};
    if (!c) {
        pyspy_sb_puts(&sb,
                      PYSPY_CLI_NAME " " PYSPY_VERSION "\n"
                                     "Sampling profiler and post-mortem "
                                     "stack analyzer for Python "
                                     "programs\n\n"
                                     "USAGE:\n"
                                     "    " PYSPY_CLI_NAME " <SUBCOMMAND>\n\n");
        pyspy_opts_help(&sb, pyspy_cli_top_opts, pyspy_cli_ntop_opts);
        pyspy_sb_puts(&sb, "\nSUBCOMMANDS:\n");
        for (size_t i = 0; i < pyspy_cli_ncommands; i++) {
            const pyspy_cli_command *s = &pyspy_cli_commands[i];
            if (!s->hidden)
                pyspy_sb_printf(&sb, "    %-13s%s\n", s->name, s->about);
        }
        pyspy_sb_puts(&sb, "\nA subcommand may be shortened to any prefix "
                           "that names only it (rec, t, du).\n");
        return pyspy_sb_take(&sb);
    }
    pyspy_sb_printf(&sb, PYSPY_CLI_NAME "-%s " PYSPY_VERSION "\n%s\n\n",
                    c->name, c->about);
    usage_and_args(&sb, c);
    pyspy_opts_help(&sb, c->opts, c->nopts);
    if (c->command == PYSPY_CMD_RECORD) {
        pyspy_sb_puts(&sb, "\n");
        pyspy_sb_wrap(&sb, record_after);
    }
    if (c->command == PYSPY_CMD_DIFF) {
        pyspy_sb_puts(&sb, "\n");
        pyspy_sb_wrap(&sb, diff_after);
    }
    if (c->command == PYSPY_CMD_MERGE) {
        pyspy_sb_puts(&sb, "\n");
        pyspy_sb_wrap(&sb, merge_after);
    }
    return pyspy_sb_take(&sb);
}
