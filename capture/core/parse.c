/* Turns an ELF core (kernel core, or a snapshot once decompressed) into
 * the fields of a pyspy_memsrc. libelf parses the ELF structure from a
 * compact image (header, program headers and notes copied out of the
 * byte source, so a multi-GiB core is never read whole); the note
 * payloads are decoded by capture/core/notes_read.c. */
#include "capture/base/array.h"
#include "capture/snapshot/format.h"
#include "capture/core/parse.h"
#include "capture/elf/symbols.h"

#include <elf.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/procfs.h>

#define MAX_PHNUM (1u << 20)
#define MAX_NOTES_BYTES (512ull << 20)

int pyspy_core_corrupt(const pyspy_core_ctx *c, pyspy_error *err,
                       const char *what) {
    return pyspy_error_set(err, PYSPY_E_FORMAT, "%s is corrupted (%s)", c->name,
                           what);
}

static int oom(pyspy_error *err) {
    return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
}

/* ------------------------------------------------------------- regions */

static int cmp_load(const void *a, const void *b) {
    const pyspy_core_load *x = a, *y = b;
    return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

static uint32_t perms_of(uint32_t flags) {
    return (flags & PF_R ? PYSPY_PERM_R : 0) |
           (flags & PF_W ? PYSPY_PERM_W : 0) |
           (flags & PF_X ? PYSPY_PERM_X : 0);
}

/* c->files is sorted by start (note_file). */
static const pyspy_core_file *file_at(const pyspy_core_ctx *c, uint64_t addr) {
    size_t lo = 0, hi = c->nfiles;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->files[mid].start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const pyspy_core_file *f = &c->files[lo - 1];
    return addr < f->end ? f : NULL;
}

static int add_region(pyspy_core_ctx *c, size_t *cap, uint64_t start,
                      uint64_t end, uint64_t off, bool present, uint32_t perms,
                      pyspy_error *err) {
    pyspy_memsrc *s = c->src;
    if (s->nregions == *cap) {
        /* Both arrays grow alike, each size checked on its own. */
        size_t nc = *cap, nco = *cap;
        pyspy_region *nr =
            pyspy_array_grow(s->regions, &nc, *cap + 1, sizeof *nr, 64);
        if (!nr)
            return oom(err);
        s->regions = nr;
        uint64_t *no =
            pyspy_array_grow(c->lay->file_off, &nco, nc, sizeof *no, 64);
        if (!no)
            return oom(err);
        c->lay->file_off = no;
        *cap = nc < nco ? nc : nco;
    }
    pyspy_region *r = &s->regions[s->nregions];
    memset(r, 0, sizeof *r);
    r->start = start;
    r->end = end;
    r->present = present;
    r->perms = perms;
    const pyspy_core_file *f = file_at(c, start);
    if (f) {
        r->path = strdup(f->path);
        if (!r->path)
            return oom(err);
        r->file_offset = f->pgoff * c->file_page + (start - f->start);
    }
    c->lay->file_off[s->nregions] = off;
    s->nregions++;
    return 0;
}

/* Mappings NT_FILE lists but no segment covers (gdb's gcore leaves out
 * read-only file mappings) become absent regions with their path, so
 * they can be served from this host's file like the kernel's left-out
 * pages. c->loads must be sorted; the result is unsorted. */
static int add_file_only_loads(pyspy_core_ctx *c, pyspy_error *err) {
    size_t extra = 0;
    uint64_t prev_end = 0;
    pyspy_core_load *pieces = NULL;
    size_t npieces = 0, cap = 0;
    for (size_t f = 0; f < c->nfiles; f++) {
        uint64_t cur = c->files[f].start, end = c->files[f].end;
        if (cur < prev_end)
            cur = prev_end; /* overlapping entries: hostile or odd */
        /* first segment that ends after cur */
        size_t lo = 0, hi = c->nloads;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (c->loads[mid].vaddr + c->loads[mid].memsz <= cur)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (size_t l = lo; cur < end; l++) {
            uint64_t next = l < c->nloads && c->loads[l].vaddr < end
                                ? c->loads[l].vaddr
                                : end;
            if (next > cur) {
                if (npieces == cap) {
                    size_t nc = cap;
                    pyspy_core_load *np =
                        pyspy_array_grow(pieces, &nc, cap + 1, sizeof *np, 16);
                    if (!np) {
                        free(pieces);
                        return oom(err);
                    }
                    pieces = np;
                    cap = nc;
                }
                pieces[npieces++] =
                    (pyspy_core_load){cur, next - cur, 0, 0, PF_R};
            }
            if (l >= c->nloads || c->loads[l].vaddr >= end)
                break;
            cur = c->loads[l].vaddr + c->loads[l].memsz;
        }
        if (end > prev_end)
            prev_end = end;
        extra = npieces;
    }
    if (extra) {
        pyspy_core_load *nl =
            realloc(c->loads, (c->nloads + extra) * sizeof *nl);
        if (!nl) {
            free(pieces);
            return oom(err);
        }
        memcpy(nl + c->nloads, pieces, extra * sizeof *nl);
        c->loads = nl;
        c->nloads += extra;
    }
    free(pieces);
    return 0;
}

static int build_regions(pyspy_core_ctx *c, pyspy_error *err) {
    qsort(c->loads, c->nloads, sizeof *c->loads, cmp_load);
    if (!c->pyregions && c->nfiles) {
        if (add_file_only_loads(c, err) != 0)
            return -1;
        qsort(c->loads, c->nloads, sizeof *c->loads, cmp_load);
    }
    size_t cap = 0;
    for (size_t i = 0; i < c->nloads; i++) {
        const pyspy_core_load *l = &c->loads[i];
        if (i > 0 && l->vaddr < c->loads[i - 1].vaddr + c->loads[i - 1].memsz)
            return pyspy_core_corrupt(c, err, "overlapping segments");
        uint32_t perms = perms_of(l->flags);
        /* The kernel dumps only the first page of some file mappings
         * (coredump_filter bit 4): the rest is absent, not zeros. */
        uint64_t have = l->filesz;
        if (have > 0 && add_region(c, &cap, l->vaddr, l->vaddr + have, l->off,
                                   true, perms, err) != 0)
            return -1;
        if (have < l->memsz &&
            add_region(c, &cap, l->vaddr + have, l->vaddr + l->memsz,
                       l->off + have, false, perms, err) != 0)
            return -1;
    }
    return 0;
}

/* Our own region table refines what the program headers say: shared
 * mappings, anonymous ones, build-ids and digests. */
static int apply_pyspy_regions(pyspy_core_ctx *c, pyspy_error *err) {
    pyspy_memsrc *s = c->src;
    pyspy_cursor cur = {c->pyregions, c->pyregions_len, false};
    uint32_t n = pyspy_cur_u32(&cur);
    /* each entry takes at least 62 bytes */
    if (cur.bad || n > cur.left / 62 || n < s->nregions)
        return pyspy_core_corrupt(c, err,
                                  "region table does not match the segments");
    pyspy_region_check *chk = c->lay->checks;
    size_t j = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t start = pyspy_cur_u64(&cur);
        uint64_t end = pyspy_cur_u64(&cur);
        uint64_t foff = pyspy_cur_u64(&cur);
        uint32_t perms = pyspy_cur_u32(&cur);
        bool present = pyspy_cur_u8(&cur) != 0;
        uint8_t bid_len = pyspy_cur_u8(&cur);
        uint8_t bid[20];
        pyspy_cur_bytes(&cur, bid, sizeof bid);
        uint64_t digest = pyspy_cur_u64(&cur);
        char *path = pyspy_cur_str(&cur, true);
        /* empty regions have no segment to match */
        if (!cur.bad && start == end) {
            free(path);
            continue;
        }
        pyspy_region *r = j < s->nregions ? &s->regions[j] : NULL;
        if (cur.bad || !r || start != r->start || end != r->end ||
            bid_len > 20 || (present && !r->present)) {
            free(path);
            return pyspy_core_corrupt(
                c, err, "region table does not match the segments");
        }
        r->file_offset = foff;
        r->perms = perms;
        r->present = present;
        r->build_id_len = bid_len;
        memcpy(r->build_id, bid, sizeof bid);
        free(r->path);
        r->path = path;
        chk[j].digest = digest;
        chk[j].has_digest = present;
        j++;
    }
    if (j != s->nregions)
        return pyspy_core_corrupt(c, err,
                                  "region table does not match the segments");
    return 0;
}

static int cmp_region_start(const void *key, const void *elem) {
    uint64_t a = *(const uint64_t *)key;
    const pyspy_region *r = elem;
    return a < r->start ? -1 : a > r->start;
}

/* Block digests, so a read checks only the blocks it touches. */
static int apply_pyspy_blocks(pyspy_core_ctx *c, pyspy_error *err) {
    pyspy_memsrc *s = c->src;
    pyspy_cursor cur = {c->pyblocks, c->pyblocks_len, false};
    uint32_t bs = pyspy_cur_u32(&cur);
    uint32_t n = pyspy_cur_u32(&cur);
    if (cur.bad || bs < 4096 || bs > (64u << 20) || (bs & (bs - 1)) ||
        n > s->nregions)
        return pyspy_core_corrupt(c, err, "bad block digest table");
    c->lay->block_size = bs;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t start = pyspy_cur_u64(&cur);
        uint32_t nb = pyspy_cur_u32(&cur);
        pyspy_region *r = bsearch(&start, s->regions, s->nregions,
                                  sizeof *s->regions, cmp_region_start);
        if (cur.bad || !r || !r->present ||
            nb != (r->end - r->start + bs - 1) / bs || nb > cur.left / 8)
            return pyspy_core_corrupt(c, err, "bad block digest table");
        pyspy_region_check *k = &c->lay->checks[r - s->regions];
        if (k->blocks)
            return pyspy_core_corrupt(c, err, "bad block digest table");
        k->blocks = malloc((size_t)nb * sizeof *k->blocks + 1);
        k->block_ok = calloc(nb ? nb : 1, 1);
        if (!k->blocks || !k->block_ok)
            return oom(err);
        k->nblocks = nb;
        for (uint32_t b = 0; b < nb; b++)
            k->blocks[b] = pyspy_cur_u64(&cur);
    }
    return 0;
}

static bool same_path(const char *a, const char *b) {
    return a && b ? strcmp(a, b) == 0 : a == b;
}

/* A lean snapshot's regions: each the exact union of consecutive parsed
 * regions of one mapping (same path and permissions), every parsed
 * region in one of them. */
static int apply_pyspy_maps(pyspy_core_ctx *c, pyspy_error *err) {
    pyspy_memsrc *s = c->src;
    pyspy_core_layout *lay = c->lay;
    pyspy_cursor cur = {c->pymaps, c->pymaps_len, false};
    uint32_t n = pyspy_cur_u32(&cur);
    if (cur.bad || n > cur.left / 16 || n > s->nregions)
        return pyspy_core_corrupt(c, err, "bad lean region table");
    lay->maps = calloc(n ? n : 1, sizeof *lay->maps);
    if (!lay->maps)
        return oom(err);
    size_t j = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t start = pyspy_cur_u64(&cur);
        uint64_t end = pyspy_cur_u64(&cur);
        if (cur.bad || j >= s->nregions || s->regions[j].start != start ||
            end <= start)
            return pyspy_core_corrupt(c, err, "bad lean region table");
        const pyspy_region *first = &s->regions[j];
        pyspy_region *m = &lay->maps[lay->nmaps++];
        *m = *first;
        m->path = NULL;
        m->end = end;
        m->present = false;
        for (; j < s->nregions && s->regions[j].start < end; j++) {
            const pyspy_region *r = &s->regions[j];
            if (r->end > end || r->perms != first->perms ||
                !same_path(r->path, first->path) ||
                (j > 0 && r != first && r->start != s->regions[j - 1].end))
                return pyspy_core_corrupt(c, err, "bad lean region table");
            m->present |= r->present;
        }
        if (s->regions[j - 1].end != end)
            return pyspy_core_corrupt(c, err, "bad lean region table");
        if (first->path && !(m->path = strdup(first->path)))
            return oom(err);
    }
    if (j != s->nregions)
        return pyspy_core_corrupt(c, err, "bad lean region table");
    return 0;
}

/* -------------------------------------------------------- process facts */

static uint64_t auxv_get(const pyspy_memsrc *s, uint64_t type) {
    for (size_t i = 0; i + 16 <= s->auxv_len; i += 16) {
        uint64_t k, v;
        memcpy(&k, s->auxv + i, 8);
        memcpy(&v, s->auxv + i + 8, 8);
        if (k == type)
            return v;
        if (k == AT_NULL)
            break;
    }
    return 0;
}

static void fill_proc_from_kernel(pyspy_core_ctx *c) {
    pyspy_memsrc *s = c->src;
    if (s->nthreads > 0 && s->threads[0].signal) {
        /* The kernel writes the dumping thread first. */
        s->threads[0].crashed = true;
        s->proc.crash_signal = s->threads[0].signal;
    }
    if (c->have_prpsinfo) {
        s->proc.pid = c->prpsinfo.pr_pid;
        s->proc.ppid = c->prpsinfo.pr_ppid;
        char args[sizeof c->prpsinfo.pr_psargs + 1];
        memcpy(args, c->prpsinfo.pr_psargs, sizeof c->prpsinfo.pr_psargs);
        args[sizeof c->prpsinfo.pr_psargs] = 0;
        size_t n = strlen(args);
        while (n > 0 && args[n - 1] == ' ')
            args[--n] = 0;
        s->proc.cmdline = strdup(args);
    }
    const pyspy_core_file *f = file_at(c, auxv_get(s, AT_ENTRY));
    if (f) {
        s->proc.exe = strdup(f->path);
    } else if (c->have_prpsinfo) {
        char fn[sizeof c->prpsinfo.pr_fname + 1];
        memcpy(fn, c->prpsinfo.pr_fname, sizeof c->prpsinfo.pr_fname);
        fn[sizeof c->prpsinfo.pr_fname] = 0;
        s->proc.exe = strdup(fn);
    }
}

/* ---------------------------------------------------------------- parse */

static const char *machine_name(unsigned m) {
    switch (m) {
    case EM_X86_64:
        return "x86_64";
    case EM_386:
        return "i386";
    case EM_AARCH64:
        return "AArch64";
    case EM_ARM:
        return "ARM";
    case EM_PPC64:
        return "ppc64";
    case EM_PPC:
        return "PowerPC";
    case EM_S390:
        return "s390";
    case EM_RISCV:
        return "RISC-V";
    case EM_MIPS:
        return "MIPS";
    default:
        return NULL;
    }
}

static const char *type_name(unsigned t) {
    switch (t) {
    case ET_EXEC:
        return "executable";
    case ET_DYN:
        return "shared object or executable";
    case ET_REL:
        return "object file";
    default:
        return "file";
    }
}

int pyspy_core_check_ehdr(const uint8_t *h, size_t n, const char *name,
                          pyspy_error *err) {
    if (n < EI_NIDENT || memcmp(h, ELFMAG, SELFMAG) != 0)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is not a core file or snapshot (not an ELF "
                               "core: no ELF header)",
                               name);
    int bits = h[EI_CLASS] == ELFCLASS32   ? 32
               : h[EI_CLASS] == ELFCLASS64 ? 64
                                           : 0;
    bool le = h[EI_DATA] == ELFDATA2LSB, be = h[EI_DATA] == ELFDATA2MSB;
    /* e_type and e_machine sit at the same offsets in both classes */
    if (!bits || (!le && !be) || n < 20)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is corrupted (ELF header: class %u, data "
                               "encoding %u)",
                               name, h[EI_CLASS], h[EI_DATA]);
    unsigned type = le ? (unsigned)h[16] | (unsigned)h[17] << 8
                       : (unsigned)h[16] << 8 | h[17];
    unsigned mach = le ? (unsigned)h[18] | (unsigned)h[19] << 8
                       : (unsigned)h[18] << 8 | h[19];
    const char *arch = machine_name(mach);
    char archbuf[32];
    if (!arch) {
        snprintf(archbuf, sizeof archbuf, "e_machine %u", mach);
        arch = archbuf;
    }
    if (type != ET_CORE)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is a %d-bit %s ELF %s, not a core file or "
                               "snapshot",
                               name, bits, arch, type_name(type));
    if (bits != 64 || !le || mach != EM_X86_64)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is a %d-bit %s%s core; pyspy reads x86_64 "
                               "cores",
                               name, bits, arch, le ? "" : " big-endian");
    return 0;
}

static int read_headers(pyspy_core_ctx *c, uint8_t **image_out,
                        size_t *image_len, pyspy_error *err) {
    pyspy_bytesrc *bs = c->bs;
    Elf64_Ehdr eh;
    uint8_t first[sizeof eh];
    size_t have = bs->size < sizeof first ? (size_t)bs->size : sizeof first;
    if (pyspy_bytesrc_read(bs, 0, first, have, err) != 0)
        return -1;
    if (pyspy_core_check_ehdr(first, have, c->name, err) != 0)
        return -1;
    if (have < sizeof eh)
        return pyspy_error_set(err, PYSPY_E_FORMAT, "%s is truncated", c->name);
    memcpy(&eh, first, sizeof eh);
    if (eh.e_phentsize != sizeof(Elf64_Phdr))
        return pyspy_core_corrupt(c, err, "program header size");
    uint64_t phnum = eh.e_phnum;
    Elf64_Shdr sh0;
    memset(&sh0, 0, sizeof sh0);
    bool xnum = eh.e_phnum == PN_XNUM;
    if (xnum) {
        if (eh.e_shoff > bs->size || bs->size - eh.e_shoff < sizeof sh0)
            return pyspy_error_set(err, PYSPY_E_FORMAT,
                                   "%s is truncated (section header)", c->name);
        if (pyspy_bytesrc_read(bs, eh.e_shoff, &sh0, sizeof sh0, err) != 0)
            return -1;
        phnum = sh0.sh_info;
    }
    if (phnum == 0 || phnum > MAX_PHNUM)
        return pyspy_core_corrupt(c, err, "program header count");
    uint64_t phlen = phnum * sizeof(Elf64_Phdr);
    if (eh.e_phoff > bs->size || bs->size - eh.e_phoff < phlen)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is truncated (program headers missing)",
                               c->name);
    Elf64_Phdr *ph = malloc(phlen);
    if (!ph)
        return oom(err);
    if (pyspy_bytesrc_read(bs, eh.e_phoff, ph, phlen, err) != 0) {
        free(ph);
        return -1;
    }
    uint64_t notes_total = 0;
    for (uint64_t i = 0; i < phnum; i++) {
        if (ph[i].p_type != PT_NOTE && ph[i].p_type != PT_LOAD)
            continue;
        if (ph[i].p_offset > bs->size ||
            bs->size - ph[i].p_offset < ph[i].p_filesz) {
            unsigned long long bad = ph[i].p_offset;
            free(ph);
            return pyspy_error_set(
                err, PYSPY_E_FORMAT,
                "%s is truncated (segment at offset 0x%llx past the end)",
                c->name, bad);
        }
        if (ph[i].p_type == PT_NOTE)
            notes_total += ph[i].p_filesz;
    }
    if (notes_total > MAX_NOTES_BYTES) {
        free(ph);
        return pyspy_core_corrupt(c, err, "notes too large");
    }
    /* The compact image: header, [section 0], program headers, notes. */
    size_t hdr = sizeof eh + (xnum ? sizeof sh0 : 0);
    size_t len = hdr + phlen + notes_total;
    uint8_t *img = calloc(1, len);
    if (!img) {
        free(ph);
        return oom(err);
    }
    size_t at = hdr + phlen;
    for (uint64_t i = 0; i < phnum; i++) {
        if (ph[i].p_type != PT_NOTE)
            continue;
        if (pyspy_bytesrc_read(bs, ph[i].p_offset, img + at, ph[i].p_filesz,
                               err) != 0) {
            free(ph);
            free(img);
            return -1;
        }
        ph[i].p_offset = at;
        at += ph[i].p_filesz;
    }
    eh.e_phoff = hdr;
    eh.e_shoff = xnum ? sizeof eh : 0;
    eh.e_shnum = xnum ? 1 : 0;
    eh.e_shentsize = xnum ? sizeof sh0 : 0;
    eh.e_shstrndx = SHN_UNDEF;
    memcpy(img, &eh, sizeof eh);
    if (xnum)
        memcpy(img + sizeof eh, &sh0, sizeof sh0);
    memcpy(img + hdr, ph, phlen);
    free(ph);
    *image_out = img;
    *image_len = len;
    return 0;
}

static int walk_notes(pyspy_core_ctx *c, Elf *elf, const GElf_Phdr *ph,
                      pyspy_error *err) {
    if (ph->p_filesz == 0)
        return 0;
    Elf_Data *data = elf_getdata_rawchunk(elf, (int64_t)ph->p_offset,
                                          ph->p_filesz, ELF_T_NHDR);
    if (!data)
        return pyspy_core_corrupt(c, err, "note segment");
    size_t off = 0;
    GElf_Nhdr nh;
    size_t name_off, desc_off;
    size_t next;
    /* Every note takes at least 12 bytes, so this ends. */
    while (off < data->d_size &&
           (next = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
        if (next <= off || desc_off > data->d_size ||
            data->d_size - desc_off < nh.n_descsz ||
            name_off + nh.n_namesz > data->d_size)
            return pyspy_core_corrupt(c, err, "note header");
        const uint8_t *base = data->d_buf;
        if (pyspy_core_note(c, (const char *)base + name_off, nh.n_namesz,
                            nh.n_type, base + desc_off, nh.n_descsz, err) != 0)
            return -1;
        off = next;
    }
    if (off < data->d_size && data->d_size - off >= sizeof(Elf64_Nhdr))
        return pyspy_core_corrupt(c, err, "note header");
    return 0;
}

int pyspy_core_parse(pyspy_bytesrc *bs, pyspy_memsrc *src,
                     pyspy_core_layout *lay, pyspy_error *err) {
    pyspy_core_ctx c;
    memset(&c, 0, sizeof c);
    c.name = bs->name;
    c.bs = bs;
    c.src = src;
    c.lay = lay;
    uint8_t *img = NULL;
    size_t img_len = 0;
    Elf *elf = NULL;
    int rc = -1;
    if (read_headers(&c, &img, &img_len, err) != 0)
        return -1;
    elf_version(EV_CURRENT);
    elf = elf_memory((char *)img, img_len);
    size_t phnum = 0;
    if (!elf || elf_kind(elf) != ELF_K_ELF ||
        elf_getphdrnum(elf, &phnum) != 0) {
        pyspy_core_corrupt(&c, err, elf_errmsg(-1));
        goto out;
    }
    c.loads = calloc(phnum, sizeof *c.loads);
    if (!c.loads) {
        oom(err);
        goto out;
    }
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(elf, (int)i, &ph)) {
            pyspy_core_corrupt(&c, err, "program header");
            goto out;
        }
        if (ph.p_type == PT_NOTE) {
            if (walk_notes(&c, elf, &ph, err) != 0)
                goto out;
        } else if (ph.p_type == PT_LOAD && ph.p_memsz > 0) {
            if (ph.p_vaddr + ph.p_memsz < ph.p_vaddr ||
                ph.p_filesz > ph.p_memsz) {
                pyspy_core_corrupt(&c, err, "segment sizes");
                goto out;
            }
            c.loads[c.nloads++] = (pyspy_core_load){
                ph.p_vaddr, ph.p_memsz, ph.p_offset, ph.p_filesz, ph.p_flags};
        }
    }
    if (build_regions(&c, err) != 0)
        goto out;
    if (c.pyregions) {
        lay->checks =
            calloc(src->nregions ? src->nregions : 1, sizeof *lay->checks);
        if (!lay->checks) {
            oom(err);
            goto out;
        }
        if (apply_pyspy_regions(&c, err) != 0)
            goto out;
        if (c.pyblocks && apply_pyspy_blocks(&c, err) != 0)
            goto out;
        if (c.pymaps && apply_pyspy_maps(&c, err) != 0)
            goto out;
        lay->digest_kind = c.digest_kind;
    }
    if (!lay->has_pyspy) {
        fill_proc_from_kernel(&c);
    }
    rc = 0;
out:
    if (elf)
        elf_end(elf);
    free(img);
    free(c.loads);
    free(c.files);
    return rc;
}

void pyspy_core_free_fields(pyspy_memsrc *src, pyspy_core_layout *lay) {
    for (size_t i = 0; i < src->nregions; i++)
        free(src->regions[i].path);
    free(src->regions);
    free(src->threads);
    for (size_t i = 0; i < src->nmodules; i++) {
        pyspy_module_free(&src->modules[i]);
    }
    free(src->modules);
    free(src->proc.exe);
    free(src->proc.cmdline);
    free(src->auxv);
    for (size_t i = 0; lay->checks && i < src->nregions; i++) {
        free(lay->checks[i].blocks);
        free(lay->checks[i].block_ok);
    }
    free(lay->checks);
    for (size_t i = 0; i < lay->nmaps; i++)
        free(lay->maps[i].path);
    free(lay->maps);
    free(lay->file_off);
    free(lay->host_fd);
    for (size_t i = 0; i < lay->nfds; i++)
        close(lay->fds[i]);
    free(lay->fds);
    src->regions = NULL;
    src->threads = NULL;
    src->modules = NULL;
    src->nregions = src->nthreads = src->nmodules = 0;
    src->proc.exe = src->proc.cmdline = NULL;
    src->auxv = NULL;
    memset(lay, 0, sizeof *lay);
}
