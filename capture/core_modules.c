/* Modules of a kernel core, which has no PYSPY notes: every file mapped
 * at offset 0, its build-id read from the ELF header page the kernel
 * dumped, and symbols from this host's copy of the file -- only when the
 * host's copy has the same build-id, since symbols of another build would
 * point analysis at the wrong addresses. */
#include "capture/core_reader.h"
#include "capture/elf_symbols.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_HOST_MODULES 4096u
#define HDR_PAGE 4096u

/* The GNU build-id note of the ELF image whose first page is at start in
 * the core, when that page was dumped and the note lies within it.
 * Returns its length, 0 if unknown, -1 if the page is there and is not
 * an ELF header (a data file mapped at offset 0: not a module). */
static int build_id_at(pyspy_memsrc *src, uint64_t start, uint8_t out[20]) {
    const pyspy_region *r = pyspy_memsrc_region_at(src, start);
    if (!r || !r->present || r->end - start < sizeof(Elf64_Ehdr))
        return 0;
    size_t n = r->end - start < HDR_PAGE ? (size_t)(r->end - start) : HDR_PAGE;
    uint8_t *page = malloc(n);
    pyspy_error e = {0};
    if (!page || pyspy_memsrc_read(src, start, page, n, &e) != 0) {
        free(page);
        return 0;
    }
    uint8_t len = 0;
    Elf64_Ehdr eh;
    memcpy(&eh, page, sizeof eh);
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
        free(page);
        return -1;
    }
    /* Only the program headers are wanted: the section headers lie
     * beyond the dumped page. */
    eh.e_shoff = 0;
    eh.e_shnum = 0;
    eh.e_shstrndx = 0;
    memcpy(page, &eh, sizeof eh);
    Elf *elf = elf_memory((char *)page, n);
    size_t phnum = 0;
    if (elf && elf_kind(elf) == ELF_K_ELF && elf_getphdrnum(elf, &phnum) == 0) {
        for (size_t i = 0; i < phnum && len == 0; i++) {
            GElf_Phdr ph;
            if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_NOTE ||
                ph.p_offset > n || n - ph.p_offset < ph.p_filesz)
                continue;
            Elf_Data *d = elf_getdata_rawchunk(elf, (int64_t)ph.p_offset,
                                               ph.p_filesz, ELF_T_NHDR);
            if (!d)
                continue;
            size_t off = 0, next, name_off, desc_off;
            GElf_Nhdr nh;
            while (off < d->d_size &&
                   (next = gelf_getnote(d, off, &nh, &name_off, &desc_off)) >
                       off) {
                if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
                    memcmp((char *)d->d_buf + name_off, "GNU", 4) == 0 &&
                    nh.n_descsz > 0 && nh.n_descsz <= 20 &&
                    desc_off + nh.n_descsz <= d->d_size) {
                    memcpy(out, (char *)d->d_buf + desc_off, nh.n_descsz);
                    len = (uint8_t)nh.n_descsz;
                    break;
                }
                off = next;
            }
        }
    }
    if (elf)
        elf_end(elf);
    free(page);
    return len;
}

static bool region_has_elf_header(pyspy_memsrc *src, uint64_t start) {
    uint8_t magic[SELFMAG];
    pyspy_error e = {0};
    return pyspy_memsrc_read(src, start, magic, SELFMAG, &e) == 0 &&
           memcmp(magic, ELFMAG, SELFMAG) == 0;
}

/* Private read-only file pages the kernel did not dump equal the file's
 * bytes. Shared mappings are left absent (the file may have changed
 * since), and so are writable ones: a coredump_filter without the
 * file-private bit leaves out a written .data page too, whose bytes are
 * no longer the file's initial ones. */
static void fill_from_file(pyspy_memsrc *src, pyspy_core_layout *lay,
                           const char *path, uint64_t start, uint64_t end) {
    if (!lay->host_fd) {
        lay->host_fd =
            malloc((src->nregions ? src->nregions : 1) * sizeof *lay->host_fd);
        if (!lay->host_fd)
            return;
        for (size_t k = 0; k < src->nregions; k++)
            lay->host_fd[k] = -1;
    }
    int idx = -1;
    uint64_t limit = 0; /* pages past the file's end would not read */
    for (size_t k = 0; k < src->nregions; k++) {
        pyspy_region *o = &src->regions[k];
        if (o->present || o->start < start || o->end > end || !o->path ||
            strcmp(o->path, path) != 0 ||
            (o->perms & (PYSPY_PERM_SHARED | PYSPY_PERM_W)))
            continue;
        if (idx < 0) {
            int *nf = realloc(lay->fds, (lay->nfds + 1) * sizeof *nf);
            if (!nf)
                return;
            lay->fds = nf;
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            struct stat st;
            if (fd < 0)
                return;
            if (fstat(fd, &st) != 0) {
                close(fd);
                return;
            }
            limit = ((uint64_t)st.st_size + 4095) & ~4095ull;
            idx = (int)lay->nfds;
            lay->fds[lay->nfds++] = fd;
        }
        if (o->file_offset > limit ||
            o->end - o->start > limit - o->file_offset)
            continue;
        o->present = true;
        lay->host_fd[k] = idx;
    }
}

static bool known_module(const pyspy_memsrc *src, const char *path) {
    for (size_t k = 0; k < src->nmodules; k++)
        if (src->modules[k].path && strcmp(src->modules[k].path, path) == 0)
            return true;
    return false;
}

void pyspy_core_add_host_modules(pyspy_memsrc *src, pyspy_core_layout *lay) {
    elf_version(EV_CURRENT);
    size_t cap = src->nmodules;
    for (size_t i = 0; i < src->nregions; i++) {
        pyspy_region *r = &src->regions[i];
        if (!r->path || r->path[0] != '/' || r->file_offset != 0 ||
            known_module(src, r->path) || src->nmodules >= MAX_HOST_MODULES)
            continue;
        pyspy_module m;
        memset(&m, 0, sizeof m);
        int bl = build_id_at(src, r->start, m.build_id);
        if (bl < 0)
            continue;
        m.build_id_len = (uint8_t)bl;
        bool header_seen = bl > 0 || region_has_elf_header(src, r->start);
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
        if (access(r->path, R_OK) == 0) {
            pyspy_module host;
            memset(&host, 0, sizeof host);
            uint64_t first_vaddr = 0;
            pyspy_error e = {0};
            if (pyspy_elf_load_symbols(r->path, &host, &first_vaddr, &e) == 0 &&
                (m.build_id_len == 0 ||
                 (host.build_id_len == m.build_id_len &&
                  memcmp(host.build_id, m.build_id, m.build_id_len) == 0))) {
                header_seen = true;
                /* Same build as the process mapped: its bytes are what the
                 * kernel left out of the core. */
                if (m.build_id_len)
                    fill_from_file(src, lay, r->path, m.start, m.end);
                pyspy_module_take_symbols(&m, &host);
                m.load_bias = r->start - first_vaddr;
                if (!m.build_id_len) {
                    memcpy(m.build_id, host.build_id, sizeof m.build_id);
                    m.build_id_len = host.build_id_len;
                }
            }
            pyspy_module_free(&host);
        }
        /* Neither the core nor this host shows it is an ELF object. */
        if (!header_seen && !m.symbols) {
            free(m.path);
            continue;
        }
        if (src->nmodules == cap) {
            size_t nc = cap ? cap * 2 : 16;
            pyspy_module *nm = realloc(src->modules, nc * sizeof *nm);
            if (!nm) {
                pyspy_module_free(&m);
                return;
            }
            src->modules = nm;
            cap = nc;
        }
        src->modules[src->nmodules++] = m;
    }
}
