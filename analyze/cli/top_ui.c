/* top's screen: raw termios for single key presses, ANSI escapes to
 * redraw in place, and restoration of the terminal on every exit path. */
#include "analyze/cli/top_ui.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved_termios;
static volatile sig_atomic_t termios_saved, screen_active;

#define ENTER_SCREEN "\033[?1049h\033[?25l\033[H\033[2J"
#define LEAVE_SCREEN "\033[?25h\033[?1049l"

/* Async-signal-safe: write(2) and tcsetattr(3) only. */
static void restore_terminal(void) {
    if (screen_active) {
        ssize_t w = write(1, LEAVE_SCREEN, sizeof LEAVE_SCREEN - 1);
        (void)w;
        screen_active = 0;
    }
    if (termios_saved) {
        tcsetattr(0, TCSAFLUSH, &saved_termios);
        termios_saved = 0;
    }
}

static void on_fatal(int sig) {
    restore_terminal();
    signal(sig, SIG_DFL);
    raise(sig);
}

void pyspy_term_enter(void) {
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL,
                                SIGABRT, SIGHUP, SIGQUIT};
    if (isatty(0) && tcgetattr(0, &saved_termios) == 0) {
        struct termios raw = saved_termios;
        /* Keys arrive one by one without echo; ISIG stays so Ctrl-C is
         * still SIGINT (the sampler's stop flag). */
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        if (tcsetattr(0, TCSAFLUSH, &raw) == 0)
            termios_saved = 1;
    }
    if (isatty(1)) {
        fputs(ENTER_SCREEN, stdout);
        fflush(stdout);
        screen_active = 1;
    }
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        signal(fatal[i], on_fatal);
    atexit(restore_terminal);
}

void pyspy_term_leave(void) {
    fflush(stdout);
    restore_terminal();
}

void pyspy_top_keys(pyspy_top_view *v) {
    if (!termios_saved)
        return;
    char buf[32];
    ssize_t n = read(0, buf, sizeof buf);
    for (ssize_t i = 0; i < n; i++) {
        v->dirty = true;
        switch (buf[i]) {
        case '1':
        case '2':
        case '3':
        case '4':
            v->sort_column = buf[i] - '0';
            break;
        case 'L':
        case 'l':
            v->show_lines = !v->show_lines;
            break;
        case 'R':
        case 'r':
            v->reset = true;
            break;
        case '?':
            v->help = true;
            break;
        case 'X':
        case 'x':
            v->help = false;
            break;
        case 'Q':
        case 'q':
            v->quit = true;
            break;
        default:
            break;
        }
    }
}

static void term_size(int *rows, int *cols) {
    struct winsize ws;
    *rows = 24;
    *cols = 80;
    if (ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
        *rows = ws.ws_row;
        *cols = ws.ws_col;
    }
}

/* py-spy's time style: fewer decimals for larger values. */
static void fmt_time(double v, char *buf, size_t len) {
    if (v > 1000.0)
        snprintf(buf, len, "%.0f", v);
    else if (v >= 100.0)
        snprintf(buf, len, "%.1f", v);
    else if (v >= 1.0)
        snprintf(buf, len, "%.2f", v);
    else
        snprintf(buf, len, "%.3f", v);
}

/* Prints one screen line, cut to the width, clearing what was there. */
static void line(int cols, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void line(int cols, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* Cut by visible columns, skipping escape sequences and counting a
     * UTF-8 sequence as one column. */
    int col = 0;
    size_t i = 0;
    while (buf[i]) {
        if (buf[i] == '\033') {
            while (buf[i] && buf[i] != 'm')
                i++;
            if (buf[i])
                i++;
            continue;
        }
        if (col >= cols) {
            buf[i] = 0;
            break;
        }
        if (((unsigned char)buf[i] & 0xC0) != 0x80)
            col++;
        i++;
    }
    fputs(buf, stdout);
    fputs("\033[0m\033[K\r\n", stdout);
}

static const char *const help_lines[] = {
    "  1      Sort by %Own (% of time currently spent in the function)",
    "  2      Sort by %Total (% of time currently in the function and its "
    "children)",
    "  3      Sort by OwnTime (overall time spent in the function)",
    "  4      Sort by TotalTime (overall time spent in the function and its "
    "children)",
    "  L,l    Toggle between aggregating by line number or by function",
    "  R,r    Reset statistics",
    "  X,x    Exit this help screen",
    "  Q,q    Quit (also Control-C)",
};

void pyspy_top_render(const pyspy_top_view *v, const pyspy_top_stats *s) {
    int rows, cols;
    term_size(&rows, &cols);
    fputs("\033[H", stdout);
    int used = 0;
    if (v->subprocesses)
        line(cols,
             "Collecting samples from '\033[32m%s\033[0m' and "
             "subprocesses",
             v->command);
    else
        line(cols, "Collecting samples from '\033[32m%s\033[0m' (python v%s)",
             v->command, v->version ? v->version : "?");
    used++;
    double cur = s->current_samples ? (double)s->current_samples : 1;
    double err_rate =
        s->overall_samples ? (double)s->errors / (double)s->overall_samples : 0;
    if (err_rate >= 0.01 && s->overall_samples > 100)
        line(cols,
             "Total Samples \033[1m%llu\033[0m, Error Rate "
             "\033[1;31m%.2f%%\033[0m (%s)",
             (unsigned long long)s->overall_samples, err_rate * 100,
             s->last_error);
    else
        line(cols, "Total Samples \033[1m%llu\033[0m",
             (unsigned long long)s->overall_samples);
    used++;
    if (v->rate_note) {
        line(cols, "\033[31m%s\033[0m", v->rate_note);
        used++;
    }
    char procs[48] = "";
    if (v->subprocesses)
        snprintf(procs, sizeof procs, ", Processes \033[1m%llu\033[0m",
                 (unsigned long long)s->processes);
    line(cols,
         "GIL: \033[1m%.2f%%\033[0m, Active: \033[1m%.2f%%\033[0m, "
         "Threads: \033[1m%llu\033[0m%s",
         100.0 * (double)s->gil / cur, 100.0 * (double)s->active / cur,
         (unsigned long long)s->threads, procs);
    line(cols, "%s", "");
    used += 2;
    const char *hdr[4] = {"  %Own ", " %Total", "  OwnTime", "  TotalTime"};
    char head[256];
    size_t o = 0;
    for (int c = 0; c < 4; c++)
        o += (size_t)snprintf(head + o, sizeof head - o, "\033[7%sm%s\033[0m",
                              v->sort_column == c + 1 ? ";1" : "", hdr[c]);
    snprintf(head + o, sizeof head - o, "\033[7m  Function (filename%s)%*s",
             v->show_lines ? ":line" : "", cols, "");
    line(cols, "%s", head);
    used++;
    int footer =
        v->help ? (int)(sizeof help_lines / sizeof *help_lines) + 3 : 2;
    int room = rows - used - footer;
    const pyspy_top_table *t = v->show_lines ? &s->lines : &s->funcs;
    uint32_t *order = malloc((t->n ? t->n : 1) * sizeof *order);
    int written = 0;
    if (order) {
        pyspy_top_sort(t, v->sort_column, order);
        for (size_t i = 0; i < t->n && written < room; i++, written++) {
            const pyspy_top_entry *e = &t->e[order[i]];
            char own[32], total[32];
            fmt_time((double)e->all_own * v->period_s, own, sizeof own);
            fmt_time((double)e->all_total * v->period_s, total, sizeof total);
            line(cols, "%6.2f%% %6.2f%% %7ss %8ss   %s",
                 100.0 * (double)e->cur_own / cur,
                 100.0 * (double)e->cur_total / cur, own, total, e->label);
        }
        free(order);
    }
    for (; written < room; written++)
        line(cols, "%s", "");
    line(cols, "%s", "");
    if (v->help) {
        line(cols, "\033[7m Keyboard Shortcuts %*s", cols, "");
        line(cols, "%s", "");
        for (size_t i = 0; i < sizeof help_lines / sizeof *help_lines; i++)
            line(cols, "%s", help_lines[i]);
    } else {
        fputs("Press \033[1;7mControl-C\033[0m to quit, or \033[1;7m?\033[0m "
              "for help.\033[K",
              stdout);
    }
    fputs("\033[J", stdout);
    fflush(stdout);
}
