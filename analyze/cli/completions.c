/* Shell completion scripts, generated from the same option tables the
 * parser uses so they cannot drift from it. */
#include "analyze/cli/cli.h"

#include <string.h>
#include <strings.h>

#define NAMES PYSPY_CLI_NAME " " PYSPY_CLI_NAME "-analyze"

typedef enum { VAL_NONE, VAL_FILE, VAL_PID, VAL_FORMAT, VAL_MODE } value_kind;

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
    case PYSPY_O_MODE:
        return VAL_MODE;
    default:
        return VAL_NONE;
    }
}

static const char formats[] =
    "flamegraph raw speedscope chrometrace pprof aggregate";
static const char modes[] = "wall cpu gil exception";

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
        case VAL_MODE:
            pyspy_sb_printf(sb, "COMPREPLY=($(compgen -W \"%s\" -- \"$cur\"))",
                            value_of(o) == VAL_MODE ? modes : formats);
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
        pyspy_sb_puts(sb, "COMPREPLY=($(compgen -W \"" PYSPY_CLI_SHELL_WORDS
                          "\" -- "
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
        case VAL_MODE:
            pyspy_sb_printf(sb, "(%s)", modes);
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
        case PYSPY_POS_RECORDINGS:
            pyspy_sb_puts(sb, "            '*:recording:_files'\n");
            break;
        case PYSPY_POS_BASE_NEW:
            pyspy_sb_puts(sb, "            '1:base recording:_files' \\\n"
                              "            '2:new recording:_files'\n");
            break;
        case PYSPY_POS_SHELL:
            pyspy_sb_puts(sb, "            '1:shell:(" PYSPY_CLI_SHELL_WORDS
                              ")'\n");
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
                case VAL_MODE:
                    pyspy_sb_printf(sb, " -x -a '%s'", modes);
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
                              "-a '" PYSPY_CLI_SHELL_WORDS "'\n");
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

/* A word made safe inside a single-quoted elvish or PowerShell string
 * (both double the quote). */
static void quoted(pyspy_sb *sb, const char *s) {
    pyspy_sb_puts(sb, "'");
    for (; *s; s++) {
        if (*s == '\'')
            pyspy_sb_puts(sb, "''");
        else
            pyspy_sb_printf(sb, "%c", *s);
    }
    pyspy_sb_puts(sb, "'");
}

/* The subcommands' prefixes as key/value pairs: elvish's
 * "&rec=record", PowerShell's "'rec' = 'record'". */
static void prefix_map(pyspy_sb *sb, bool elvish, const char *indent) {
    for (size_t i = 0; i < pyspy_cli_ncommands; i++) {
        const pyspy_cli_command *c = &pyspy_cli_commands[i];
        size_t len = strlen(c->name);
        for (size_t n = 1; n <= len; n++) {
            int hits = 0;
            for (size_t k = 0; k < pyspy_cli_ncommands; k++)
                hits += strncmp(pyspy_cli_commands[k].name, c->name, n) == 0;
            if (hits != 1 && n != len)
                continue;
            if (elvish)
                pyspy_sb_printf(sb, "%s&%.*s=%s\n", indent, (int)n, c->name,
                                c->name);
            else
                pyspy_sb_printf(sb, "%s'%.*s' = '%s'\n", indent, (int)n,
                                c->name, c->name);
        }
    }
}

/* Per subcommand, its options of one kind: all of them, those taking a
 * file, or those taking another value that cannot be completed (a pid,
 * a number). */
typedef enum { OPTS_ALL, OPTS_FILE, OPTS_OTHER_VALUE } opt_filter;

static bool opt_wanted(const pyspy_opt *o, opt_filter want) {
    if (want == OPTS_ALL)
        return true;
    if (o->kind != PYSPY_OPT_VALUE)
        return false;
    value_kind v = value_of(o);
    /* elvish and powershell offer only the formats by value. */
    return want == OPTS_FILE ? v == VAL_FILE
                             : v == VAL_PID || v == VAL_NONE || v == VAL_MODE;
}

static void option_lists(pyspy_sb *sb, bool elvish, opt_filter want,
                         const char *indent) {
    const char *sep = elvish ? " " : ", ";
    for (size_t i = 0; i < pyspy_cli_ncommands; i++) {
        const pyspy_cli_command *c = &pyspy_cli_commands[i];
        pyspy_sb_printf(sb, elvish ? "%s&%s=[" : "%s'%s' = @(", indent,
                        c->name);
        bool first = true;
        for (size_t j = 0; j < c->nopts; j++) {
            const pyspy_opt *o = &c->opts[j];
            if (!opt_wanted(o, want))
                continue;
            if (o->short_name) {
                pyspy_sb_printf(sb, elvish ? "%s-%c" : "%s'-%c'",
                                first ? "" : sep, o->short_name);
                first = false;
            }
            pyspy_sb_printf(sb, elvish ? "%s--%s" : "%s'--%s'",
                            first ? "" : sep, o->long_name);
            first = false;
        }
        pyspy_sb_puts(sb, elvish ? "]\n" : ")\n");
    }
}

static void elvish_script(pyspy_sb *sb) {
    pyspy_sb_puts(sb, "# elvish completion for " PYSPY_CLI_NAME
                      "; load with: eval (" PYSPY_CLI_NAME
                      " completions elvish | slurp)\n"
                      "use str\n\n"
                      "var pyspy-subcommands = [\n");
    prefix_map(sb, true, "    ");
    pyspy_sb_puts(sb, "]\nvar pyspy-options = [\n");
    option_lists(sb, true, OPTS_ALL, "    ");
    pyspy_sb_puts(sb, "]\nvar pyspy-file-options = [\n");
    option_lists(sb, true, OPTS_FILE, "    ");
    pyspy_sb_puts(sb, "]\nvar pyspy-value-options = [\n");
    option_lists(sb, true, OPTS_OTHER_VALUE, "    ");
    pyspy_sb_puts(sb, "]\n\n"
                      "fn pyspy-complete {|@words|\n"
                      "    var n = (count $words)\n"
                      "    var cur = $words[-1]\n"
                      "    var sub = ''\n"
                      "    var i = 1\n"
                      "    while (< $i (- $n 1)) {\n"
                      "        if (not (str:has-prefix $words[$i] -)) {\n"
                      "            set sub = $words[$i]\n"
                      "            break\n"
                      "        }\n"
                      "        set i = (+ $i 1)\n"
                      "    }\n"
                      "    if (eq $sub '') {\n"
                      "        put ");
    subcommand_words(sb, true);
    pyspy_sb_puts(sb, " -h --help -V --version\n"
                      "        return\n"
                      "    }\n"
                      "    if (not (has-key $pyspy-subcommands $sub)) {\n"
                      "        return\n"
                      "    }\n"
                      "    set sub = $pyspy-subcommands[$sub]\n"
                      "    var prev = $words[-2]\n"
                      "    if (or (eq $prev -f) (eq $prev --format)) {\n"
                      "        put ");
    pyspy_sb_puts(sb, formats);
    pyspy_sb_puts(sb, "\n"
                      "    } elif (has-value $pyspy-file-options[$sub] $prev) "
                      "{\n"
                      "        edit:complete-filename $cur\n"
                      "    } elif (has-value $pyspy-value-options[$sub] $prev) "
                      "{\n"
                      "        return\n"
                      "    } elif (str:has-prefix $cur -) {\n"
                      "        all $pyspy-options[$sub]\n"
                      "    } elif (eq $sub completions) {\n"
                      "        put " PYSPY_CLI_SHELL_WORDS "\n"
                      "    } elif (eq $sub help) {\n"
                      "        put ");
    subcommand_words(sb, false);
    pyspy_sb_puts(sb, "\n"
                      "    } else {\n"
                      "        edit:complete-filename $cur\n"
                      "    }\n"
                      "}\n\n"
                      "set edit:completion:arg-completer[" PYSPY_CLI_NAME
                      "] = $pyspy-complete~\n"
                      "set edit:completion:arg-completer[" PYSPY_CLI_NAME
                      "-analyze] = $pyspy-complete~\n");
}

static void powershell_script(pyspy_sb *sb) {
    pyspy_sb_puts(
        sb, "# PowerShell completion for " PYSPY_CLI_NAME
            "; load with:\n#   " PYSPY_CLI_NAME
            " completions powershell | Out-String | Invoke-Expression\n"
            "Register-ArgumentCompleter -Native -CommandName '" PYSPY_CLI_NAME
            "', '" PYSPY_CLI_NAME "-analyze' -ScriptBlock {\n"
            "    param($wordToComplete, $commandAst, $cursorPosition)\n"
            "    $subcommands = @{\n");
    prefix_map(sb, false, "        ");
    pyspy_sb_puts(sb, "    }\n    $options = @{\n");
    option_lists(sb, false, OPTS_ALL, "        ");
    pyspy_sb_puts(sb, "    }\n    $valueOptions = @{\n");
    option_lists(sb, false, OPTS_OTHER_VALUE, "        ");
    pyspy_sb_puts(sb, "    }\n    $fileOptions = @{\n");
    option_lists(sb, false, OPTS_FILE, "        ");
    pyspy_sb_puts(
        sb,
        "    }\n"
        "    # The words before the one being completed.\n"
        "    $words = @($commandAst.CommandElements |\n"
        "        Where-Object { $_.Extent.EndOffset -le $cursorPosition } |\n"
        "        ForEach-Object { $_.ToString() })\n"
        "    if ($wordToComplete -ne '' -and $words.Count -gt 1) {\n"
        "        $words = @($words[0..($words.Count - 2)])\n"
        "    }\n"
        "    $sub = ''\n"
        "    for ($i = 1; $i -lt $words.Count; $i++) {\n"
        "        if (-not $words[$i].StartsWith('-')) {\n"
        "            $sub = $words[$i]\n"
        "            break\n"
        "        }\n"
        "    }\n"
        "    $prev = $words[$words.Count - 1]\n"
        "    $files = $false\n"
        "    $candidates = @()\n"
        "    if ($sub -eq '') {\n"
        "        $candidates = @(");
    for (size_t i = 0; i < pyspy_cli_ncommands; i++) {
        pyspy_sb_puts(sb, i ? ", " : "");
        quoted(sb, pyspy_cli_commands[i].name);
    }
    pyspy_sb_puts(sb, ", '-h', '--help', '-V', '--version')\n"
                      "    } elseif ($subcommands.ContainsKey($sub)) {\n"
                      "        $sub = $subcommands[$sub]\n"
                      "        if ($prev -eq '-f' -or $prev -eq '--format') {\n"
                      "            $candidates = @(");
    {
        char fmt[sizeof formats];
        memcpy(fmt, formats, sizeof formats);
        bool first = true;
        for (char *w = strtok(fmt, " "); w; w = strtok(NULL, " ")) {
            pyspy_sb_puts(sb, first ? "" : ", ");
            quoted(sb, w);
            first = false;
        }
    }
    pyspy_sb_puts(
        sb,
        ")\n"
        "        } elseif ($fileOptions[$sub] -contains $prev) {\n"
        "            $files = $true\n"
        "        } elseif ($valueOptions[$sub] -contains $prev) {\n"
        "            return\n"
        "        } elseif ($wordToComplete.StartsWith('-')) {\n"
        "            $candidates = $options[$sub]\n"
        "        } elseif ($sub -eq 'completions') {\n"
        "            $candidates = @('bash', 'elvish', 'fish', 'powershell', "
        "'zsh')\n"
        "        } elseif ($sub -eq 'help') {\n"
        "            $candidates = @(");
    bool first = true;
    for (size_t i = 0; i < pyspy_cli_ncommands; i++) {
        if (pyspy_cli_commands[i].command == PYSPY_CMD_HELP)
            continue;
        pyspy_sb_puts(sb, first ? "" : ", ");
        quoted(sb, pyspy_cli_commands[i].name);
        first = false;
    }
    pyspy_sb_puts(
        sb,
        ")\n"
        "        } else {\n"
        "            $files = $true\n"
        "        }\n"
        "    }\n"
        "    if ($files) {\n"
        "        Get-ChildItem -Path \"$wordToComplete*\" -ErrorAction "
        "SilentlyContinue |\n"
        "            ForEach-Object {\n"
        "                [System.Management.Automation.CompletionResult]::new("
        "$_.Name, $_.Name, 'ProviderItem', $_.Name)\n"
        "            }\n"
        "        return\n"
        "    }\n"
        "    $candidates | Where-Object { $_ -like \"$wordToComplete*\" } |\n"
        "        ForEach-Object {\n"
        "            [System.Management.Automation.CompletionResult]::new("
        "$_, $_, 'ParameterValue', $_)\n"
        "        }\n"
        "}\n");
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
    else if (strcasecmp(shell, "elvish") == 0)
        elvish_script(&sb);
    else if (strcasecmp(shell, "powershell") == 0)
        powershell_script(&sb);
    else
        return pyspy_error_set(err, PYSPY_E_USAGE,
                               "invalid value '%s' for '<shell>' [possible "
                               "values: " PYSPY_CLI_SHELL_LIST "]",
                               shell);
    char *s = pyspy_sb_take(&sb);
    if (!s)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    *out = s;
    return 0;
}
