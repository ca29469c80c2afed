/* pyspy_snapshot_write: an ELF core (ET_CORE) streamed through the zstd
 * seekable writer into a file that appears only when complete
 * (pyspy_out_open).
 *
 * Layout: ELF header, memory from the first page boundary on (one PT_LOAD
 * per region, in region order, absent regions with p_filesz = 0), then
 * the program headers, then the notes. Notes and program headers go last
 * because a region whose read fails mid-way is only known to be absent
 * after its bytes were streamed: its slot stays in the file as zeros that
 * no header points to. */
#include "capture/snapshot/format.h"
#include "capture/base/out_file.h"
#include "capture/snapshot/snapshot.h"
#include "capture/snapshot/zstd_seekable.h"

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE 4096u
/* One read per digest block. */
#define CHUNK PYSPY_DIGEST_BLOCK

typedef struct {
    bool on;
    uint64_t total, done;
    int last_pct;
} progress;

static void progress_tick(progress *p, uint64_t add) {
    p->done += add;
    if (!p->on || p->total == 0)
        return;
    int pct = (int)(p->done * 100 / p->total);
    if (pct == p->last_pct)
        return;
    p->last_pct = pct;
    char bar[41];
    int fill = pct * 40 / 100;
    for (int i = 0; i < 40; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[40] = 0;
    fprintf(stderr, "\rwriting snapshot [%s] %3d%% %llu/%llu MiB", bar, pct,
            (unsigned long long)(p->done >> 20),
            (unsigned long long)(p->total >> 20));
}

static void progress_end(progress *p) {
    if (p->on && p->last_pct >= 0)
        fprintf(stderr, "\r\033[K");
}

static uint32_t phdr_flags(uint32_t perms) {
    return (perms & PYSPY_PERM_R ? PF_R : 0) |
           (perms & PYSPY_PERM_W ? PF_W : 0) |
           (perms & PYSPY_PERM_X ? PF_X : 0);
}

typedef struct {
    pyspy_memsrc *src;
    pyspy_zsk_writer *zw;
    uint8_t *chunk;
    uint64_t *digests;
    uint64_t **blocks;
    bool *absent;
    uint64_t zero_digest;
    bool have_zero_digest;
    progress prog;
} wstate;

static int put(wstate *w, const void *p, size_t n, pyspy_error *err) {
    if (pyspy_zsk_writer_write(w->zw, p, n, err) != 0)
        return -1;
    return 0;
}

static int put_zeros(wstate *w, uint64_t n, pyspy_error *err) {
    memset(w->chunk, 0, CHUNK);
    while (n > 0) {
        size_t k = n < CHUNK ? (size_t)n : CHUNK;
        if (put(w, w->chunk, k, err) != 0)
            return -1;
        n -= k;
    }
    return 0;
}

/* XXH64 of a block; a whole all-zero block (untouched heap, .bss: often
 * most of a capture) costs only the zero check. */
static uint64_t block_digest(wstate *w, const uint8_t *p, size_t n) {
    if (n == CHUNK && p[0] == 0 && memcmp(p, p + 1, n - 1) == 0) {
        if (!w->have_zero_digest) {
            w->zero_digest = pyspy_xxh64(p, n, 0);
            w->have_zero_digest = true;
        }
        return w->zero_digest;
    }
    return pyspy_xxh64(p, n, 0);
}

/* Streams one region. An unreadable range is not fatal: the region
 * becomes absent (recorded as such), the rest of its slot zeros. Errors
 * writing the output or reading a damaged input are. */
static int put_region(wstate *w, size_t i, pyspy_error *err) {
    const pyspy_region *r = &w->src->regions[i];
    uint64_t addr = r->start;
    uint64_t nb = (r->end - r->start + CHUNK - 1) / CHUNK;
    w->blocks[i] = malloc((nb ? nb : 1) * sizeof **w->blocks);
    if (!w->blocks[i])
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    /* Chunks are read from the region's start, so chunk k is digest
     * block k. */
    for (uint64_t k = 0; addr < r->end; k++) {
        size_t n = r->end - addr < CHUNK ? (size_t)(r->end - addr) : CHUNK;
        pyspy_error rerr = {0};
        if (!w->absent[i] &&
            pyspy_memsrc_read(w->src, addr, w->chunk, n, &rerr) != 0) {
            /* Memory that vanished (a live target unmapping it) is
             * absent; a damaged input file is an error. */
            if (rerr.code != PYSPY_E_UNREADABLE) {
                if (err)
                    *err = rerr;
                return -1;
            }
            w->absent[i] = true;
        }
        if (w->absent[i])
            memset(w->chunk, 0, n);
        else
            w->blocks[i][k] = block_digest(w, w->chunk, n);
        if (put(w, w->chunk, n, err) != 0)
            return -1;
        progress_tick(&w->prog, n);
        addr += n;
    }
    if (!w->absent[i])
        w->digests[i] = pyspy_region_digest_from_blocks(w->blocks[i], nb);
    return 0;
}

static int write_core(wstate *w, const pyspy_snapshot_opts *opts,
                      pyspy_error *err) {
    pyspy_memsrc *src = w->src;
    size_t phnum = src->nregions + 1;
    bool xnum = phnum >= PN_XNUM;
    uint64_t data_end = PAGE;
    for (size_t i = 0; i < src->nregions; i++) {
        const pyspy_region *r = &src->regions[i];
        if (r->end < r->start)
            return pyspy_error_set(
                err, PYSPY_E_GENERIC, "region 0x%llx-0x%llx is inverted",
                (unsigned long long)r->start, (unsigned long long)r->end);
        if (r->present)
            data_end += r->end - r->start;
    }
    w->prog.total = data_end - PAGE;
    uint64_t shoff = xnum ? (data_end + 7) & ~7ull : 0;
    uint64_t phoff = xnum ? shoff + sizeof(Elf64_Shdr) : (data_end + 7) & ~7ull;
    uint64_t noteoff = phoff + phnum * sizeof(Elf64_Phdr);

    Elf64_Ehdr eh;
    memset(&eh, 0, sizeof eh);
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_ident[EI_OSABI] = ELFOSABI_NONE;
    eh.e_type = ET_CORE;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_phoff = phoff;
    eh.e_shoff = shoff;
    eh.e_ehsize = sizeof eh;
    eh.e_phentsize = sizeof(Elf64_Phdr);
    /* More than 65534 segments: the real count lives in section 0. */
    eh.e_phnum = xnum ? PN_XNUM : (Elf64_Half)phnum;
    eh.e_shentsize = xnum ? sizeof(Elf64_Shdr) : 0;
    eh.e_shnum = xnum ? 1 : 0;
    if (put(w, &eh, sizeof eh, err) != 0 ||
        put_zeros(w, PAGE - sizeof eh, err) != 0)
        return -1;

    for (size_t i = 0; i < src->nregions; i++)
        if (src->regions[i].present && put_region(w, i, err) != 0)
            return -1;
    if (put_zeros(w, (xnum ? shoff : phoff) - data_end, err) != 0)
        return -1;

    pyspy_buf notes = {0};
    pyspy_region_digests dg = {w->digests, w->blocks, w->absent};
    if (pyspy_notes_build(src, opts, &dg, &notes, err) != 0) {
        pyspy_buf_free(&notes);
        return -1;
    }
    if (xnum) {
        Elf64_Shdr sh;
        memset(&sh, 0, sizeof sh);
        sh.sh_info = (Elf64_Word)phnum;
        if (put(w, &sh, sizeof sh, err) != 0) {
            pyspy_buf_free(&notes);
            return -1;
        }
    }
    Elf64_Phdr ph;
    memset(&ph, 0, sizeof ph);
    ph.p_type = PT_NOTE;
    ph.p_offset = noteoff;
    ph.p_filesz = notes.len;
    ph.p_align = 4;
    int rc = put(w, &ph, sizeof ph, err);
    uint64_t off = PAGE;
    for (size_t i = 0; rc == 0 && i < src->nregions; i++) {
        const pyspy_region *r = &src->regions[i];
        uint64_t size = r->end - r->start;
        memset(&ph, 0, sizeof ph);
        ph.p_type = PT_LOAD;
        ph.p_offset = off;
        ph.p_vaddr = r->start;
        ph.p_filesz = r->present && !w->absent[i] ? size : 0;
        ph.p_memsz = size;
        ph.p_flags = phdr_flags(r->perms);
        ph.p_align = PAGE;
        if (r->present)
            off += size;
        rc = put(w, &ph, sizeof ph, err);
    }
    if (rc == 0)
        rc = put(w, notes.data, notes.len, err);
    pyspy_buf_free(&notes);
    if (rc != 0)
        return -1;
    return pyspy_zsk_writer_finish(w->zw, err);
}

int pyspy_snapshot_write(pyspy_memsrc *src, const pyspy_snapshot_opts *opts,
                         const char *path, pyspy_snapshot_stats *stats,
                         pyspy_error *err) {
    if (!src || !path || !*path)
        return pyspy_error_set(err, PYSPY_E_USAGE, "no snapshot path given");
    for (size_t i = 1; i < src->nregions; i++)
        if (src->regions[i].start < src->regions[i - 1].end)
            return pyspy_error_set(err, PYSPY_E_GENERIC,
                                   "regions overlap or are not sorted");
    wstate w = {0};
    w.src = src;
    w.chunk = malloc(CHUNK);
    w.digests = calloc(src->nregions + 1, sizeof *w.digests);
    w.blocks = calloc(src->nregions + 1, sizeof *w.blocks);
    w.absent = calloc(src->nregions + 1, sizeof *w.absent);
    if (!w.chunk || !w.digests || !w.blocks || !w.absent) {
        free(w.chunk);
        free(w.digests);
        free(w.blocks);
        free(w.absent);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    int rc = -1;
    /* Mode 0600: memory holds secrets. */
    pyspy_out_file file;
    if (pyspy_out_open(&file, path, 0600, err) != 0)
        goto out;
    w.prog.on = !(opts && opts->hide_progress) && isatty(2);
    w.prog.last_pct = -1;
    if (pyspy_zsk_writer_new(file.fd, path, opts ? opts->zstd_level : 0, &w.zw,
                             err) != 0)
        goto out;
    if (write_core(&w, opts, err) != 0)
        goto out;
    if (pyspy_out_commit(&file, err) != 0)
        goto out;
    if (stats) {
        stats->memory_bytes = w.prog.done;
        stats->file_bytes = pyspy_zsk_writer_bytes_out(w.zw);
    }
    rc = 0;
out:
    progress_end(&w.prog);
    pyspy_out_abort(&file);
    pyspy_zsk_writer_free(w.zw);
    free(w.chunk);
    free(w.digests);
    for (size_t i = 0; i < src->nregions; i++)
        free(w.blocks[i]);
    free(w.blocks);
    free(w.absent);
    return rc;
}
