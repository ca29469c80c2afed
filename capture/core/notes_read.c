/* Decoding of core notes: the kernel's (NT_PRSTATUS, NT_FPREGSET,
 * NT_PRPSINFO, NT_FILE, NT_AUXV) and our PYSPY ones
 * (capture/snapshot/format.h), each payload read through a bounds-checked
 * cursor or a length check. */
#include "capture/snapshot/format.h"
#include "capture/core/parse.h"
#include "capture/elf/symbols.h"

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS (1u << 20)
#define MAX_MODULES 65536u
#define MAX_SYMBOLS (1u << 24)

static int oom(pyspy_error *err) {
    return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
}

/* ------------------------------------------------------- standard notes */

static int note_prstatus(pyspy_core_ctx *c, const uint8_t *d, size_t n,
                         pyspy_error *err) {
    struct elf_prstatus ps;
    if (n < sizeof ps)
        return pyspy_core_corrupt(c, err, "short NT_PRSTATUS note");
    memcpy(&ps, d, sizeof ps);
    pyspy_memsrc *s = c->src;
    if (s->nthreads >= MAX_THREADS)
        return pyspy_core_corrupt(c, err, "too many threads");
    if (s->nthreads == c->cap_threads) {
        size_t nc = c->cap_threads ? c->cap_threads * 2 : 16;
        pyspy_thread *nt = realloc(s->threads, nc * sizeof *nt);
        if (!nt)
            return oom(err);
        s->threads = nt;
        c->cap_threads = nc;
    }
    pyspy_thread *t = &s->threads[s->nthreads++];
    memset(t, 0, sizeof *t);
    t->tid = ps.pr_pid;
    t->has_regs = true;
    memcpy(t->regs, &ps.pr_reg, sizeof t->regs);
    t->signal = ps.pr_cursig;
    t->state = '?';
    /* orig_rax is the syscall number while the thread sits in one, -1
     * otherwise. */
    int64_t orig = (int64_t)t->regs[PYSPY_REG_ORIG_RAX];
    t->syscall = orig >= 0 && orig < 4096 ? (long)orig : -1;
    return 0;
}

static int note_fpregset(pyspy_core_ctx *c, const uint8_t *d, size_t n,
                         pyspy_error *err) {
    pyspy_memsrc *s = c->src;
    if (s->nthreads == 0)
        return 0; /* no thread to attach it to */
    pyspy_thread *t = &s->threads[s->nthreads - 1];
    if (n < sizeof t->fpregs)
        return pyspy_core_corrupt(c, err, "short NT_FPREGSET note");
    memcpy(t->fpregs, d, sizeof t->fpregs);
    t->has_fpregs = true;
    return 0;
}

static int cmp_file(const void *a, const void *b) {
    const pyspy_core_file *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static int note_file(pyspy_core_ctx *c, const uint8_t *d, size_t n,
                     pyspy_error *err) {
    pyspy_cursor cur = {d, n, false};
    uint64_t count = pyspy_cur_u64(&cur);
    uint64_t page = pyspy_cur_u64(&cur);
    if (cur.bad || count > cur.left / 24 || page == 0 || page > (1u << 30) ||
        (page & (page - 1)))
        return pyspy_core_corrupt(c, err, "bad NT_FILE note");
    free(c->files);
    c->files = calloc(count ? count : 1, sizeof *c->files);
    if (!c->files)
        return oom(err);
    c->nfiles = count;
    c->file_page = page;
    for (uint64_t i = 0; i < count; i++) {
        c->files[i].start = pyspy_cur_u64(&cur);
        c->files[i].end = pyspy_cur_u64(&cur);
        c->files[i].pgoff = pyspy_cur_u64(&cur);
        if (c->files[i].end < c->files[i].start ||
            c->files[i].pgoff > UINT64_MAX / page)
            return pyspy_core_corrupt(c, err, "bad NT_FILE entry");
    }
    const char *p = (const char *)cur.p;
    size_t left = cur.left;
    for (uint64_t i = 0; i < count; i++) {
        const char *nul = memchr(p, 0, left);
        if (!nul)
            return pyspy_core_corrupt(c, err,
                                      "NT_FILE names run past the note");
        c->files[i].path = p;
        left -= (size_t)(nul - p) + 1;
        p = nul + 1;
    }
    qsort(c->files, c->nfiles, sizeof *c->files, cmp_file);
    return 0;
}

static int note_auxv(pyspy_core_ctx *c, const uint8_t *d, size_t n,
                     pyspy_error *err) {
    free(c->src->auxv);
    c->src->auxv = malloc(n ? n : 1);
    if (!c->src->auxv)
        return oom(err);
    memcpy(c->src->auxv, d, n);
    c->src->auxv_len = n;
    return 0;
}

/* ---------------------------------------------------------- PYSPY notes */

static int note_py_process(pyspy_core_ctx *c, const uint8_t *d, size_t n,
                           pyspy_error *err) {
    pyspy_cursor cur = {d, n, false};
    pyspy_process_info *p = &c->src->proc;
    uint32_t ver = pyspy_cur_u32(&cur);
    if (!cur.bad && ver != PYSPY_FORMAT_VERSION)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s has snapshot format version %u; this "
                               "build reads version %u",
                               c->name, ver, PYSPY_FORMAT_VERSION);
    free(pyspy_cur_str(&cur, true)); /* tool version: informational */
    p->capture_time_ns = (int64_t)pyspy_cur_u64(&cur);
    uint32_t lock = pyspy_cur_u32(&cur);
    p->lock = lock <= PYSPY_ALREADY_LOCKED ? (pyspy_lock_mode)lock : PYSPY_LOCK;
    p->pause_ns = pyspy_cur_u64(&cur);
    p->pid = (int)pyspy_cur_u32(&cur);
    p->ppid = (int)pyspy_cur_u32(&cur);
    p->crash_signal = (int)pyspy_cur_u32(&cur);
    free(p->exe);
    free(p->cmdline);
    p->exe = pyspy_cur_str(&cur, true);
    p->cmdline = pyspy_cur_str(&cur, true);
    if (cur.bad)
        return pyspy_core_corrupt(c, err, "short PYSPY process note");
    /* Added later: older snapshots end before it. */
    uint32_t ns_pid = cur.left >= 4 ? pyspy_cur_u32(&cur) : 0;
    p->ns_pid = ns_pid <= INT32_MAX ? (int)ns_pid : 0;
    c->lay->has_pyspy = true;
    return 0;
}

static int note_py_thread(pyspy_core_ctx *c, const uint8_t *d, size_t n,
                          pyspy_error *err) {
    pyspy_cursor cur = {d, n, false};
    int tid = (int)pyspy_cur_u32(&cur);
    char state = (char)pyspy_cur_u8(&cur);
    long sc = (long)(int64_t)pyspy_cur_u64(&cur);
    bool crashed = pyspy_cur_u8(&cur) != 0;
    int sig = (int)pyspy_cur_u32(&cur);
    char *name = pyspy_cur_str(&cur, false);
    if (cur.bad) {
        free(name);
        return pyspy_core_corrupt(c, err, "short PYSPY thread note");
    }
    /* Added later: older snapshots end before it. */
    uint32_t ns_tid = cur.left >= 4 ? pyspy_cur_u32(&cur) : 0;
    for (size_t i = 0; i < c->src->nthreads; i++) {
        pyspy_thread *t = &c->src->threads[i];
        if (t->tid != tid)
            continue;
        t->state = state;
        t->syscall = sc;
        t->crashed = crashed;
        t->signal = sig;
        t->ns_tid = ns_tid <= INT32_MAX ? (int)ns_tid : 0;
        snprintf(t->name, sizeof t->name, "%s", name);
        break;
    }
    free(name);
    return 0;
}

static int note_py_module(pyspy_core_ctx *c, const uint8_t *d, size_t n,
                          pyspy_error *err) {
    pyspy_memsrc *s = c->src;
    if (s->nmodules >= MAX_MODULES)
        return pyspy_core_corrupt(c, err, "too many modules");
    if (s->nmodules == c->cap_modules) {
        size_t nc = c->cap_modules ? c->cap_modules * 2 : 16;
        pyspy_module *nm = realloc(s->modules, nc * sizeof *nm);
        if (!nm)
            return oom(err);
        s->modules = nm;
        c->cap_modules = nc;
    }
    pyspy_module *m = &s->modules[s->nmodules];
    memset(m, 0, sizeof *m);
    pyspy_cursor cur = {d, n, false};
    m->path = pyspy_cur_str(&cur, true);
    m->load_bias = pyspy_cur_u64(&cur);
    m->start = pyspy_cur_u64(&cur);
    m->end = pyspy_cur_u64(&cur);
    m->build_id_len = pyspy_cur_u8(&cur);
    pyspy_cur_bytes(&cur, m->build_id, sizeof m->build_id);
    uint32_t ns = pyspy_cur_u32(&cur);
    s->nmodules++; /* owned from here on, freed with the source */
    /* Each symbol takes at least 21 bytes: no allocation beyond what the
     * note could describe. */
    if (cur.bad || m->build_id_len > 20 || ns > MAX_SYMBOLS ||
        ns > cur.left / 21)
        return pyspy_core_corrupt(c, err, "bad PYSPY module note");
    if (ns) {
        m->symbols = calloc(ns, sizeof *m->symbols);
        if (!m->symbols)
            return oom(err);
    }
    for (uint32_t i = 0; i < ns; i++) {
        pyspy_symbol *y = &m->symbols[i];
        y->value = pyspy_cur_u64(&cur);
        y->size = pyspy_cur_u64(&cur);
        y->type = pyspy_cur_u8(&cur);
        y->name = pyspy_cur_str(&cur, false);
        if (cur.bad || !y->name)
            return pyspy_core_corrupt(c, err, "bad PYSPY module note");
        m->nsymbols = i + 1;
    }
    if (pyspy_module_index_symbols(m) != 0)
        return oom(err);
    return 0;
}

int pyspy_core_note(pyspy_core_ctx *c, const char *owner, size_t owner_len,
                    uint32_t type, const uint8_t *d, size_t n,
                    pyspy_error *err) {
    if (owner_len == 5 && memcmp(owner, "CORE", 5) == 0) {
        switch (type) {
        case NT_PRSTATUS:
            return note_prstatus(c, d, n, err);
        case NT_FPREGSET:
            return note_fpregset(c, d, n, err);
        case NT_PRPSINFO:
            if (n < sizeof c->prpsinfo)
                return pyspy_core_corrupt(c, err, "short NT_PRPSINFO note");
            memcpy(&c->prpsinfo, d, sizeof c->prpsinfo);
            c->have_prpsinfo = true;
            return 0;
        case NT_FILE:
            return note_file(c, d, n, err);
        case NT_AUXV:
            return note_auxv(c, d, n, err);
        default:
            return 0;
        }
    }
    if (owner_len == 6 && memcmp(owner, PYSPY_NOTE_OWNER, 6) == 0) {
        switch (type) {
        case PYSPY_NT_PROCESS:
            return note_py_process(c, d, n, err);
        case PYSPY_NT_THREAD:
            return note_py_thread(c, d, n, err);
        case PYSPY_NT_REGIONS:
            c->pyregions = d;
            c->pyregions_len = n;
            return 0;
        case PYSPY_NT_BLOCKS:
            if (c->digest_kind == PYSPY_DIGEST_FNV1A) {
                c->pyblocks = d;
                c->pyblocks_len = n;
            }
            return 0;
        case PYSPY_NT_DIGESTS: {
            pyspy_cursor cur = {d, n, false};
            uint32_t kind = pyspy_cur_u32(&cur);
            if (cur.bad || kind != PYSPY_DIGEST_XXH64)
                return pyspy_core_corrupt(c, err, "unknown digest kind");
            c->digest_kind = kind;
            c->pyblocks = cur.p;
            c->pyblocks_len = cur.left;
            return 0;
        }
        case PYSPY_NT_MODULE:
            return note_py_module(c, d, n, err);
        case PYSPY_NT_MAPS:
            c->pymaps = d;
            c->pymaps_len = n;
            return 0;
        default:
            return 0;
        }
    }
    return 0;
}
