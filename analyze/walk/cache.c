#include "capture/base/clock.h"
#include "analyze/walk/cache.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Sub-interpreters are rare; a few slots cover real programs and bound
 * what a hostile target can make us hold. */
#define SLOTS 8

typedef struct slot {
    uint64_t interp;
    int64_t read_us;
    pyspy_sys_path sp;
    pyspy_thread_name *names;
    size_t nnames;
    bool name_missing; /* a walk met a thread the names lack */
} slot;

struct pyspy_walk_cache {
    int64_t refresh_us, missing_us;
    slot v[SLOTS];
    size_t n;
    size_t next_evict;
    pyspy_code_cache code;
};

pyspy_walk_cache *pyspy_walk_cache_new(int64_t refresh_us, int64_t missing_us) {
    pyspy_walk_cache *c = calloc(1, sizeof *c);
    if (c) {
        c->refresh_us = refresh_us;
        c->missing_us = missing_us;
    }
    return c;
}

void pyspy_walk_cache_name_missing(pyspy_walk_cache *c, uint64_t interp) {
    for (size_t i = 0; c && i < c->n; i++)
        if (c->v[i].interp == interp)
            c->v[i].name_missing = true;
}

static void slot_clear(slot *s) {
    pyspy_sys_path_free(&s->sp);
    pyspy_py_thread_names_free(s->names, s->nnames);
    memset(s, 0, sizeof *s);
}

void pyspy_walk_cache_free(pyspy_walk_cache *c) {
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        slot_clear(&c->v[i]);
    pyspy_code_cache_free(&c->code);
    free(c);
}

pyspy_code_cache *pyspy_walk_cache_code(pyspy_walk_cache *c) {
    return c ? &c->code : NULL;
}

void pyspy_interp_context_read(pyspy_memsrc *src, const pyspy_python *py,
                               uint64_t interp, bool want_names,
                               pyspy_sys_path *sp, pyspy_thread_name **names,
                               size_t *nnames) {
    *names = NULL;
    *nnames = 0;
    if (want_names) {
        /* Each interpreter has its own threading module. */
        pyspy_python here = *py;
        here.interp_head = interp;
        if (pyspy_py_thread_names(src, &here, names, nnames, NULL) < 0) {
            *names = NULL;
            *nnames = 0;
        }
    }
    pyspy_sys_path_read(src, py, interp, sp);
}

static void slot_fill(slot *s, pyspy_memsrc *src, const pyspy_python *py,
                      uint64_t interp, bool names, int64_t now) {
    slot_clear(s);
    s->interp = interp;
    s->read_us = now;
    pyspy_interp_context_read(src, py, interp, names, &s->sp, &s->names,
                              &s->nnames);
}

int pyspy_walk_cache_interp(pyspy_walk_cache *c, pyspy_memsrc *src,
                            const pyspy_python *py, uint64_t interp,
                            bool want_names, const pyspy_sys_path **sp,
                            const pyspy_thread_name **names, size_t *nnames) {
    if (!c)
        return -1;
    int64_t now = pyspy_clock_us();
    slot *s = NULL;
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].interp == interp)
            s = &c->v[i];
    if (!s) {
        if (c->n < SLOTS)
            s = &c->v[c->n++];
        else
            s = &c->v[c->next_evict++ % SLOTS];
        slot_fill(s, src, py, interp, want_names, now);
    } else if (now - s->read_us >= c->refresh_us || now < s->read_us ||
               (s->name_missing && now - s->read_us >= c->missing_us)) {
        slot_fill(s, src, py, interp, want_names, now);
    }
    *sp = &s->sp;
    *names = s->names;
    *nnames = s->nnames;
    return 0;
}
