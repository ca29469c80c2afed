/* The modules of a core, and the file pages a core leaves out.
 *
 * A kernel core has no PYSPY notes: its modules are the files mapped at
 * offset 0, each build-id read from the ELF headers the kernel dumped.
 * Kernel cores (default coredump_filter) and gdb's gcore both leave out
 * the read-only pages of file mappings, which hold .rodata (type names,
 * interned strings) that a stack walk needs; such pages are read from a
 * file only after it is shown to be the very build the process mapped,
 * since another build's bytes would be a silently wrong answer. */
#include "capture/base/array.h"
#include "capture/core/reader.h"
#include "capture/elf/symbols.h"

#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HOST_MODULES 4096u
#define HDR_PAGE 4096u
#define MAX_NOTE_BYTES 4096u
#define MAX_SEARCH_DIRS 64u

/* The first page of an ELF image, as the core holds it. */
typedef struct header_page {
    uint8_t bytes[HDR_PAGE];
    size_t len; /* 0: the core does not hold it */
} header_page;

static void read_header_page(pyspy_memsrc *src, uint64_t start,
                             header_page *h) {
    h->len = 0;
    const pyspy_region *r = pyspy_memsrc_region_at(src, start);
    if (!r || !r->present || r->end - start < sizeof(Elf64_Ehdr))
        return;
    size_t n = r->end - start < HDR_PAGE ? (size_t)(r->end - start) : HDR_PAGE;
    pyspy_error e = {0};
    if (pyspy_memsrc_read(src, start, h->bytes, n, &e) == 0)
        h->len = n;
}

static bool is_elf(const header_page *h) {
    return h->len >= sizeof(Elf64_Ehdr) &&
           memcmp(h->bytes, ELFMAG, SELFMAG) == 0 &&
           h->bytes[EI_CLASS] == ELFCLASS64;
}

/* The ELF header and program header table: they never change at run
 * time, so equal bytes tie a file to the image the process mapped when
 * no build-id can be read. Length 0 when they do not fit the page. */
static size_t identity_len(const header_page *h) {
    if (!is_elf(h))
        return 0;
    Elf64_Ehdr eh;
    memcpy(&eh, h->bytes, sizeof eh);
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 ||
        eh.e_phnum > 256 || eh.e_phoff > h->len ||
        (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > h->len - eh.e_phoff)
        return 0;
    return (size_t)(eh.e_phoff + (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr));
}

static const Elf64_Phdr *phdr_at(const header_page *h, size_t i,
                                 Elf64_Phdr *out) {
    Elf64_Ehdr eh;
    memcpy(&eh, h->bytes, sizeof eh);
    memcpy(out, h->bytes + eh.e_phoff + i * sizeof *out, sizeof *out);
    return out;
}

/* The GNU build-id in a note block; its length, 0 if none. */
static uint8_t build_id_in_notes(const uint8_t *p, size_t n, uint8_t out[20]) {
    size_t off = 0;
    while (off + 12 <= n) {
        uint32_t namesz, descsz, type;
        memcpy(&namesz, p + off, 4);
        memcpy(&descsz, p + off + 4, 4);
        memcpy(&type, p + off + 8, 4);
        uint64_t name_end = off + 12 + (((uint64_t)namesz + 3) & ~3ull);
        uint64_t desc_end = name_end + (((uint64_t)descsz + 3) & ~3ull);
        if (name_end > n || name_end + descsz > n)
            return 0;
        if (type == NT_GNU_BUILD_ID && namesz == 4 &&
            memcmp(p + off + 12, "GNU", 4) == 0 && descsz > 0 && descsz <= 20) {
            memcpy(out, p + name_end, descsz);
            return (uint8_t)descsz;
        }
        if (desc_end > n)
            return 0;
        off = (size_t)desc_end;
    }
    return 0;
}

/* The build-id of the image whose header page h was read at start: its
 * PT_NOTE segments, wherever the core holds them (a patchelf'd binary
 * keeps its headers in a page of their own, away from the notes). */
static uint8_t build_id_of(pyspy_memsrc *src, uint64_t start,
                           const header_page *h, uint8_t out[20]) {
    if (!identity_len(h))
        return 0;
    Elf64_Ehdr eh;
    memcpy(&eh, h->bytes, sizeof eh);
    uint64_t first = UINT64_MAX;
    for (size_t i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        phdr_at(h, i, &ph);
        if (ph.p_type == PT_LOAD && ph.p_vaddr < first)
            first = ph.p_vaddr;
    }
    /* Notes outside the page are found through the load address (none
     * without a PT_LOAD). */
    bool mapped = first != UINT64_MAX;
    uint64_t bias = mapped ? start - (first & ~(uint64_t)(HDR_PAGE - 1)) : 0;
    uint8_t note[MAX_NOTE_BYTES];
    for (size_t i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        phdr_at(h, i, &ph);
        if (ph.p_type != PT_NOTE || ph.p_filesz == 0 ||
            ph.p_filesz > sizeof note)
            continue;
        uint8_t len = 0;
        pyspy_error e = {0};
        if (ph.p_offset < h->len && h->len - ph.p_offset >= ph.p_filesz)
            len = build_id_in_notes(h->bytes + ph.p_offset, ph.p_filesz, out);
        else if (mapped && pyspy_memsrc_read(src, bias + ph.p_vaddr, note,
                                             ph.p_filesz, &e) == 0)
            len = build_id_in_notes(note, ph.p_filesz, out);
        if (len)
            return len;
    }
    return 0;
}

/* ------------------------------------------------------ finding the file */

typedef struct finder {
    const pyspy_file_opts *opts;
    const char *exe_path; /* the core's main program, NULL unknown */
} finder;

/* The path of the mapping that holds the program's entry point. */
static const char *executable_path(const pyspy_memsrc *src) {
    for (size_t off = 0; src->auxv && off + 16 <= src->auxv_len; off += 16) {
        uint64_t key, val;
        memcpy(&key, src->auxv + off, 8);
        memcpy(&val, src->auxv + off + 8, 8);
        if (key == AT_NULL)
            break;
        if (key == AT_ENTRY) {
            const pyspy_region *r = pyspy_memsrc_region_at(src, val);
            return r ? r->path : NULL;
        }
    }
    return NULL;
}

typedef enum { FILE_SAME, FILE_OTHER, FILE_UNVERIFIABLE, FILE_NONE } verdict;

/* Whether the file at path is the image the core mapped. */
static verdict check_file(const char *path, const pyspy_module *m,
                          const header_page *h) {
    if (access(path, R_OK) != 0)
        return FILE_NONE;
    if (m->build_id_len) {
        pyspy_module f;
        memset(&f, 0, sizeof f);
        uint64_t first = 0;
        pyspy_error e = {0};
        /* Not an ELF object (an emptied or hidden file): not the file. */
        if (pyspy_elf_load_header(path, &f, &first, &e) != 0)
            return FILE_NONE;
        bool same = f.build_id_len == m->build_id_len &&
                    memcmp(f.build_id, m->build_id, m->build_id_len) == 0;
        pyspy_module_free(&f);
        return same ? FILE_SAME : FILE_OTHER;
    }
    size_t n = identity_len(h);
    if (!n)
        return FILE_UNVERIFIABLE;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return FILE_NONE;
    uint8_t buf[HDR_PAGE];
    ssize_t got = pread(fd, buf, n, 0);
    close(fd);
    return got == (ssize_t)n && memcmp(buf, h->bytes, n) == 0 ? FILE_SAME
                                                              : FILE_OTHER;
}

static const char *base_name(const char *path) {
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

/* Tries the places a module's file may be, in order: --executable for
 * the main program, each search folder (base name, then the path as
 * named under it), the path as named. The first one shown to be the
 * same build wins; *why says what stood in the way otherwise. */
static char *find_file(const finder *fd, const pyspy_module *m,
                       const header_page *h, uint8_t *why) {
    const char *named = m->path;
    bool is_exe = fd->exe_path && strcmp(fd->exe_path, named) == 0;
    *why = PYSPY_ABSENT_NO_FILE;
    char cand[4096];
    const pyspy_file_opts *o = fd->opts;
    if (is_exe && o && o->executable) {
        verdict v = check_file(o->executable, m, h);
        if (v == FILE_SAME)
            return strdup(o->executable);
        /* The user named the file: nothing else stands in for it. */
        *why = v == FILE_OTHER          ? PYSPY_ABSENT_OTHER_BUILD
               : v == FILE_UNVERIFIABLE ? PYSPY_ABSENT_UNVERIFIABLE
                                        : PYSPY_ABSENT_NO_FILE;
        return NULL;
    }
    const char *dirs = o && o->lib_search_path ? o->lib_search_path : "";
    size_t ndirs = 0;
    for (const char *p = dirs; *p && ndirs < MAX_SEARCH_DIRS; ndirs++) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        for (int form = 0; len && form < 2; form++) {
            const char *tail = form == 0 ? base_name(named) : named;
            int w = snprintf(cand, sizeof cand, "%.*s/%s", (int)len, p, tail);
            if (w <= 0 || (size_t)w >= sizeof cand)
                continue;
            verdict v = check_file(cand, m, h);
            if (v == FILE_SAME)
                return strdup(cand);
            if (v == FILE_OTHER)
                *why = PYSPY_ABSENT_OTHER_BUILD;
            else if (v == FILE_UNVERIFIABLE && *why == PYSPY_ABSENT_NO_FILE)
                *why = PYSPY_ABSENT_UNVERIFIABLE;
        }
        p = end ? end + 1 : p + len;
    }
    verdict v = check_file(named, m, h);
    if (v == FILE_SAME)
        return strdup(named);
    if (v == FILE_OTHER)
        *why = PYSPY_ABSENT_OTHER_BUILD;
    else if (v == FILE_UNVERIFIABLE && *why == PYSPY_ABSENT_NO_FILE)
        *why = PYSPY_ABSENT_UNVERIFIABLE;
    return NULL;
}

/* ------------------------------------------------------- filling pages */

static bool ensure_host_fd(pyspy_memsrc *src, pyspy_core_layout *lay) {
    if (lay->host_fd)
        return true;
    lay->host_fd =
        malloc((src->nregions ? src->nregions : 1) * sizeof *lay->host_fd);
    if (!lay->host_fd)
        return false;
    for (size_t k = 0; k < src->nregions; k++)
        lay->host_fd[k] = -1;
    return true;
}

static bool fillable(const pyspy_region *o, const pyspy_module *m) {
    return !o->present && o->path && o->start >= m->start && o->end <= m->end &&
           strcmp(o->path, m->path) == 0;
}

/* Private read-only file pages left out of a core equal the file's bytes.
 * Shared mappings stay absent (the file may have changed since), and so
 * do writable ones: a written .data page is no longer the file's. */
static void fill_from(pyspy_memsrc *src, pyspy_core_layout *lay,
                      const pyspy_module *m, const char *file) {
    if (!ensure_host_fd(src, lay))
        return;
    int idx = -1;
    uint64_t limit = 0; /* pages past the file's end would not read */
    for (size_t k = 0; k < src->nregions; k++) {
        pyspy_region *o = &src->regions[k];
        if (!fillable(o, m))
            continue;
        if (o->perms & (PYSPY_PERM_SHARED | PYSPY_PERM_W)) {
            o->absent_why = PYSPY_ABSENT_MUTABLE;
            continue;
        }
        if (idx < 0) {
            int *nf = realloc(lay->fds, (lay->nfds + 1) * sizeof *nf);
            if (!nf)
                return;
            lay->fds = nf;
            int fd = open(file, O_RDONLY | O_CLOEXEC);
            struct stat st;
            if (fd < 0) {
                o->absent_why = PYSPY_ABSENT_NO_FILE;
                return;
            }
            if (fstat(fd, &st) != 0) {
                close(fd);
                return;
            }
            limit = ((uint64_t)st.st_size + 4095) & ~4095ull;
            idx = (int)lay->nfds;
            lay->fds[lay->nfds++] = fd;
        }
        if (o->file_offset > limit ||
            o->end - o->start > limit - o->file_offset) {
            o->absent_why = PYSPY_ABSENT_OTHER_BUILD;
            continue;
        }
        o->present = true;
        o->absent_why = PYSPY_ABSENT_UNKNOWN;
        lay->host_fd[k] = idx;
    }
}

static void mark_absent(pyspy_memsrc *src, const pyspy_module *m, uint8_t why) {
    for (size_t k = 0; k < src->nregions; k++) {
        pyspy_region *o = &src->regions[k];
        if (fillable(o, m))
            o->absent_why = o->perms & (PYSPY_PERM_SHARED | PYSPY_PERM_W)
                                ? PYSPY_ABSENT_MUTABLE
                                : why;
    }
}

static bool has_absent(const pyspy_memsrc *src, const pyspy_module *m) {
    for (size_t k = 0; k < src->nregions; k++)
        if (fillable(&src->regions[k], m))
            return true;
    return false;
}

/* ------------------------------------------------------ kernel cores */

static bool known_module(const pyspy_memsrc *src, const char *path) {
    for (size_t k = 0; k < src->nmodules; k++)
        if (src->modules[k].path && strcmp(src->modules[k].path, path) == 0)
            return true;
    return false;
}

static int push_module(pyspy_memsrc *src, size_t *cap, pyspy_module *m) {
    if (src->nmodules == *cap) {
        size_t nc = *cap;
        pyspy_module *nm =
            pyspy_array_grow(src->modules, &nc, *cap + 1, sizeof *nm, 16);
        if (!nm)
            return -1;
        src->modules = nm;
        *cap = nc;
    }
    src->modules[src->nmodules++] = *m;
    return 0;
}

/* One module per file mapped at offset 0 whose first page is an ELF
 * header (or, when the core left that page out, a file of that path on
 * this host that is one). */
static void discover(pyspy_memsrc *src, const finder *fd) {
    size_t cap = src->nmodules;
    for (size_t i = 0; i < src->nregions; i++) {
        pyspy_region *r = &src->regions[i];
        if (!r->path || r->path[0] != '/' || r->file_offset != 0 ||
            known_module(src, r->path) || src->nmodules >= MAX_HOST_MODULES)
            continue;
        header_page h;
        read_header_page(src, r->start, &h);
        if (h.len && !is_elf(&h))
            continue; /* a data file mapped at offset 0 */
        pyspy_module m;
        memset(&m, 0, sizeof m);
        m.build_id_len = build_id_of(src, r->start, &h, m.build_id);
        m.start = r->start;
        m.end = r->end;
        for (size_t k = i; k < src->nregions; k++) {
            pyspy_region *o = &src->regions[k];
            if (!o->path || strcmp(o->path, r->path) != 0)
                continue;
            if (o->end > m.end)
                m.end = o->end;
            if (m.build_id_len) {
                memcpy(o->build_id, m.build_id, m.build_id_len);
                o->build_id_len = m.build_id_len;
            }
        }
        m.path = strdup(r->path);
        if (!m.path)
            return;
        uint8_t why;
        char *file = find_file(fd, &m, &h, &why);
        /* Without a header in the core, a file we could not tie to it
         * still says whether the mapping is an ELF object at all. */
        char *sym_file = file;
        if (!sym_file && !h.len && access(m.path, R_OK) == 0)
            sym_file = m.path;
        if (sym_file) {
            pyspy_module host;
            memset(&host, 0, sizeof host);
            uint64_t first_vaddr = 0;
            pyspy_error e = {0};
            if (pyspy_elf_load_symbols(sym_file, &host, &first_vaddr, &e) ==
                    0 &&
                pyspy_module_take_symbols(&m, &host) == 0) {
                m.load_bias = r->start - first_vaddr;
                if (!m.build_id_len && file) {
                    memcpy(m.build_id, host.build_id, sizeof m.build_id);
                    m.build_id_len = host.build_id_len;
                }
            }
            pyspy_module_free(&host);
        }
        free(file);
        if (!h.len && !m.symbols) {
            pyspy_module_free(&m);
            continue;
        }
        if (push_module(src, &cap, &m) != 0) {
            pyspy_module_free(&m);
            return;
        }
    }
}

void pyspy_core_add_host_modules(pyspy_memsrc *src, pyspy_core_layout *lay,
                                 const pyspy_file_opts *opts) {
    elf_version(EV_CURRENT);
    finder fd = {opts, executable_path(src)};
    if (!lay->has_pyspy)
        discover(src, &fd);
    for (size_t i = 0; i < src->nmodules; i++) {
        const pyspy_module *m = &src->modules[i];
        if (!m->path || !has_absent(src, m))
            continue;
        header_page h;
        read_header_page(src, m->start, &h);
        uint8_t why;
        char *file = find_file(&fd, m, &h, &why);
        if (file)
            fill_from(src, lay, m, file);
        else
            mark_absent(src, m, why);
        free(file);
    }
}
