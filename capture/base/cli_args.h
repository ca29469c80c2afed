/* A small clap-like command-line scanner shared by both tools (it lives
 * in capture/ because pyspy-capture links nothing from analyze/).
 *
 * Accepted forms: --long, --long=value, --long value, -s, -s value,
 * -svalue, clusters of short flags (-gi, -ll, -gp 12), "--" (the rest is
 * positional) and "-" (a positional). Errors are one line naming the
 * offending argument, in clap's words, with code PYSPY_E_USAGE. */
#ifndef PYSPY_CAPTURE_CLI_ARGS_H
#define PYSPY_CAPTURE_CLI_ARGS_H

#include <pyspy.h>

typedef enum {
    PYSPY_OPT_FLAG,  /* present or not; repeating it is an error */
    PYSPY_OPT_VALUE, /* takes one value; repeating it is an error */
    PYSPY_OPT_COUNT  /* repeatable; counted (-ll) */
} pyspy_opt_kind;

typedef struct pyspy_opt {
    int id;
    char short_name;       /* 0 = none */
    const char *long_name; /* without "--"; NULL = none */
    pyspy_opt_kind kind;
    const char *value_name;   /* PYSPY_OPT_VALUE: shown as <value_name> */
    const char *help;         /* one sentence */
    const char *default_text; /* shown as [default: ...]; NULL = none */
    bool hidden;              /* parsed but left out of --help */
} pyspy_opt;

/* Most options a table may hold (repeat detection is per option). */
#define PYSPY_ARGSCAN_MAX_OPTS 64

enum {
    PYSPY_ARG_END = -1,        /* no more arguments */
    PYSPY_ARG_POSITIONAL = -2, /* *value is the argument */
    PYSPY_ARG_DASHDASH = -3,   /* "--" seen: the rest is positional */
    PYSPY_ARG_ERROR = -4       /* err is set */
};

typedef struct pyspy_argscan {
    int argc;
    char **argv;
    int next;            /* index of the next argv element */
    const char *cluster; /* unread rest of a short cluster, or NULL */
    const pyspy_opt *opts;
    size_t nopts;
    unsigned char seen[PYSPY_ARGSCAN_MAX_OPTS];
} pyspy_argscan;

void pyspy_argscan_init(pyspy_argscan *s, int argc, char **argv, int first,
                        const pyspy_opt *opts, size_t nopts);
/* Returns the matched option's id (with *opt and, for valued options,
 * *value set), or one of the PYSPY_ARG_* codes. */
int pyspy_argscan_next(pyspy_argscan *s, const pyspy_opt **opt,
                       const char **value, pyspy_error *err);

/* "--rate <rate>", "--idle", or "-x" for a short-only option. */
void pyspy_opt_display(const pyspy_opt *o, char *buf, size_t len);
/* "invalid value 'V' for '--rate <rate>': why" */
int pyspy_opt_invalid(pyspy_error *err, const pyspy_opt *o, const char *value,
                      const char *why);

/* Number parsers that name the problem the way Rust's parse() does
 * ("invalid digit found in string", ...). Return 0 or -1 with *why. */
int pyspy_parse_u64(const char *s, uint64_t *out, const char **why);
int pyspy_parse_f64(const char *s, double *out, const char **why);
/* A whole number of bytes with an optional binary suffix (K, M, G, T,
 * optionally followed by B or iB: 512, 64K, 2GiB), at least 1, as the
 * value of option o. */
int pyspy_opt_parse_bytes(const pyspy_opt *o, const char *v, uint64_t *out,
                          pyspy_error *err);

/* A growable string; on allocation failure it stays NULL-safe and
 * pyspy_sb_take returns NULL. */
typedef struct pyspy_sb {
    char *buf;
    size_t len, cap;
    bool failed;
} pyspy_sb;
void pyspy_sb_printf(pyspy_sb *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void pyspy_sb_puts(pyspy_sb *sb, const char *s);
char *pyspy_sb_take(pyspy_sb *sb);

/* Appends text word-wrapped to the help width, then a newline. */
void pyspy_sb_wrap(pyspy_sb *sb, const char *text);

/* Appends an OPTIONS section for the visible options: aligned names,
 * wrapped descriptions, [default: ...]. */
void pyspy_opts_help(pyspy_sb *sb, const pyspy_opt *opts, size_t nopts);

#endif
