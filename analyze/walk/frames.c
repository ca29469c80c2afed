/* One thread's frame chain, innermost first: PyFrameObject's f_back chain
 * (2.7, 3.6-3.10) or _PyInterpreterFrame's previous chain (3.11+), which
 * layout fields say. Every chain is hostile: bounded in depth, checked for
 * cycles, and a frame that cannot be read ends it with a frame marked
 * unreadable rather than an error. */
#include "capture/base/array.h"
#include "analyze/walk/line_table.h"
#include "analyze/objects/objects.h"
#include "analyze/walk/internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Header fields read in one go; no layout puts them further out. */
#define MAX_FRAME_HEADER 1024

typedef struct frame_list {
    pyspy_frame *v;
    size_t n, cap;
    bool oom;
} frame_list;

/* A first block under 1 KiB: glibc serves those from its small bins,
 * where a larger one (16 entries of this size) goes the large-bin way
 * and consolidates the fast bins, at every walk of every sample. */
#define FIRST_CAP (1000 / sizeof(*((frame_list *)0)->v))

static pyspy_frame *push(frame_list *fl) {
    if (fl->oom)
        return NULL;
    if (pyspy_array_reserve(&fl->v, &fl->cap, fl->n + 1, sizeof *fl->v,
                            FIRST_CAP) != 0) {
        fl->oom = true;
        return NULL;
    }
    pyspy_frame *f = &fl->v[fl->n++];
    memset(f, 0, sizeof *f);
    return f;
}

/* The frame that says why a chain stops early. */
static void push_cut(frame_list *fl, const char *why, uint64_t addr) {
    pyspy_frame *f = push(fl);
    if (!f)
        return;
    char where[32];
    snprintf(where, sizeof where, "0x%" PRIx64, addr);
    f->name = strdup(why);
    f->filename = strdup(where);
    f->unreadable = true;
    if (!f->name || !f->filename) {
        free(f->name);
        free(f->filename);
        fl->n--;
        fl->oom = true;
    }
}

static uint64_t u64_at(const uint8_t *b, int32_t off) {
    uint64_t v;
    memcpy(&v, b + off, sizeof v);
    return v;
}

static int32_t i32_at(const uint8_t *b, int32_t off) {
    int32_t v;
    memcpy(&v, b + off, sizeof v);
    return v;
}

static size_t header_size(const int32_t *offs, size_t n, size_t width) {
    size_t max = 0;
    for (size_t i = 0; i < n; i++)
        if (offs[i] >= 0 && (size_t)offs[i] + width > max)
            max = (size_t)offs[i] + width;
    return max;
}

/* One chain's walk: what both chain kinds share. */
typedef struct chain {
    pyspy_memsrc *src;
    const pyspy_python *py;
    const pyspy_walk_opts *opts;
    pyspy_code_cache *cache;
    const pyspy_sys_path *sp;
    frame_list fl;
    pyspy_addr_set seen;
    /* src->damaged_reads when the last frame was pushed: reads since then
     * that met damage belong to the next frame. */
    uint64_t d0;
    /* A frame header (or the thread state's frame pointer) read from
     * damage: every frame after it was found through a pointer that
     * cannot be trusted. */
    bool tainted;
    bool header_damaged; /* since the last mark: taints what follows */
} chain;

/* Marks the frame just pushed if what it was read from met damage. */
static void mark(chain *ch, bool damaged) {
    if (ch->fl.n > 0 && !ch->fl.oom) {
        pyspy_frame *f = &ch->fl.v[ch->fl.n - 1];
        f->damaged = damaged || ch->tainted || ch->src->damaged_reads != ch->d0;
    }
    ch->d0 = ch->src->damaged_reads;
    ch->tainted |= ch->header_damaged;
    ch->header_damaged = false;
}

/* Reads the next frame's header into buf; false (with the frame that
 * says why) when the chain ends here: too deep, a cycle, unreadable. */
static bool enter(chain *ch, uint64_t frame, bool too_deep, uint8_t *buf,
                  size_t size) {
    if (too_deep || ch->fl.n >= PYSPY_MAX_FRAMES) {
        push_cut(&ch->fl, "<max depth reached>", frame);
        mark(ch, false);
        return false;
    }
    bool added;
    if (pyspy_addr_set_add(&ch->seen, frame, &added) != 0) {
        ch->fl.oom = true;
        return false;
    }
    if (!added) {
        push_cut(&ch->fl, "<frame cycle>", frame);
        mark(ch, false);
        return false;
    }
    uint64_t d = ch->src->damaged_reads;
    int rc = pyspy_memsrc_read(ch->src, frame, buf, size, NULL);
    ch->header_damaged |= ch->src->damaged_reads != d;
    if (rc < 0) {
        push_cut(&ch->fl, "<unreadable frame>", frame);
        mark(ch, false);
        return false;
    }
    return true;
}

static int line_of(const chain *ch, pyspy_code_info *c, int64_t lasti) {
    switch (ch->opts->lineno) {
    case PYSPY_LINENO_NONE:
        return 0;
    case PYSPY_LINENO_FIRST:
        return c->firstlineno > 0 ? c->firstlineno : 0;
    case PYSPY_LINENO_LAST_INSTRUCTION:
        break;
    }
    return pyspy_code_line(ch->py, c, lasti);
}

/* Adds the frame of a valid code object; false when out of memory. */
static bool add(chain *ch, pyspy_code_info *c, int64_t lasti, bool is_entry,
                uint64_t localsplus) {
    pyspy_frame *f = push(&ch->fl);
    if (!f)
        return false;
    f->is_entry = is_entry;
    f->name = strdup(c->name);
    f->filename = strdup(c->filename);
    f->short_filename =
        strdup(ch->opts->full_filenames ? c->filename
                                        : pyspy_code_short_filename(c, ch->sp));
    if (!f->name || !f->filename || !f->short_filename) {
        ch->fl.oom = true;
        return false;
    }
    f->line = line_of(ch, c, lasti);
    if (ch->opts->locals > 0) {
        /* Locals that cannot be read leave the frame without them. */
        if (pyspy_py_frame_locals(ch->src, ch->py, c->addr, localsplus,
                                  (int)ch->opts->locals, &f->locals,
                                  &f->nlocals, NULL) < 0) {
            f->locals = NULL;
            f->nlocals = 0;
        } else if (!f->locals) {
            /* Asked for and there are none: an empty list, which py-spy's
             * JSON shows as [] (null is for locals not asked for). */
            f->locals = calloc(1, sizeof *f->locals);
            if (!f->locals) {
                ch->fl.oom = true;
                return false;
            }
        }
    }
    /* a short filename is only as sound as the sys.path it came from */
    mark(ch, c->damaged ||
                 (!ch->opts->full_filenames && ch->sp && ch->sp->damaged));
    return true;
}

static void walk_frame_objects(chain *ch, uint64_t frame) {
    const pyspy_py_layout *l = &ch->py->layout;
    const int32_t ptrs[] = {l->frame_back, l->frame_code};
    const int32_t ints[] = {l->frame_lasti};
    size_t size = header_size(ptrs, 2, 8);
    size_t isize = header_size(ints, 1, 4);
    if (isize > size)
        size = isize;
    if (size == 0 || size > MAX_FRAME_HEADER || l->frame_back < 0 ||
        l->frame_code < 0)
        return;
    /* f_lasti in bytes, as the line tables count. */
    int64_t unit = l->frame_lasti_unit > 0 ? l->frame_lasti_unit : 1;
    uint8_t buf[MAX_FRAME_HEADER];
    while (frame && !ch->fl.oom && enter(ch, frame, false, buf, size)) {
        uint64_t code = u64_at(buf, l->frame_code);
        pyspy_code_info *c = pyspy_code_get(ch->cache, ch->src, ch->py, code);
        if (!c) {
            ch->fl.oom = true;
            break;
        }
        if (!c->valid) {
            push_cut(&ch->fl, "<unreadable frame>", frame);
            mark(ch, c->damaged);
            break;
        }
        int64_t lasti = l->frame_lasti >= 0 ? i32_at(buf, l->frame_lasti) : -1;
        if (lasti >= 0)
            lasti *= unit;
        /* Each PyFrameObject has its own eval call. */
        if (!add(ch, c, lasti, true, frame + (uint64_t)l->frame_localsplus))
            break;
        frame = u64_at(buf, l->frame_back);
    }
}

static void walk_interpreter_frames(chain *ch, uint64_t frame) {
    const pyspy_py_layout *l = &ch->py->layout;
    const int32_t ptrs[] = {l->iframe_previous, l->iframe_code,
                            l->iframe_instr_ptr};
    const int32_t bytes[] = {l->iframe_owner,
                             l->iframe_is_entry > 0 ? l->iframe_is_entry : -1};
    size_t size = header_size(ptrs, 3, 8);
    size_t bsize = header_size(bytes, 2, 1);
    if (bsize > size)
        size = bsize;
    if (size == 0 || size > MAX_FRAME_HEADER || l->iframe_previous < 0 ||
        l->iframe_code < 0)
        return;
    /* 3.14's _PyStackRef keeps tag bits in the low bits of the pointer. */
    uint64_t mask = ~(uint64_t)l->stackref_tag_mask;
    uint8_t buf[MAX_FRAME_HEADER];
    /* Iterations, not frames: skipped shim frames count too. */
    size_t steps = 0;
    while (frame && !ch->fl.oom &&
           enter(ch, frame, ++steps > 2 * PYSPY_MAX_FRAMES, buf, size)) {
        uint64_t previous = u64_at(buf, l->iframe_previous);
        int owner = l->iframe_owner >= 0 ? (int8_t)buf[l->iframe_owner] : -1;
        if ((l->owner_cstack >= 0 && owner == l->owner_cstack) ||
            (l->owner_interpreter >= 0 && owner == l->owner_interpreter)) {
            /* The entry frame an eval-loop call keeps on the C stack (see
             * py_layout.h for which owner that is): the frame above it is
             * where that call entered. A frame already marked entered a
             * call nearer the top: this call showed no frame of its own. */
            pyspy_frame *above = ch->fl.n > 0 ? &ch->fl.v[ch->fl.n - 1] : NULL;
            if (above && !above->is_entry) {
                above->is_entry = true;
                above->entry_frame_addr = frame;
            }
            frame = previous;
            continue;
        }
        uint64_t code = u64_at(buf, l->iframe_code) & mask;
        /* Every real frame has a code object (or None, 3.13+); one with
         * none is no frame: memory a core claims to hold and does not
         * (gdb's gcore writes zeros for stack pages it fails to read). */
        if (!code) {
            push_cut(&ch->fl, "<invalid frame>", frame);
            mark(ch, false);
            break;
        }
        pyspy_code_info *c = pyspy_code_get(ch->cache, ch->src, ch->py, code);
        if (!c) {
            ch->fl.oom = true;
            break;
        }
        /* Not every frame runs a code object (3.13+ may hold None here):
         * such frames are skipped, as the interpreter's own tracebacks
         * do. */
        if (!c->valid || strcmp(c->filename, "<shim>") == 0) {
            /* A code object whose memory is missing is not "no code":
             * the frame is there, and the stack says it lost it. */
            if (c->unreadable) {
                push_cut(&ch->fl, "<unreadable code object>", code);
                mark(ch, c->damaged);
            }
            frame = previous;
            continue;
        }
        /* The instruction's offset in bytes, whole code units. */
        int64_t lasti = -1;
        if (l->iframe_instr_ptr >= 0 && l->code_code_adaptive >= 0 &&
            l->code_unit_size > 0) {
            uint64_t ip = u64_at(buf, l->iframe_instr_ptr);
            uint64_t first = code + (uint64_t)l->code_code_adaptive;
            int64_t units = ((int64_t)(ip - first)) / l->code_unit_size;
            if (l->instr_ptr_is_next)
                units -= 1;
            lasti = units * l->code_unit_size;
        }
        bool is_entry = l->iframe_is_entry > 0 && buf[l->iframe_is_entry] != 0;
        if (!add(ch, c, lasti, is_entry,
                 frame + (uint64_t)l->iframe_localsplus))
            break;
        frame = previous;
    }
}

static int read_ptr(pyspy_memsrc *src, uint64_t addr, uint64_t *out) {
    return pyspy_memsrc_read(src, addr, out, sizeof *out, NULL);
}

int pyspy_walk_frames(pyspy_memsrc *src, const pyspy_python *py,
                      const pyspy_walk_opts *opts, pyspy_code_cache *cache,
                      const pyspy_sys_path *sp, uint64_t tstate,
                      pyspy_frame **frames, size_t *n) {
    const pyspy_py_layout *l = &py->layout;
    chain ch = {.src = src,
                .py = py,
                .opts = opts,
                .cache = cache,
                .sp = sp,
                .d0 = src->damaged_reads};
    frame_list *fl = &ch.fl;
    uint64_t frame = 0;
    *frames = NULL;
    *n = 0;
    bool ok = true;
    switch (l->threads) {
    case PYSPY_THREADS_FRAME:
    case PYSPY_THREADS_CURRENT_FRAME:
        ok = l->tstate_frame >= 0 &&
             read_ptr(src, tstate + (uint64_t)l->tstate_frame, &frame) == 0;
        break;
    case PYSPY_THREADS_CFRAME: {
        uint64_t cframe = 0;
        ok = l->tstate_cframe >= 0 && l->cframe_current_frame >= 0 &&
             read_ptr(src, tstate + (uint64_t)l->tstate_cframe, &cframe) == 0;
        if (ok && cframe)
            ok = read_ptr(src, cframe + (uint64_t)l->cframe_current_frame,
                          &frame) == 0;
        break;
    }
    }
    /* a frame pointer read from damage taints the whole chain */
    ch.header_damaged = src->damaged_reads != ch.d0;
    if (!ok) {
        push_cut(fl, "<unreadable thread state>", tstate);
        mark(&ch, false);
    } else if (l->threads == PYSPY_THREADS_FRAME)
        walk_frame_objects(&ch, frame);
    else
        walk_interpreter_frames(&ch, frame);
    pyspy_addr_set_free(&ch.seen);
    if (fl->oom) {
        pyspy_frames_free(fl->v, fl->n);
        return -1;
    }
    *frames = fl->v;
    *n = fl->n;
    return 0;
}
