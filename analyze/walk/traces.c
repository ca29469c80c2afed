/* Freeing the stack-trace model, and the address set the walkers use to
 * detect cycles in remote linked lists. */
#include "analyze/objects/objects.h"
#include "analyze/walk/internal.h"

#include <stdlib.h>
#include <string.h>

void pyspy_frames_free(pyspy_frame *frames, size_t n) {
    for (size_t i = 0; frames && i < n; i++) {
        pyspy_frame *f = &frames[i];
        free(f->name);
        free(f->filename);
        free(f->short_filename);
        free(f->module);
        for (size_t j = 0; f->locals && j < f->nlocals; j++) {
            free(f->locals[j].name);
            free(f->locals[j].repr);
        }
        free(f->locals);
    }
    free(frames);
}

void pyspy_trace_clear(pyspy_trace *t) {
    pyspy_frames_free(t->frames, t->nframes);
    free(t->thread_name);
    memset(t, 0, sizeof *t);
}

void pyspy_traces_free(pyspy_traces *t) {
    if (!t)
        return;
    for (size_t i = 0; t->traces && i < t->ntraces; i++)
        pyspy_trace_clear(&t->traces[i]);
    free(t->traces);
    free(t->command_line);
    free(t->executable);
    free(t->python_version);
    memset(t, 0, sizeof *t);
}

int pyspy_addr_set_add(pyspy_addr_set *s, uint64_t addr, bool *added) {
    *added = true;
    if (!addr)
        return 0;
    if (!s->map.n) {
        for (size_t i = 0; i < s->nfew; i++)
            if (s->few[i] == addr) {
                *added = false;
                return 0;
            }
        if (s->nfew < PYSPY_ADDR_SET_FEW) {
            s->few[s->nfew++] = addr;
            return 0;
        }
        /* Outgrown: the inline entries move into the map. */
        if (pyspy_map_reserve(&s->map, 4 * PYSPY_ADDR_SET_FEW) != 0)
            return -1;
        for (size_t i = 0; i < s->nfew; i++) {
            uint32_t v = 0;
            bool a;
            if (pyspy_map_add(&s->map, s->few[i], &v, &a) != 0)
                return -1;
        }
    }
    uint32_t v = 0;
    return pyspy_map_add(&s->map, addr, &v, added);
}

void pyspy_addr_set_free(pyspy_addr_set *s) {
    pyspy_map_free(&s->map);
    memset(s, 0, sizeof *s);
}
