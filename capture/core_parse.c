/* Turns an ELF core (kernel core, or a snapshot once decompressed) into
 * the fields of a pyspy_memsrc. libelf parses the ELF structure from a
 * compact image (header, program headers and notes copied out of the
 * byte source, so a multi-GiB core is never read whole); the note
 * payloads are decoded with bounds-checked cursors. */
#include "capture/core_format.h"
#include "capture/core_reader.h"

#include <elf.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>

#define MAX_PHNUM (1u << 20)
#define MAX_NOTES_BYTES (512ull << 20)
#define MAX_THREADS (1u << 20)
#define MAX_MODULES 65536u /* PYSPY module notes */
#define MAX_SYMBOLS (1u << 24)

typedef struct {
    uint64_t vaddr, memsz, off, filesz;
    uint32_t flags;
} load;

typedef struct {
    uint64_t start, end, pgoff;
    const char *path; /* points into the note image */
} file_ent;

typedef struct {
    const char *name;
    pyspy_bytesrc *bs;
    pyspy_memsrc *src;
    pyspy_core_layout *lay;
    load *loads;
    size_t nloads;
    file_ent *files;
    size_t nfiles;
    uint64_t file_page;
    bool have_prpsinfo;
    struct elf_prpsinfo prpsinfo;
    size_t cap_threads;
    /* PYSPY REGIONS note, kept until regions are built */
    const uint8_t *pyregions;
    size_t pyregions_len;
    size_t cap_modules;
} pctx;

static int corrupt(pctx *c, pyspy_error *err, const char *what) {
    return pyspy_error_set(err, PYSPY_E_FORMAT, "%s is corrupted (%s)", c->name,
                           what);
}

static int oom(pyspy_error *err) {
    return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
}

/* ------------------------------------------------------- standard notes */

static int note_prstatus(pctx *c, const uint8_t *d, size_t n,
                         pyspy_error *err) {
    struct elf_prstatus ps;
    if (n < sizeof ps)
        return corrupt(c, err, "short NT_PRSTATUS note");
    memcpy(&ps, d, sizeof ps);
    pyspy_memsrc *s = c->src;
    if (s->nthreads >= MAX_THREADS)
        return corrupt(c, err, "too many threads");
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

static int note_fpregset(pctx *c, const uint8_t *d, size_t n,
                         pyspy_error *err) {
    pyspy_memsrc *s = c->src;
    if (s->nthreads == 0)
        return 0; /* no thread to attach it to */
    pyspy_thread *t = &s->threads[s->nthreads - 1];
    if (n < sizeof t->fpregs)
        return corrupt(c, err, "short NT_FPREGSET note");
    memcpy(t->fpregs, d, sizeof t->fpregs);
    t->has_fpregs = true;
    return 0;
}

static int cmp_file(const void *a, const void *b) {
    const file_ent *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static int note_file(pctx *c, const uint8_t *d, size_t n, pyspy_error *err) {
    pyspy_cursor cur = {d, n, false};
    uint64_t count = pyspy_cur_u64(&cur);
    uint64_t page = pyspy_cur_u64(&cur);
    if (cur.bad || count > cur.left / 24 || page == 0 || page > (1u << 30) ||
        (page & (page - 1)))
        return corrupt(c, err, "bad NT_FILE note");
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
            return corrupt(c, err, "bad NT_FILE entry");
    }
    const char *p = (const char *)cur.p;
    size_t left = cur.left;
    for (uint64_t i = 0; i < count; i++) {
        const char *nul = memchr(p, 0, left);
        if (!nul)
            return corrupt(c, err, "NT_FILE names run past the note");
        c->files[i].path = p;
        left -= (size_t)(nul - p) + 1;
        p = nul + 1;
    }
    qsort(c->files, c->nfiles, sizeof *c->files, cmp_file);
    return 0;
}

static int note_auxv(pctx *c, const uint8_t *d, size_t n, pyspy_error *err) {
    free(c->src->auxv);
    c->src->auxv = malloc(n ? n : 1);
    if (!c->src->auxv)
        return oom(err);
    memcpy(c->src->auxv, d, n);
    c->src->auxv_len = n;
    return 0;
}

/* ---------------------------------------------------------- PYSPY notes */

static int note_py_process(pctx *c, const uint8_t *d, size_t n,
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
        return corrupt(c, err, "short PYSPY process note");
    c->lay->has_pyspy = true;
    return 0;
}

static int note_py_thread(pctx *c, const uint8_t *d, size_t n,
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
        return corrupt(c, err, "short PYSPY thread note");
    }
    for (size_t i = 0; i < c->src->nthreads; i++) {
        pyspy_thread *t = &c->src->threads[i];
        if (t->tid != tid)
            continue;
        t->state = state;
        t->syscall = sc;
        t->crashed = crashed;
        t->signal = sig;
        snprintf(t->name, sizeof t->name, "%s", name);
        break;
    }
    free(name);
    return 0;
}

static int cmp_sym(const void *a, const void *b) {
    return strcmp(((const pyspy_symbol *)a)->name,
                  ((const pyspy_symbol *)b)->name);
}

static int note_py_module(pctx *c, const uint8_t *d, size_t n,
                          pyspy_error *err) {
    pyspy_memsrc *s = c->src;
    if (s->nmodules >= MAX_MODULES)
        return corrupt(c, err, "too many modules");
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
        return corrupt(c, err, "bad PYSPY module note");
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
            return corrupt(c, err, "bad PYSPY module note");
        m->nsymbols = i + 1;
    }
    if (m->nsymbols > 1)
        qsort(m->symbols, m->nsymbols, sizeof *m->symbols, cmp_sym);
    return 0;
}

/* ------------------------------------------------------------- dispatch */

static int dispatch_note(pctx *c, const char *owner, size_t owner_len,
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
                return corrupt(c, err, "short NT_PRPSINFO note");
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
        case PYSPY_NT_MODULE:
            return note_py_module(c, d, n, err);
        default:
            return 0;
        }
    }
    return 0;
}

/* ------------------------------------------------------------- regions */

static int cmp_load(const void *a, const void *b) {
    const load *x = a, *y = b;
    return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

static uint32_t perms_of(uint32_t flags) {
    return (flags & PF_R ? PYSPY_PERM_R : 0) |
           (flags & PF_W ? PYSPY_PERM_W : 0) |
           (flags & PF_X ? PYSPY_PERM_X : 0);
}

/* c->files is sorted by start (note_file). */
static const file_ent *file_at(const pctx *c, uint64_t addr) {
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
    const file_ent *f = &c->files[lo - 1];
    return addr < f->end ? f : NULL;
}

static int add_region(pctx *c, size_t *cap, uint64_t start, uint64_t end,
                      uint64_t off, bool present, uint32_t perms,
                      pyspy_error *err) {
    pyspy_memsrc *s = c->src;
    if (s->nregions == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        pyspy_region *nr = realloc(s->regions, nc * sizeof *nr);
        uint64_t *no = realloc(c->lay->file_off, nc * sizeof *no);
        if (no)
            c->lay->file_off = no;
        if (nr)
            s->regions = nr;
        if (!nr || !no)
            return oom(err);
        *cap = nc;
    }
    pyspy_region *r = &s->regions[s->nregions];
    memset(r, 0, sizeof *r);
    r->start = start;
    r->end = end;
    r->present = present;
    r->perms = perms;
    const file_ent *f = file_at(c, start);
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

static int build_regions(pctx *c, pyspy_error *err) {
    qsort(c->loads, c->nloads, sizeof *c->loads, cmp_load);
    size_t cap = 0;
    for (size_t i = 0; i < c->nloads; i++) {
        const load *l = &c->loads[i];
        if (i > 0 && l->vaddr < c->loads[i - 1].vaddr + c->loads[i - 1].memsz)
            return corrupt(c, err, "overlapping segments");
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
static int apply_pyspy_regions(pctx *c, pyspy_error *err) {
    pyspy_memsrc *s = c->src;
    pyspy_cursor cur = {c->pyregions, c->pyregions_len, false};
    uint32_t n = pyspy_cur_u32(&cur);
    /* each entry takes at least 62 bytes */
    if (cur.bad || n > cur.left / 62 || n < s->nregions)
        return corrupt(c, err, "region table does not match the segments");
    c->lay->digest =
        calloc(s->nregions ? s->nregions : 1, sizeof *c->lay->digest);
    if (!c->lay->digest)
        return oom(err);
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
            return corrupt(c, err, "region table does not match the segments");
        }
        r->file_offset = foff;
        r->perms = perms;
        r->present = present;
        r->build_id_len = bid_len;
        memcpy(r->build_id, bid, sizeof bid);
        free(r->path);
        r->path = path;
        c->lay->digest[j++] = digest;
    }
    if (j != s->nregions)
        return corrupt(c, err, "region table does not match the segments");
    c->lay->has_digests = true;
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

static void fill_proc_from_kernel(pctx *c) {
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
    const file_ent *f = file_at(c, auxv_get(s, AT_ENTRY));
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

static int read_headers(pctx *c, uint8_t **image_out, size_t *image_len,
                        pyspy_error *err) {
    pyspy_bytesrc *bs = c->bs;
    Elf64_Ehdr eh;
    if (bs->size < sizeof eh)
        return pyspy_error_set(err, PYSPY_E_FORMAT, "%s is truncated", c->name);
    if (pyspy_bytesrc_read(bs, 0, &eh, sizeof eh, err) != 0)
        return -1;
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_type != ET_CORE)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is not a core file or snapshot", c->name);
    if (eh.e_machine != EM_X86_64)
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s is a core file of another architecture "
                               "(e_machine %u); only x86_64 is supported",
                               c->name, eh.e_machine);
    if (eh.e_phentsize != sizeof(Elf64_Phdr))
        return corrupt(c, err, "program header size");
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
        return corrupt(c, err, "program header count");
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
        return corrupt(c, err, "notes too large");
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

static int walk_notes(pctx *c, Elf *elf, const GElf_Phdr *ph,
                      pyspy_error *err) {
    if (ph->p_filesz == 0)
        return 0;
    Elf_Data *data = elf_getdata_rawchunk(elf, (int64_t)ph->p_offset,
                                          ph->p_filesz, ELF_T_NHDR);
    if (!data)
        return corrupt(c, err, "note segment");
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
            return corrupt(c, err, "note header");
        const uint8_t *base = data->d_buf;
        if (dispatch_note(c, (const char *)base + name_off, nh.n_namesz,
                          nh.n_type, base + desc_off, nh.n_descsz, err) != 0)
            return -1;
        off = next;
    }
    if (off < data->d_size && data->d_size - off >= sizeof(Elf64_Nhdr))
        return corrupt(c, err, "note header");
    return 0;
}

int pyspy_core_parse(pyspy_bytesrc *bs, pyspy_memsrc *src,
                     pyspy_core_layout *lay, pyspy_error *err) {
    pctx c;
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
        corrupt(&c, err, elf_errmsg(-1));
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
            corrupt(&c, err, "program header");
            goto out;
        }
        if (ph.p_type == PT_NOTE) {
            if (walk_notes(&c, elf, &ph, err) != 0)
                goto out;
        } else if (ph.p_type == PT_LOAD && ph.p_memsz > 0) {
            if (ph.p_vaddr + ph.p_memsz < ph.p_vaddr ||
                ph.p_filesz > ph.p_memsz) {
                corrupt(&c, err, "segment sizes");
                goto out;
            }
            c.loads[c.nloads++] = (load){ph.p_vaddr, ph.p_memsz, ph.p_offset,
                                         ph.p_filesz, ph.p_flags};
        }
    }
    if (build_regions(&c, err) != 0)
        goto out;
    if (c.pyregions && apply_pyspy_regions(&c, err) != 0)
        goto out;
    lay->verified = calloc(src->nregions ? src->nregions : 1, 1);
    if (!lay->verified) {
        oom(err);
        goto out;
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
        pyspy_module *m = &src->modules[i];
        for (size_t k = 0; k < m->nsymbols; k++)
            free(m->symbols[k].name);
        free(m->symbols);
        free(m->path);
    }
    free(src->modules);
    free(src->proc.exe);
    free(src->proc.cmdline);
    free(src->auxv);
    free(lay->file_off);
    free(lay->digest);
    free(lay->verified);
    src->regions = NULL;
    src->threads = NULL;
    src->modules = NULL;
    src->nregions = src->nthreads = src->nmodules = 0;
    src->proc.exe = src->proc.cmdline = NULL;
    src->auxv = NULL;
    memset(lay, 0, sizeof *lay);
}
