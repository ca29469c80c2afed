/* Shell completion scripts, generated from the same option tables the
 * parser uses so they cannot drift from it. */
#include "analyze/cli/cli.h"

#include <string.h>
#include <strings.h>

#define NAMES PYSPY_CLI_NAME " " PYSPY_CLI_NAME "-analyze"

typedef enum { VAL_NONE, VAL_FILE, VAL_PID, VAL_FORMAT } value_kind;

static value_kind value_of(const pyspy_opt *o) {
    switch (o->id) {
    case PYSPY_O_OUTPUT:
    case PYSPY_O_CORE:
    case PYSPY_O_EXECUTABLE:
    case PYSPY_O_LIB_SEARCH_PATH:
        return VAL_FILE;
    case PYSPY_O_PID:
        return VAL_PID;
    case PYSPY_O_FORMAT:
        return VAL_FORMAT;
    default:
        return VAL_NONE;
    }
}

static const char formats[] = "flamegraph raw speedscope chrometrace";

/* "r|re|rec|reco|recor|record": every prefix the parser would accept. */
static void prefixes(pyspy_sb *sb, const pyspy_cli_command *c,
                     const char *sep) {
    size_t len = strlen(c->name);
    bool first = true;
    for (size_t n = 1; n <= len; n++) {
        int hits = 0;
        for (size_t i = 0; i < pyspy_cli_ncommands; i++)
            hits += strncmp(pyspy_cli_commands[i].name, c->name, n) == 0;
        if (hits == 1 || n == len) {
            pyspy_sb_printf(sb, "%s%.*s", first ? "" : sep, (int)n, c->name);
            first = false;
        }
    }
}

static void subcommand_words(pyspy_sb *sb, bool with_help) {
    for (size_t i = 0; i < pyspy_cli_ncommands; i++) {
        const pyspy_cli_command *c = &pyspy_cli_commands[i];
        if (!with_help && c->command == PYSPY_CMD_HELP)
            continue;
        pyspy_sb_printf(sb, "%s%s", i ? " " : "", c->name);
    }
}

static void bash_command(pyspy_sb *sb, const pyspy_cli_command *c) {
    pyspy_sb_puts(sb, "    ");
    prefixes(sb, c, "|");
    pyspy_sb_puts(sb, ")\n        case \"$prev\" in\n");
    for (size_t i = 0; i < c->nopts; i++) {
        const pyspy_opt *o = &c->opts[i];
        if (o->kind != PYSPY_OPT_VALUE)
            continue;
        pyspy_sb_puts(sb, "        ");
        if (o->short_name)
            pyspy_sb_printf(sb, "-%c|", o->short_name);
        pyspy_sb_printf(sb, "--%s)\n            ", o->long_name);
        switch (value_of(o)) {
        case VAL_FILE:
            pyspy_sb_puts(sb, "COMPREPLY=($(compgen -f -- \"$cur\"))");
            break;
        case VAL_PID:
            pyspy_sb_puts(sb, "COMPREPLY=($(compgen -W \"$(ps -e -o pid= "
                              "2>/dev/null)\" -- \"$cur\"))");
            break;
        case VAL_FORMAT:
            pyspy_sb_printf(sb, "COMPREPLY=($(compgen -W \"%s\" -- \"$cur\"))",
                            formats);
            break;
        case VAL_NONE:
            pyspy_sb_puts(sb, "COMPREPLY=()");
            break;
        }
        pyspy_sb_puts(sb, "\n            return 0\n            ;;\n");
    }
    pyspy_sb_puts(sb, "        esac\n        if [[ \"$cur\" == -* ]]; then\n"
                      "            COMPREPLY=($(compgen -W \"");
    for (size_t i = 0; i < c->nopts; i++) {
        const pyspy_opt *o = &c->opts[i];
        if (o->short_name)
            pyspy_sb_printf(sb, "-%c ", o->short_name);
        pyspy_sb_printf(sb, "--%s%s", o->long_name,
                        i + 1 < c->nopts ? " " : "");
    }
    pyspy_sb_puts(sb, "\" -- \"$cur\"))\n        else\n            ");
    switch (c->positional) {
    case PYSPY_POS_SHELL:
        pyspy_sb_puts(sb, "COMPREPLY=($(compgen -W \"bash zsh fish\" -- "
                          "\"$cur\"))");
        break;
    case PYSPY_POS_SUBCOMMAND:
        pyspy_sb_puts(sb, "COMPREPLY=($(compgen -W \"");
        subcommand_words(sb, false);
        pyspy_sb_puts(sb, "\" -- \"$cur\"))");
        break;
    default:
        pyspy_sb_puts(sb, "COMPREPLY=($(compgen -f -- \"$cur\"))");
        break;
    }
    pyspy_sb_puts(sb, "\n        fi\n        ;;\n");
}

static void bash_script(pyspy_sb *sb) {
    pyspy_sb_puts(sb,
                  "# bash completion for " PYSPY_CLI_NAME
                  "; load with: source <(" PYSPY_CLI_NAME " completions bash)\n"
                  "_pyspy() {\n"
                  "    local cur prev sub i\n"
                  "    COMPREPLY=()\n"
                  "    cur=\"${COMP_WORDS[COMP_CWORD]}\"\n"
                  "    prev=\"\"\n"
                  "    if [ \"$COMP_CWORD\" -gt 0 ]; then\n"
                  "        prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
                  "    fi\n"
                  "    sub=\"\"\n"
                  "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
                  "        case \"${COMP_WORDS[i]}\" in\n"
                  "        -*) ;;\n"
                  "        *)\n"
                  "            sub=\"${COMP_WORDS[i]}\"\n"
                  "            break\n"
                  "            ;;\n"
                  "        esac\n"
                  "    done\n"
                  "    case \"$sub\" in\n"
                  "    \"\")\n"
                  "        COMPREPLY=($(compgen -W \"");
    subcommand_words(sb, true);
    pyspy_sb_puts(sb, " -h --help -V --version\" -- \"$cur\"))\n"
                      "        ;;\n");
    for (size_t i = 0; i < pyspy_cli_ncommands; i++)
        bash_command(sb, &pyspy_cli_commands[i]);
    pyspy_sb_puts(sb, "    esac\n"
                      "    return 0\n"
                      "}\n"
                      "complete -F _pyspy -o filenames " NAMES "\n");
}

/* Help text made safe inside a single-quoted zsh _arguments spec. */
static void zsh_desc(pyspy_sb *sb, const char *s) {
    for (; *s; s++) {
        if (*s == '\'')
            pyspy_sb_puts(sb, "'\\''");
        else if (*s == '[' || *s == ']' || *s == ':' || *s == '\\')
            pyspy_sb_printf(sb, "\\%c", *s);
        else
            pyspy_sb_printf(sb, "%c", *s);
    }
}

static void zsh_opt(pyspy_sb *sb, const pyspy_opt *o) {
    bool both = o->short_name && o->long_name;
    bool val = o->kind == PYSPY_OPT_VALUE;
    pyspy_sb_puts(sb, "            ");
    if (o->kind == PYSPY_OPT_COUNT)
        pyspy_sb_puts(sb, "'*'");
    else if (both)
        pyspy_sb_printf(sb, "'(-%c --%s)'", o->short_name, o->long_name);
    if (both)
        pyspy_sb_printf(sb, "{-%c%s,--%s%s}'", o->short_name, val ? "+" : "",
                        o->long_name, val ? "=" : "");
    else if (o->short_name)
        pyspy_sb_printf(sb, "'-%c%s", o->short_name, val ? "+" : "");
    else
        pyspy_sb_printf(sb, "'--%s%s", o->long_name, val ? "=" : "");
    pyspy_sb_puts(sb, "[");
    zsh_desc(sb, o->help);
    pyspy_sb_puts(sb, "]");
    if (val) {
        pyspy_sb_printf(sb, ":%s:", o->value_name);
        switch (value_of(o)) {
        case VAL_FILE:
            pyspy_sb_puts(sb, "_files");
            break;
        case VAL_PID:
            pyspy_sb_puts(sb, "_pids");
            break;
        case VAL_FORMAT:
            pyspy_sb_printf(sb, "(%s)", formats);
            break;
        case VAL_NONE:
            pyspy_sb_puts(sb, " ");
            break;
        }
    }
    pyspy_sb_puts(sb, "' \\\n");
}

static void zsh_script(pyspy_sb *sb) {
    pyspy_sb_puts(sb, "#compdef " NAMES "\n"
                      "# zsh completion for " PYSPY_CLI_NAME
                      "; save as _pyspy in a directory of $fpath\n\n"
                      "_pyspy_commands() {\n"
                      "    local -a cmds\n"
                      "    cmds=(\n");
    for (size_t i = 0; i < pyspy_cli_ncommands; i++) {
        pyspy_sb_printf(sb, "        '%s:", pyspy_cli_commands[i].name);
        zsh_desc(sb, pyspy_cli_commands[i].about);
        pyspy_sb_puts(sb, "'\n");
    }
    pyspy_sb_puts(sb, "    )\n"
                      "    _describe -t commands 'pyspy subcommand' cmds\n"
                      "}\n\n"
                      "_pyspy() {\n"
                      "    local curcontext=\"$curcontext\" state line\n"
                      "    typeset -A opt_args\n"
                      "    _arguments -C \\\n"
                      "        '(- *)'{-h,--help}'[Print help]' \\\n"
                      "        '(- *)'{-V,--version}'[Print version]' \\\n"
                      "        '1: :_pyspy_commands' \\\n"
                      "        '*:: :->args'\n"
                      "    case $state in\n"
                      "    args)\n"
                      "        case $line[1] in\n");
    for (size_t i = 0; i < pyspy_cli_ncommands; i++) {
        const pyspy_cli_command *c = &pyspy_cli_commands[i];
        pyspy_sb_puts(sb, "        ");
        prefixes(sb, c, "|");
        pyspy_sb_puts(sb, ")\n            _arguments \\\n");
        for (size_t j = 0; j < c->nopts; j++)
            zsh_opt(sb, &c->opts[j]);
        switch (c->positional) {
        case PYSPY_POS_PROGRAM_OR_INPUTS:
            pyspy_sb_puts(sb, "            '*::program or snapshot:_files'\n");
            break;
        case PYSPY_POS_PROGRAM:
            pyspy_sb_puts(sb, "            '*::python program:_normal'\n");
            break;
        case PYSPY_POS_INPUTS:
            pyspy_sb_puts(sb, "            '*:snapshot:_files'\n");
            break;
        case PYSPY_POS_SHELL:
            pyspy_sb_puts(sb, "            '1:shell:(bash zsh fish)'\n");
            break;
        case PYSPY_POS_SUBCOMMAND:
            pyspy_sb_puts(sb, "            '1:subcommand:(");
            subcommand_words(sb, false);
            pyspy_sb_puts(sb, ")'\n");
            break;
        case PYSPY_POS_NONE:
            pyspy_sb_puts(sb, "            '*: :'\n");
            break;
        }
        pyspy_sb_puts(sb, "            ;;\n");
    }
    pyspy_sb_puts(sb, "        esac\n"
                      "        ;;\n"
                      "    esac\n"
                      "}\n\n"
                      "if [ \"$funcstack[1]\" = \"_pyspy\" ]; then\n"
                      "    _pyspy \"$@\"\n"
                      "else\n"
                      "    compdef _pyspy " NAMES "\n"
                      "fi\n");
}

/* Help text made safe inside a single-quoted fish string. */
static void fish_desc(pyspy_sb *sb, const char *s) {
    for (; *s; s++) {
        if (*s == '\'' || *s == '\\')
            pyspy_sb_printf(sb, "\\%c", *s);
        else
            pyspy_sb_printf(sb, "%c", *s);
    }
}

static void fish_script(pyspy_sb *sb) {
    pyspy_sb_puts(sb,
                  "# fish completion for " PYSPY_CLI_NAME
                  "; load with: " PYSPY_CLI_NAME " completions fish | source\n"
                  "for __pyspy_cmd in " NAMES "\n"
                  "    complete -c $__pyspy_cmd -f\n"
                  "    complete -c $__pyspy_cmd -n __fish_use_subcommand "
                  "-s h -l help -d 'Print help'\n"
                  "    complete -c $__pyspy_cmd -n __fish_use_subcommand "
                  "-s V -l version -d 'Print version'\n");
    for (size_t i = 0; i < pyspy_cli_ncommands; i++) {
        const pyspy_cli_command *c = &pyspy_cli_commands[i];
        pyspy_sb_printf(sb,
                        "    complete -c $__pyspy_cmd -n "
                        "__fish_use_subcommand -a %s -d '",
                        c->name);
        fish_desc(sb, c->about);
        pyspy_sb_puts(sb, "'\n");
    }
    for (size_t i = 0; i < pyspy_cli_ncommands; i++) {
        const pyspy_cli_command *c = &pyspy_cli_commands[i];
        pyspy_sb_puts(sb,
                      "    set -l __pyspy_in \"__fish_seen_subcommand_from ");
        prefixes(sb, c, " ");
        pyspy_sb_puts(sb, "\"\n");
        for (size_t j = 0; j < c->nopts; j++) {
            const pyspy_opt *o = &c->opts[j];
            pyspy_sb_puts(sb, "    complete -c $__pyspy_cmd -n $__pyspy_in");
            if (o->short_name)
                pyspy_sb_printf(sb, " -s %c", o->short_name);
            pyspy_sb_printf(sb, " -l %s", o->long_name);
            if (o->kind == PYSPY_OPT_VALUE) {
                switch (value_of(o)) {
                case VAL_FILE:
                    pyspy_sb_puts(sb, " -r -F");
                    break;
                case VAL_PID:
                    pyspy_sb_puts(sb, " -x -a '(__fish_complete_pids)'");
                    break;
                case VAL_FORMAT:
                    pyspy_sb_printf(sb, " -x -a '%s'", formats);
                    break;
                case VAL_NONE:
                    pyspy_sb_puts(sb, " -x");
                    break;
                }
            }
            pyspy_sb_puts(sb, " -d '");
            fish_desc(sb, o->help);
            pyspy_sb_puts(sb, "'\n");
        }
        switch (c->positional) {
        case PYSPY_POS_SHELL:
            pyspy_sb_puts(sb, "    complete -c $__pyspy_cmd -n $__pyspy_in "
                              "-a 'bash zsh fish'\n");
            break;
        case PYSPY_POS_SUBCOMMAND:
            pyspy_sb_puts(sb, "    complete -c $__pyspy_cmd -n $__pyspy_in "
                              "-a '");
            subcommand_words(sb, false);
            pyspy_sb_puts(sb, "'\n");
            break;
        case PYSPY_POS_NONE:
            break;
        default:
            pyspy_sb_puts(sb, "    complete -c $__pyspy_cmd -n $__pyspy_in "
                              "-F\n");
            break;
        }
    }
    pyspy_sb_puts(sb, "end\n");
}

int pyspy_cli_completions(const char *shell, char **out, pyspy_error *err) {
    pyspy_sb sb = {0};
    if (!shell)
        shell = "";
    if (strcasecmp(shell, "bash") == 0)
        bash_script(&sb);
    else if (strcasecmp(shell, "zsh") == 0)
        zsh_script(&sb);
    else if (strcasecmp(shell, "fish") == 0)
        fish_script(&sb);
    else
        return pyspy_error_set(err, PYSPY_E_USAGE,
                               "invalid value '%s' for '<shell>' [possible "
                               "values: bash, zsh, fish]",
                               shell);
    char *s = pyspy_sb_take(&sb);
    if (!s)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    *out = s;
    return 0;
}
