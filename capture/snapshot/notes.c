/* The notes of a snapshot: the standard ones gdb, eu-stack and libdw read
 * (NT_PRSTATUS, NT_PRPSINFO, NT_AUXV, NT_FILE, NT_FPREGSET, in the kernel's
 * order) and our PYSPY notes (capture/snapshot/format.h). */
#include "capture/snapshot/format.h"
#include "capture/elf/symbols.h"
#include "capture/snapshot/snapshot.h"

#include <elf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>

#define CORE_OWNER "CORE"
#define PAGE 4096u

static bool is_file_path(const char *p) {
    return p && p[0] == '/';
}

static void add_prstatus(pyspy_buf *b, const pyspy_memsrc *src,
                         const pyspy_thread *t) {
    struct elf_prstatus ps;
    memset(&ps, 0, sizeof ps);
    ps.pr_info.si_signo = t->signal;
    ps.pr_cursig = (short)t->signal;
    ps.pr_pid = t->tid;
    ps.pr_ppid = src->proc.ppid;
    ps.pr_pgrp = src->proc.pid;
    ps.pr_sid = src->proc.pid;
    if (t->has_regs)
        memcpy(&ps.pr_reg, t->regs, sizeof ps.pr_reg);
    ps.pr_fpvalid = t->has_fpregs;
    pyspy_note_add(b, CORE_OWNER, NT_PRSTATUS, &ps, sizeof ps);
}

static void add_prpsinfo(pyspy_buf *b, const pyspy_memsrc *src) {
    struct elf_prpsinfo pi;
    memset(&pi, 0, sizeof pi);
    pi.pr_state = 0;
    pi.pr_sname = 'R';
    pi.pr_pid = src->proc.pid;
    pi.pr_ppid = src->proc.ppid;
    pi.pr_pgrp = src->proc.pid;
    pi.pr_sid = src->proc.pid;
    if (src->proc.exe) {
        const char *base = strrchr(src->proc.exe, '/');
        base = base ? base + 1 : src->proc.exe;
        strncpy(pi.pr_fname, base, sizeof pi.pr_fname - 1);
    }
    if (src->proc.cmdline)
        strncpy(pi.pr_psargs, src->proc.cmdline, sizeof pi.pr_psargs - 1);
    pyspy_note_add(b, CORE_OWNER, NT_PRPSINFO, &pi, sizeof pi);
}

/* NT_FILE: count, page size, (start, end, offset in pages) per file
 * mapping, then the NUL-terminated paths in the same order. */
static void add_nt_file(pyspy_buf *b, const pyspy_memsrc *src) {
    pyspy_buf d = {0};
    uint64_t n = 0;
    for (size_t i = 0; i < src->nregions; i++)
        n += is_file_path(src->regions[i].path);
    pyspy_buf_u64(&d, n);
    pyspy_buf_u64(&d, PAGE);
    for (size_t i = 0; i < src->nregions; i++) {
        const pyspy_region *r = &src->regions[i];
        if (!is_file_path(r->path))
            continue;
        pyspy_buf_u64(&d, r->start);
        pyspy_buf_u64(&d, r->end);
        pyspy_buf_u64(&d, r->file_offset / PAGE);
    }
    for (size_t i = 0; i < src->nregions; i++)
        if (is_file_path(src->regions[i].path))
            pyspy_buf_put(&d, src->regions[i].path,
                          strlen(src->regions[i].path) + 1);
    if (d.oom)
        b->oom = true;
    else
        pyspy_note_add(b, CORE_OWNER, NT_FILE, d.data, d.len);
    pyspy_buf_free(&d);
}

static void add_thread_regsets(pyspy_buf *b, const pyspy_thread *t) {
    if (t->has_fpregs)
        pyspy_note_add(b, CORE_OWNER, NT_FPREGSET, t->fpregs, sizeof t->fpregs);
}

static void add_pyspy_process(pyspy_buf *b, const pyspy_memsrc *src,
                              const char *tool_version) {
    pyspy_buf d = {0};
    pyspy_buf_u32(&d, PYSPY_FORMAT_VERSION);
    pyspy_buf_str(&d, tool_version ? tool_version : PYSPY_VERSION);
    pyspy_buf_u64(&d, (uint64_t)src->proc.capture_time_ns);
    pyspy_buf_u32(&d, (uint32_t)src->proc.lock);
    pyspy_buf_u64(&d, src->proc.pause_ns);
    pyspy_buf_u32(&d, (uint32_t)src->proc.pid);
    pyspy_buf_u32(&d, (uint32_t)src->proc.ppid);
    pyspy_buf_u32(&d, (uint32_t)src->proc.crash_signal);
    pyspy_buf_str(&d, src->proc.exe);
    pyspy_buf_str(&d, src->proc.cmdline);
    pyspy_buf_u32(&d, (uint32_t)src->proc.ns_pid);
    if (d.oom)
        b->oom = true;
    else
        pyspy_note_add(b, PYSPY_NOTE_OWNER, PYSPY_NT_PROCESS, d.data, d.len);
    pyspy_buf_free(&d);
}

static void add_pyspy_thread(pyspy_buf *b, const pyspy_thread *t) {
    pyspy_buf d = {0};
    char name[sizeof t->name + 1];
    memcpy(name, t->name, sizeof t->name);
    name[sizeof t->name] = 0;
    pyspy_buf_u32(&d, (uint32_t)t->tid);
    pyspy_buf_u8(&d, (uint8_t)t->state);
    pyspy_buf_u64(&d, (uint64_t)(int64_t)t->syscall);
    pyspy_buf_u8(&d, t->crashed);
    pyspy_buf_u32(&d, (uint32_t)t->signal);
    pyspy_buf_str(&d, name);
    pyspy_buf_u32(&d, (uint32_t)t->ns_tid);
    if (d.oom)
        b->oom = true;
    else
        pyspy_note_add(b, PYSPY_NOTE_OWNER, PYSPY_NT_THREAD, d.data, d.len);
    pyspy_buf_free(&d);
}

static void add_pyspy_regions(pyspy_buf *b, const pyspy_memsrc *src,
                              const uint64_t *digests, const bool *absent) {
    pyspy_buf d = {0};
    pyspy_buf_u32(&d, (uint32_t)src->nregions);
    for (size_t i = 0; i < src->nregions; i++) {
        const pyspy_region *r = &src->regions[i];
        bool present = r->present && !(absent && absent[i]);
        uint8_t bid[20] = {0};
        uint8_t bid_len = r->build_id_len <= 20 ? r->build_id_len : 20;
        memcpy(bid, r->build_id, bid_len);
        pyspy_buf_u64(&d, r->start);
        pyspy_buf_u64(&d, r->end);
        pyspy_buf_u64(&d, r->file_offset);
        pyspy_buf_u32(&d, r->perms);
        pyspy_buf_u8(&d, present);
        pyspy_buf_u8(&d, bid_len);
        pyspy_buf_put(&d, bid, sizeof bid);
        pyspy_buf_u64(&d, present && digests ? digests[i] : 0);
        pyspy_buf_str(&d, r->path);
    }
    if (d.oom)
        b->oom = true;
    else
        pyspy_note_add(b, PYSPY_NOTE_OWNER, PYSPY_NT_REGIONS, d.data, d.len);
    pyspy_buf_free(&d);
}

static void add_pyspy_module(pyspy_buf *b, pyspy_module *m) {
    pyspy_buf d = {0};
    uint8_t bid[20] = {0};
    uint8_t bid_len = m->build_id_len <= 20 ? m->build_id_len : 20;
    memcpy(bid, m->build_id, bid_len);
    pyspy_buf_str(&d, m->path);
    pyspy_buf_u64(&d, m->load_bias);
    pyspy_buf_u64(&d, m->start);
    pyspy_buf_u64(&d, m->end);
    pyspy_buf_u8(&d, bid_len);
    pyspy_buf_put(&d, bid, sizeof bid);
    pyspy_module_ensure_symbols(m);
    uint32_t n = m->symbols ? (uint32_t)m->nsymbols : 0;
    pyspy_buf_u32(&d, n);
    for (uint32_t i = 0; i < n; i++) {
        const pyspy_symbol *s = &m->symbols[i];
        pyspy_buf_u64(&d, s->value);
        pyspy_buf_u64(&d, s->size);
        pyspy_buf_u8(&d, s->type);
        pyspy_buf_str(&d, s->name);
    }
    if (d.oom || d.len > UINT32_MAX)
        b->oom = true;
    else
        pyspy_note_add(b, PYSPY_NOTE_OWNER, PYSPY_NT_MODULE, d.data, d.len);
    pyspy_buf_free(&d);
}

/* Empty regions have no segment for a reader to match: no entry. */
static bool has_blocks(const pyspy_memsrc *src, const pyspy_region_digests *dg,
                       size_t i) {
    const pyspy_region *r = &src->regions[i];
    return r->present && !dg->absent[i] && dg->blocks[i] && r->end > r->start;
}

/* A DIGESTS note: the writer digests with XXH64 (capture/snapshot/writer.c). */
static void add_pyspy_blocks(pyspy_buf *b, const pyspy_memsrc *src,
                             const pyspy_region_digests *dg) {
    pyspy_buf d = {0};
    uint32_t n = 0;
    for (size_t i = 0; i < src->nregions; i++)
        n += has_blocks(src, dg, i);
    pyspy_buf_u32(&d, PYSPY_DIGEST_XXH64);
    pyspy_buf_u32(&d, PYSPY_DIGEST_BLOCK);
    pyspy_buf_u32(&d, n);
    for (size_t i = 0; i < src->nregions; i++) {
        const pyspy_region *r = &src->regions[i];
        if (!has_blocks(src, dg, i))
            continue;
        uint64_t nb =
            (r->end - r->start + PYSPY_DIGEST_BLOCK - 1) / PYSPY_DIGEST_BLOCK;
        pyspy_buf_u64(&d, r->start);
        pyspy_buf_u32(&d, (uint32_t)nb);
        for (uint64_t k = 0; k < nb; k++)
            pyspy_buf_u64(&d, dg->blocks[i][k]);
    }
    if (d.oom || d.len > UINT32_MAX)
        b->oom = true;
    else
        pyspy_note_add(b, PYSPY_NOTE_OWNER, PYSPY_NT_DIGESTS, d.data, d.len);
    pyspy_buf_free(&d);
}

static void add_pyspy_maps(pyspy_buf *b, const pyspy_region *maps, size_t n) {
    pyspy_buf d = {0};
    uint32_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += maps[i].end > maps[i].start;
    pyspy_buf_u32(&d, count);
    for (size_t i = 0; i < n; i++) {
        if (maps[i].end <= maps[i].start)
            continue;
        pyspy_buf_u64(&d, maps[i].start);
        pyspy_buf_u64(&d, maps[i].end);
    }
    if (d.oom || d.len > UINT32_MAX)
        b->oom = true;
    else
        pyspy_note_add(b, PYSPY_NOTE_OWNER, PYSPY_NT_MAPS, d.data, d.len);
    pyspy_buf_free(&d);
}

int pyspy_notes_build(const pyspy_memsrc *src, const pyspy_snapshot_opts *opts,
                      const pyspy_region_digests *dg, pyspy_buf *out,
                      pyspy_error *err) {
    const char *tool_version = opts ? opts->tool_version : NULL;
    /* The kernel writes the thread that dumped first; gdb makes the first
     * NT_PRSTATUS the current thread, so the crashed one goes first. */
    size_t first = 0;
    for (size_t i = 0; i < src->nthreads; i++)
        if (src->threads[i].crashed) {
            first = i;
            break;
        }
    if (src->nthreads > 0) {
        add_prstatus(out, src, &src->threads[first]);
    }
    add_prpsinfo(out, src);
    if (src->auxv && src->auxv_len > 0)
        pyspy_note_add(out, CORE_OWNER, NT_AUXV, src->auxv, src->auxv_len);
    add_nt_file(out, src);
    if (src->nthreads > 0)
        add_thread_regsets(out, &src->threads[first]);
    for (size_t i = 0; i < src->nthreads; i++) {
        if (i == first)
            continue;
        add_prstatus(out, src, &src->threads[i]);
        add_thread_regsets(out, &src->threads[i]);
    }
    add_pyspy_process(out, src, tool_version);
    for (size_t i = 0; i < src->nthreads; i++)
        add_pyspy_thread(out, &src->threads[i]);
    add_pyspy_regions(out, src, dg->digest, dg->absent);
    add_pyspy_blocks(out, src, dg);
    if (opts && opts->maps)
        add_pyspy_maps(out, opts->maps, opts->nmaps);
    for (size_t i = 0; i < src->nmodules; i++)
        add_pyspy_module(out, &src->modules[i]);
    if (out->oom)
        return pyspy_error_set(err, PYSPY_E_GENERIC,
                               "out of memory building snapshot notes");
    return 0;
}
