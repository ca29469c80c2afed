/* The clap-like scanner both command lines are built on. */
#include "capture/base/cli_args.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pyspy_argscan_init(pyspy_argscan *s, int argc, char **argv, int first,
                        const pyspy_opt *opts, size_t nopts) {
    memset(s, 0, sizeof *s);
    s->argc = argc;
    s->argv = argv;
    s->next = first;
    s->opts = opts;
    s->nopts = nopts < PYSPY_ARGSCAN_MAX_OPTS ? nopts : PYSPY_ARGSCAN_MAX_OPTS;
}

void pyspy_opt_display(const pyspy_opt *o, char *buf, size_t len) {
    if (o->long_name && o->kind == PYSPY_OPT_VALUE)
        snprintf(buf, len, "--%s <%s>", o->long_name, o->value_name);
    else if (o->long_name)
        snprintf(buf, len, "--%s", o->long_name);
    else if (o->kind == PYSPY_OPT_VALUE)
        snprintf(buf, len, "-%c <%s>", o->short_name, o->value_name);
    else
        snprintf(buf, len, "-%c", o->short_name);
}

int pyspy_opt_invalid(pyspy_error *err, const pyspy_opt *o, const char *value,
                      const char *why) {
    char name[128];
    pyspy_opt_display(o, name, sizeof name);
    return pyspy_error_set(err, PYSPY_E_USAGE,
                           "invalid value '%s' for '%s': %s", value, name, why);
}

/* Counts an occurrence; a second one of a non-counted option is refused
 * as clap does, so "-p 1 -p 2" never silently picks one. */
static int take(pyspy_argscan *s, const pyspy_opt *o, pyspy_error *err) {
    size_t idx = (size_t)(o - s->opts);
    if (s->seen[idx] && o->kind != PYSPY_OPT_COUNT) {
        char name[128];
        pyspy_opt_display(o, name, sizeof name);
        return pyspy_error_set(err, PYSPY_E_USAGE,
                               "the argument '%s' cannot be used multiple "
                               "times",
                               name);
    }
    if (s->seen[idx] < 255)
        s->seen[idx]++;
    return 0;
}

static int missing_value(const pyspy_opt *o, pyspy_error *err) {
    char name[128];
    pyspy_opt_display(o, name, sizeof name);
    return pyspy_error_set(err, PYSPY_E_USAGE,
                           "a value is required for '%s' but none was "
                           "supplied",
                           name);
}

/* The value of a valued option is the next argument, unless that looks
 * like another option ("-" alone is a value: stdin/stdout). */
static int next_value(pyspy_argscan *s, const pyspy_opt *o, const char **value,
                      pyspy_error *err) {
    if (s->next >= s->argc)
        return missing_value(o, err);
    const char *v = s->argv[s->next];
    if (v[0] == '-' && v[1] != 0)
        return missing_value(o, err);
    s->next++;
    *value = v;
    return 0;
}

static int scan_short(pyspy_argscan *s, const pyspy_opt **opt,
                      const char **value, pyspy_error *err) {
    char c = *s->cluster++;
    const pyspy_opt *o = NULL;
    for (size_t i = 0; i < s->nopts; i++)
        if (s->opts[i].short_name && s->opts[i].short_name == c)
            o = &s->opts[i];
    if (!o) {
        s->cluster = NULL;
        pyspy_error_set(err, PYSPY_E_USAGE, "unexpected argument '-%c' found",
                        c);
        return PYSPY_ARG_ERROR;
    }
    if (take(s, o, err))
        return PYSPY_ARG_ERROR;
    *opt = o;
    if (o->kind == PYSPY_OPT_VALUE) {
        if (*s->cluster) { /* -r50, -gp123 */
            *value = *s->cluster == '=' ? s->cluster + 1 : s->cluster;
            s->cluster = NULL;
        } else {
            s->cluster = NULL;
            if (next_value(s, o, value, err))
                return PYSPY_ARG_ERROR;
        }
    }
    if (s->cluster && !*s->cluster)
        s->cluster = NULL;
    return o->id;
}

static int scan_long(pyspy_argscan *s, const char *arg, const pyspy_opt **opt,
                     const char **value, pyspy_error *err) {
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t n = eq ? (size_t)(eq - name) : strlen(name);
    const pyspy_opt *o = NULL;
    for (size_t i = 0; i < s->nopts && n; i++) {
        const char *ln = s->opts[i].long_name;
        if (ln && strlen(ln) == n && strncmp(ln, name, n) == 0)
            o = &s->opts[i];
    }
    if (!o) {
        pyspy_error_set(err, PYSPY_E_USAGE, "unexpected argument '%.*s' found",
                        (int)(n + 2), arg);
        return PYSPY_ARG_ERROR;
    }
    if (take(s, o, err))
        return PYSPY_ARG_ERROR;
    *opt = o;
    if (o->kind == PYSPY_OPT_VALUE) {
        if (eq)
            *value = eq + 1;
        else if (next_value(s, o, value, err))
            return PYSPY_ARG_ERROR;
    } else if (eq) {
        pyspy_error_set(err, PYSPY_E_USAGE,
                        "unexpected value '%s' for '--%s' found; no more "
                        "were expected",
                        eq + 1, o->long_name);
        return PYSPY_ARG_ERROR;
    }
    return o->id;
}

int pyspy_argscan_next(pyspy_argscan *s, const pyspy_opt **opt,
                       const char **value, pyspy_error *err) {
    *opt = NULL;
    *value = NULL;
    if (s->cluster)
        return scan_short(s, opt, value, err);
    if (s->next >= s->argc)
        return PYSPY_ARG_END;
    const char *arg = s->argv[s->next++];
    if (!arg)
        return PYSPY_ARG_END;
    if (strcmp(arg, "--") == 0)
        return PYSPY_ARG_DASHDASH;
    if (arg[0] != '-' || arg[1] == 0) {
        *value = arg;
        return PYSPY_ARG_POSITIONAL;
    }
    if (arg[1] == '-')
        return scan_long(s, arg, opt, value, err);
    s->cluster = arg + 1;
    return scan_short(s, opt, value, err);
}

int pyspy_parse_u64(const char *s, uint64_t *out, const char **why) {
    if (!s || !*s) {
        *why = "cannot parse integer from empty string";
        return -1;
    }
    const char *p = s[0] == '+' && s[1] ? s + 1 : s;
    uint64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') {
            *why = "invalid digit found in string";
            return -1;
        }
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            *why = "number too large to fit in target type";
            return -1;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int pyspy_parse_f64(const char *s, double *out, const char **why) {
    if (!s || !*s) {
        *why = "cannot parse float from empty string";
        return -1;
    }
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    /* strtod also takes hex floats and leading blanks; refuse them so
     * the accepted syntax stays plain decimal. */
    if (*end || s[0] == ' ' || s[0] == '\t' || strpbrk(s, "xX") || isnan(v)) {
        *why = "invalid float literal";
        return -1;
    }
    *out = v;
    return 0;
}

static void sb_grow(pyspy_sb *sb, size_t need) {
    if (sb->failed || sb->len + need + 1 <= sb->cap)
        return;
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < sb->len + need + 1)
        cap *= 2;
    char *nb = realloc(sb->buf, cap);
    if (!nb) {
        sb->failed = true;
        return;
    }
    sb->buf = nb;
    sb->cap = cap;
}

void pyspy_sb_puts(pyspy_sb *sb, const char *s) {
    size_t n = strlen(s);
    sb_grow(sb, n);
    if (sb->failed)
        return;
    memcpy(sb->buf + sb->len, s, n + 1);
    sb->len += n;
}

void pyspy_sb_printf(pyspy_sb *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        sb->failed = true;
        return;
    }
    sb_grow(sb, (size_t)n);
    if (sb->failed)
        return;
    va_start(ap, fmt);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

char *pyspy_sb_take(pyspy_sb *sb) {
    if (sb->failed) {
        free(sb->buf);
        sb->buf = NULL;
    } else if (!sb->buf) {
        sb->buf = calloc(1, 1);
    }
    char *r = sb->buf;
    memset(sb, 0, sizeof *sb);
    return r;
}

enum { HELP_WIDTH = 100 };

static void opt_label(const pyspy_opt *o, char *buf, size_t len) {
    char lng[96] = "";
    if (o->long_name && o->kind == PYSPY_OPT_VALUE)
        snprintf(lng, sizeof lng, "--%s <%s>", o->long_name, o->value_name);
    else if (o->long_name)
        snprintf(lng, sizeof lng, "--%s", o->long_name);
    if (o->short_name && o->long_name)
        snprintf(buf, len, "-%c, %s", o->short_name, lng);
    else if (o->short_name && o->kind == PYSPY_OPT_VALUE)
        snprintf(buf, len, "-%c <%s>", o->short_name, o->value_name);
    else if (o->short_name)
        snprintf(buf, len, "-%c", o->short_name);
    else
        snprintf(buf, len, "    %s", lng);
}

/* Writes text word-wrapped so that no line passes HELP_WIDTH, continuing
 * lines at column indent. */
static void wrap(pyspy_sb *sb, const char *text, size_t col, size_t indent) {
    const char *p = text;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t w = strcspn(p, " ");
        if (!w)
            break;
        if (col > indent && col + 1 + w > HELP_WIDTH) {
            pyspy_sb_printf(sb, "\n%*s", (int)indent, "");
            col = indent;
        } else if (col > indent) {
            pyspy_sb_puts(sb, " ");
            col++;
        }
        pyspy_sb_printf(sb, "%.*s", (int)w, p);
        col += w;
        p += w;
    }
}

void pyspy_sb_wrap(pyspy_sb *sb, const char *text) {
    wrap(sb, text, 0, 0);
    pyspy_sb_puts(sb, "\n");
}

void pyspy_opts_help(pyspy_sb *sb, const pyspy_opt *opts, size_t nopts) {
    size_t width = 0;
    char label[160];
    for (size_t i = 0; i < nopts; i++) {
        if (opts[i].hidden)
            continue;
        opt_label(&opts[i], label, sizeof label);
        if (strlen(label) > width)
            width = strlen(label);
    }
    pyspy_sb_puts(sb, "OPTIONS:\n");
    for (size_t i = 0; i < nopts; i++) {
        const pyspy_opt *o = &opts[i];
        if (o->hidden)
            continue;
        opt_label(o, label, sizeof label);
        pyspy_sb_printf(sb, "    %-*s    ", (int)width, label);
        size_t indent = 4 + width + 4;
        char text[512];
        if (o->default_text)
            snprintf(text, sizeof text, "%s [default: %s]", o->help,
                     o->default_text);
        else
            snprintf(text, sizeof text, "%s", o->help);
        wrap(sb, text, indent, indent);
        pyspy_sb_puts(sb, "\n");
    }
}

int pyspy_opt_parse_bytes(const pyspy_opt *o, const char *v, uint64_t *out,
                          pyspy_error *err) {
    size_t digits = strspn(v, "0123456789");
    const char *suffix = v + digits;
    unsigned shift = 0;
    switch (*suffix) {
    case 0:
        break;
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    case 't':
    case 'T':
        shift = 40;
        break;
    default:
        return pyspy_opt_invalid(err, o, v,
                                 "expected a number of bytes with an "
                                 "optional K, M, G or T suffix");
    }
    if (*suffix) {
        const char *rest = suffix + 1;
        if (*rest && strcmp(rest, "B") && strcmp(rest, "iB") &&
            strcmp(rest, "b"))
            return pyspy_opt_invalid(err, o, v,
                                     "expected a number of bytes with an "
                                     "optional K, M, G or T suffix");
    }
    if (!digits)
        return pyspy_opt_invalid(err, o, v,
                                 *v ? "invalid digit found in string"
                                    : "cannot parse integer from empty "
                                      "string");
    char num[32];
    if (digits >= sizeof num)
        return pyspy_opt_invalid(err, o, v,
                                 "number too large to fit in target type");
    memcpy(num, v, digits);
    num[digits] = 0;
    uint64_t n = 0;
    const char *why = NULL;
    if (pyspy_parse_u64(num, &n, &why))
        return pyspy_opt_invalid(err, o, v, why);
    if (n == 0)
        return pyspy_opt_invalid(err, o, v, "must be at least 1 byte");
    if (shift && n > (UINT64_MAX >> shift))
        return pyspy_opt_invalid(err, o, v,
                                 "number too large to fit in target type");
    *out = n << shift;
    return 0;
}
