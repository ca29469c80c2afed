/* top's terminal: raw keyboard input, the screen layout, and putting the
 * terminal back on every way out (normal exit, Ctrl-C, fatal signals). */
#ifndef PYSPY_ANALYZE_TOP_UI_H
#define PYSPY_ANALYZE_TOP_UI_H

#include "analyze/sample/top_stats.h"

typedef struct pyspy_top_view {
    int sort_column; /* 1..4 */
    bool show_lines; /* L: aggregate per line instead of per function */
    bool help;       /* ? shows the keys, x hides them */
    bool dirty;      /* redraw now */
    bool quit;       /* q */
    bool reset;      /* R: clear all statistics */
    const char *command;
    const char *version;
    bool subprocesses;
    double period_s; /* seconds per sample */
    /* Shown under the totals when set: the asked rate cannot be kept. */
    const char *rate_note;
} pyspy_top_view;

/* Raw mode and the alternate screen when stdin/stdout are terminals. */
void pyspy_term_enter(void);
void pyspy_term_leave(void);

/* Reads the keys pressed since the last call (never blocks). */
void pyspy_top_keys(pyspy_top_view *v);

void pyspy_top_render(const pyspy_top_view *v, const pyspy_top_stats *s);

#endif
