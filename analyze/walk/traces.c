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

static size_t addr_slot(uint64_t a, size_t cap) {
    return (size_t)((a * 0x9E3779B97F4A7C15ull) >> 13) & (cap - 1);
}

static int hash_add(pyspy_addr_set *s, uint64_t addr) {
    size_t i = addr_slot(addr, s->cap);
    while (s->slots[i]) {
        if (s->slots[i] == addr)
            return 0;
        i = (i + 1) & (s->cap - 1);
    }
    s->slots[i] = addr;
    s->used++;
    return 1;
}

int pyspy_addr_set_add(pyspy_addr_set *s, uint64_t addr) {
    /* 0 is never a valid remote object, so it marks an empty slot. */
    if (!addr)
        return 1;
    if (!s->slots) {
        for (size_t i = 0; i < s->used; i++)
            if (s->few[i] == addr)
                return 0;
        if (s->used < PYSPY_ADDR_SET_FEW) {
            s->few[s->used++] = addr;
            return 1;
        }
    }
    if (!s->slots || (s->used + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 4 * PYSPY_ADDR_SET_FEW;
        uint64_t *ns = calloc(ncap, sizeof *ns);
        if (!ns)
            return -1;
        uint64_t *old = s->slots ? s->slots : s->few;
        size_t nold = s->slots ? s->cap : s->used;
        pyspy_addr_set grown = {ns, ncap, 0, {0}};
        for (size_t i = 0; i < nold; i++)
            if (old[i])
                hash_add(&grown, old[i]);
        free(s->slots);
        s->slots = ns;
        s->cap = ncap;
    }
    return hash_add(s, addr);
}

void pyspy_addr_set_free(pyspy_addr_set *s) {
    free(s->slots);
    memset(s, 0, sizeof *s);
}
