/* `dump` output, in py-spy's shapes: text (formats/dump_text.c) and JSON
 * (formats/dump_json.c). Both show the crashed thread first when there is
 * one; otherwise text lists threads oldest first and JSON in the
 * interpreter's list order, as py-spy does. */
#ifndef PYSPY_FORMATS_DUMP_FORMATS_H
#define PYSPY_FORMATS_DUMP_FORMATS_H

#include <stdio.h>

#include <pyspy.h>

typedef struct pyspy_dump_header {
    int parent_pid; /* "Parent Process" line when > 0 */
    const char *parent_cmdline;
    int crash_signal;         /* shown on the crashed thread; 0 none */
    size_t incomplete_stacks; /* set by the dump: stacks not read whole */
    size_t lists_cut;         /* and thread lists cut short */
    size_t damaged_frames;    /* and frames, threads marked damaged */
    size_t damaged_threads;
} pyspy_dump_header;

/* "Process N: cmdline", "Python vX (exe)", [parent], blank line, then
 * every thread with its frames and locals. */
int pyspy_dump_text(FILE *out, const pyspy_traces *t,
                    const pyspy_dump_header *h);

/* One JSON array of traces in serde_json's pretty layout (two-space
 * indent) for every process a dump shows, so that --subprocesses and
 * several inputs still print one document: pyspy_dump_json appends a
 * process's traces, pyspy_dump_json_end closes the array (or prints []
 * when no process had a thread) and a newline. */
typedef struct pyspy_json_array {
    size_t n; /* traces written */
} pyspy_json_array;

int pyspy_dump_json(FILE *out, const pyspy_traces *t,
                    const pyspy_dump_header *h, pyspy_json_array *arr);
int pyspy_dump_json_end(FILE *out, const pyspy_json_array *arr);

/* Whether the thread runs a sub-interpreter (a frame's interpreter_id is
 * not 0): only then do its frames say which interpreter they are of
 * (text: a note on the first frame of each interpreter's run; JSON: an
 * interpreter_id key on every Python frame), so that the output of a program
 * without sub-interpreters keeps py-spy's shape. */
bool pyspy_trace_has_subinterpreter(const pyspy_trace *tr);

/* The order threads are shown in: indices into t->traces. malloc'd;
 * reversed = text's oldest-first order. */
size_t *pyspy_dump_order(const pyspy_traces *t, bool reversed);

#endif
