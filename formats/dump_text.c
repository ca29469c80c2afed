/* py-spy's `dump` text. */
#include "formats/dump_formats.h"

#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

size_t *pyspy_dump_order(const pyspy_traces *t, bool reversed) {
    size_t *order = malloc((t->ntraces ? t->ntraces : 1) * sizeof *order);
    if (!order)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < t->ntraces; i++)
        if (t->traces[i].crashed)
            order[k++] = i;
    for (size_t j = 0; j < t->ntraces; j++) {
        size_t i = reversed ? t->ntraces - 1 - j : j;
        if (!t->traces[i].crashed)
            order[k++] = i;
    }
    return order;
}

static const char *status_of(const pyspy_trace *tr) {
    if (!tr->active)
        return "idle";
    return tr->owns_gil ? "active+gil" : "active";
}

static void print_thread_line(FILE *out, const pyspy_trace *tr,
                              const pyspy_dump_header *h) {
    char id[32];
    /* py-spy names a thread by its OS id when known, else by its pthread
     * id in Rust's {:#X} form. */
    if (tr->os_thread_id)
        snprintf(id, sizeof id, "%" PRIu64, tr->os_thread_id);
    else
        snprintf(id, sizeof id, "0x%" PRIX64, tr->thread_id);
    char status[96];
    if (tr->crashed) {
        const char *sig =
            h && h->crash_signal ? sigabbrev_np(h->crash_signal) : NULL;
        if (sig)
            snprintf(status, sizeof status, "%s, crashed: SIG%s", status_of(tr),
                     sig);
        else
            snprintf(status, sizeof status, "%s, crashed", status_of(tr));
    } else {
        snprintf(status, sizeof status, "%s", status_of(tr));
    }
    /* The thread runs a garbage collection: a note like the ones below,
     * inside the parenthesis after py-spy's status word. */
    if (tr->gc_collecting) {
        size_t n = strlen(status);
        snprintf(status + n, sizeof status - n, ", gc");
    }
    /* Never shown as the whole stack when part of it was lost. */
    if (tr->incomplete) {
        size_t n = strlen(status);
        snprintf(status + n, sizeof status - n, ", incomplete");
    }
    /* Inside a container: the id the process knows the thread by, after
     * py-spy's status word, so the word after "Thread" stays the host's
     * id (for kill, gdb, --pid) and the parenthesis still opens with
     * idle / active / active+gil. */
    if (tr->ns_thread_id) {
        size_t n = strlen(status);
        snprintf(status + n, sizeof status - n, ", ns %" PRIu64,
                 tr->ns_thread_id);
    }
    /* Nor as sound when read from bytes that failed their checks. */
    if (tr->damaged) {
        size_t n = strlen(status);
        snprintf(status + n, sizeof status - n, ", damaged");
    }
    if (tr->thread_name)
        fprintf(out, "Thread %s (%s): \"%s\"\n", id, status, tr->thread_name);
    else
        fprintf(out, "Thread %s (%s)\n", id, status);
}

bool pyspy_trace_has_subinterpreter(const pyspy_trace *tr) {
    for (size_t i = 0; i < tr->nframes; i++)
        if (tr->frames[i].interpreter_id != 0 && !tr->frames[i].is_native)
            return true;
    return false;
}

/* note: the frame begins its interpreter's run. */
static void print_frame(FILE *out, const pyspy_frame *f, bool note_interp) {
    const char *file = f->short_filename ? f->short_filename : f->filename;
    if (!file)
        file = "";
    char note[64] = "";
    if (note_interp)
        snprintf(note, sizeof note, " (interpreter %" PRId64 ")",
                 f->interpreter_id);
    if (f->damaged) {
        size_t n = strlen(note);
        snprintf(note + n, sizeof note - n, " [damaged]");
    }
    if (f->line != 0)
        fprintf(out, "    %s (%s:%d)%s\n", f->name ? f->name : "?", file,
                f->line, note);
    else
        fprintf(out, "    %s (%s)%s\n", f->name ? f->name : "?", file, note);
    bool shown_args = false, shown_locals = false;
    for (size_t i = 0; f->locals && i < f->nlocals; i++) {
        const pyspy_local *l = &f->locals[i];
        if (l->is_arg && !shown_args) {
            fputs("        Arguments:\n", out);
            shown_args = true;
        } else if (!l->is_arg && !shown_locals) {
            fputs("        Locals:\n", out);
            shown_locals = true;
        }
        fprintf(out, "            %s: %s%s\n", l->name ? l->name : "?",
                l->repr ? l->repr : "?", l->damaged ? " [damaged]" : "");
    }
}

int pyspy_dump_text(FILE *out, const pyspy_traces *t,
                    const pyspy_dump_header *h) {
    fprintf(out, "Process %d: %s\n", t->pid,
            t->command_line ? t->command_line : "");
    fprintf(out, "Python v%s (%s)\n",
            t->python_version ? t->python_version : "?",
            t->executable ? t->executable : "?");
    if (h && h->parent_pid > 0)
        fprintf(out, "Parent Process %d: %s\n", h->parent_pid,
                h->parent_cmdline ? h->parent_cmdline : "");
    if (t->gc_collecting) {
        bool told = false;
        for (size_t i = 0; i < t->ntraces; i++)
            told |= t->traces[i].gc_collecting;
        fprintf(out, "Garbage collection running%s\n",
                told ? "" : " (on a thread that cannot be told)");
    }
    fputc('\n', out);
    size_t *order = pyspy_dump_order(t, true);
    if (!order)
        return -1;
    for (size_t k = 0; k < t->ntraces; k++) {
        const pyspy_trace *tr = &t->traces[order[k]];
        print_thread_line(out, tr, h);
        /* Runs of one interpreter's frames, native frames between them
         * belonging to none. */
        bool runs = pyspy_trace_has_subinterpreter(tr), in_run = false;
        int64_t run = 0;
        for (size_t i = 0; i < tr->nframes; i++) {
            const pyspy_frame *f = &tr->frames[i];
            bool first =
                runs && !f->is_native && (!in_run || f->interpreter_id != run);
            if (first) {
                run = f->interpreter_id;
                in_run = true;
            }
            print_frame(out, f, first);
        }
    }
    free(order);
    return ferror(out) ? -1 : 0;
}
