/* The shape of pyspy-analyze's command line, shared by the parser
 * (config_args.c), the help texts (help_text.c) and the completion
 * scripts (completions.c). */
#ifndef PYSPY_ANALYZE_CLI_H
#define PYSPY_ANALYZE_CLI_H

#include "capture/base/cli_args.h"
#include <pyspy.h>

#define PYSPY_CLI_NAME "pyspy"

enum pyspy_cli_opt_id {
    PYSPY_O_HELP,
    PYSPY_O_VERSION,
    PYSPY_O_PID,
    PYSPY_O_OUTPUT,
    PYSPY_O_FORMAT,
    PYSPY_O_DURATION,
    PYSPY_O_RATE,
    PYSPY_O_SUBPROCESSES,
    PYSPY_O_FUNCTION,
    PYSPY_O_NOLINENO,
    PYSPY_O_THREADS,
    PYSPY_O_GIL,
    PYSPY_O_IDLE,
    PYSPY_O_CAPTURE,
    PYSPY_O_HIDEPROGRESS,
    PYSPY_O_NATIVE,
    PYSPY_O_NONBLOCKING,
    PYSPY_O_FULL_FILENAMES,
    PYSPY_O_JOBS,
    PYSPY_O_DELAY,
    PYSPY_O_CORE,
    PYSPY_O_LOCALS,
    PYSPY_O_JSON,
    PYSPY_O_EXECUTABLE,
    PYSPY_O_LIB_SEARCH_PATH,
    PYSPY_O_MODE,
    PYSPY_O_GC,
    PYSPY_O_ALLOW_DAMAGED,
    PYSPY_O_SNAPSHOT,
    PYSPY_O_MAX_SIZE
};

/* What a subcommand's positional arguments are. */
typedef enum {
    PYSPY_POS_NONE,
    PYSPY_POS_PROGRAM_OR_INPUTS, /* record */
    PYSPY_POS_PROGRAM,           /* top */
    PYSPY_POS_INPUTS,            /* dump */
    PYSPY_POS_SHELL,             /* completions */
    PYSPY_POS_SUBCOMMAND,        /* help */
    PYSPY_POS_BASE_NEW,          /* diff: exactly two recordings */
    PYSPY_POS_RECORDINGS         /* merge: one or more recordings */
} pyspy_cli_positional;

typedef struct pyspy_cli_command {
    const char *name;
    pyspy_command command;
    const char *about;
    const pyspy_opt *opts;
    size_t nopts;
    pyspy_cli_positional positional;
    bool hidden; /* left out of the top-level list, as py-spy does */
} pyspy_cli_command;

/* The top level's own options (-h, -V). */
extern const pyspy_opt pyspy_cli_top_opts[];
extern const size_t pyspy_cli_ntop_opts;
/* record, top, dump, diff, merge, completions, help (in that order). */
extern const pyspy_cli_command pyspy_cli_commands[];
extern const size_t pyspy_cli_ncommands;

/* clap_complete's shells, in its order (py-spy's completions). */
#define PYSPY_CLI_SHELL_WORDS "bash elvish fish powershell zsh"
#define PYSPY_CLI_SHELL_LIST "bash, elvish, fish, powershell, zsh"
extern const char *const pyspy_cli_shells[]; /* NULL-terminated */

/* Exact name or unambiguous prefix; NULL with err set otherwise. */
const pyspy_cli_command *pyspy_cli_find(const char *name, pyspy_error *err);

/* malloc'd texts; NULL only when out of memory. cmd NULL = top level. */
char *pyspy_cli_help(const pyspy_cli_command *cmd);
char *pyspy_cli_version(void);
/* One of pyspy_cli_shells (case-insensitive). */
int pyspy_cli_completions(const char *shell, char **out, pyspy_error *err);

/* Whether a path's name looks like a snapshot or core file (the rule
 * `record` uses to read trailing arguments as inputs). */
bool pyspy_cli_snapshot_name(const char *path);

#endif
