/* Symbols and build-id of an ELF file on disk, read with libelf. The file
 * may be anything a target maps, so every count and offset is checked
 * against the file before use. */
#include "capture/elf_symbols.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bounds for hostile files: a real libpython has ~15k symbols. */
#define MAX_SYMBOLS (4u << 20)
#define MAX_NAME 4096u

/* Symbols are ordered by a hash of the name first: sorting a libc's or
 * a static python's tens of thousands of names with strcmp was a quarter
 * of a sampler's start-up, and lookups only need some fixed order. */
uint32_t pyspy_symbol_hash(const char *name) {
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

static int cmp_key(uint32_t hash, const char *name, const pyspy_symbol *y) {
    if (hash != y->hash)
        return hash < y->hash ? -1 : 1;
    return strcmp(name, y->name);
}

static int cmp_sym(const void *a, const void *b) {
    const pyspy_symbol *x = a, *y = b;
    int c = cmp_key(x->hash, x->name, y);
    if (c)
        return c;
    /* Prefer the entry with a value so lookups do not land on a 0. */
    return (x->value == 0) - (y->value == 0);
}

void pyspy_module_sort_symbols(pyspy_module *m) {
    for (size_t i = 0; m->symbols && i < m->nsymbols; i++)
        m->symbols[i].hash = pyspy_symbol_hash(m->symbols[i].name);
    if (m->symbols && m->nsymbols > 1)
        qsort(m->symbols, m->nsymbols, sizeof *m->symbols, cmp_sym);
}

const pyspy_symbol *pyspy_module_find_symbol(const pyspy_module *m,
                                             const char *name) {
    if (!m || !m->symbols)
        return NULL;
    uint32_t h = pyspy_symbol_hash(name);
    size_t lo = 0, hi = m->nsymbols;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_key(h, name, &m->symbols[mid]);
        if (c == 0)
            return &m->symbols[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

void pyspy_module_free(pyspy_module *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->nsymbols; i++)
        free(m->symbols[i].name);
    free(m->symbols);
    free(m->path);
    memset(m, 0, sizeof *m);
}

static void read_build_id(Elf *elf, pyspy_module *m) {
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        if (!d || !d->d_buf)
            continue;
        size_t off = 0, name_off, desc_off;
        GElf_Nhdr nh;
        while ((off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
            if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
                memcmp((char *)d->d_buf + name_off, "GNU", 4) == 0 &&
                nh.n_descsz > 0) {
                size_t n = nh.n_descsz > 20 ? 20 : nh.n_descsz;
                memcpy(m->build_id, (char *)d->d_buf + desc_off, n);
                m->build_id_len = (uint8_t)n;
                return;
            }
        }
    }
}

static int first_load_vaddr(Elf *elf, uint64_t *out) {
    size_t phnum = 0;
    if (elf_getphdrnum(elf, &phnum) != 0)
        return -1;
    bool found = false;
    uint64_t lowest = 0;
    for (size_t i = 0; i < phnum && i < 65536; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
            continue;
        uint64_t a = ph.p_vaddr & ~(uint64_t)4095;
        if (!found || a < lowest)
            lowest = a;
        found = true;
    }
    *out = lowest;
    return found ? 0 : -1;
}

/* Appends the defined FUNC/OBJECT symbols of one symbol table. */
static int add_symtab(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh,
                      pyspy_module *m, size_t *cap) {
    Elf_Data *d = elf_getdata(scn, NULL);
    if (!d || sh->sh_entsize == 0)
        return 0;
    size_t n = sh->sh_size / sh->sh_entsize;
    if (n > MAX_SYMBOLS)
        n = MAX_SYMBOLS;
    for (size_t i = 1; i < n; i++) {
        GElf_Sym s;
        if (!gelf_getsym(d, (int)i, &s))
            break;
        int type = GELF_ST_TYPE(s.st_info);
        if ((type != STT_FUNC && type != STT_OBJECT) ||
            s.st_shndx == SHN_UNDEF || s.st_value == 0)
            continue;
        const char *name = elf_strptr(elf, sh->sh_link, s.st_name);
        if (!name || !*name || strnlen(name, MAX_NAME) == MAX_NAME)
            continue;
        if (m->nsymbols >= MAX_SYMBOLS)
            return 0;
        if (m->nsymbols == *cap) {
            size_t nc = *cap ? *cap * 2 : 1024;
            pyspy_symbol *ns = realloc(m->symbols, nc * sizeof *ns);
            if (!ns)
                return -1;
            m->symbols = ns;
            *cap = nc;
        }
        pyspy_symbol *o = &m->symbols[m->nsymbols];
        o->name = strdup(name);
        if (!o->name)
            return -1;
        o->value = s.st_value;
        o->size = s.st_size;
        o->type = (uint8_t)type;
        m->nsymbols++;
    }
    return 0;
}

/* .symtab and .dynsym overlap; keep one entry per name. */
static void dedupe(pyspy_module *m) {
    if (m->nsymbols < 2)
        return;
    size_t w = 1;
    for (size_t i = 1; i < m->nsymbols; i++) {
        if (m->symbols[i].hash == m->symbols[w - 1].hash &&
            strcmp(m->symbols[i].name, m->symbols[w - 1].name) == 0) {
            free(m->symbols[i].name);
            continue;
        }
        m->symbols[w++] = m->symbols[i];
    }
    m->nsymbols = w;
}

int pyspy_elf_load_symbols(const char *path, pyspy_module *m,
                           uint64_t *first_vaddr, pyspy_error *err) {
    if (elf_version(EV_CURRENT) == EV_NONE)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "libelf too old");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pyspy_error_set(err, errno == EACCES ? PYSPY_E_PERM : PYSPY_E_IO,
                               "cannot open %s: %s", path, strerror(errno));
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    if (!elf || elf_kind(elf) != ELF_K_ELF) {
        if (elf)
            elf_end(elf);
        close(fd);
        return pyspy_error_set(err, PYSPY_E_FORMAT, "%s is not an ELF file",
                               path);
    }
    uint64_t fv = 0;
    if (first_load_vaddr(elf, &fv) != 0) {
        elf_end(elf);
        close(fd);
        return pyspy_error_set(err, PYSPY_E_FORMAT,
                               "%s has no loadable segment", path);
    }
    if (first_vaddr)
        *first_vaddr = fv;
    read_build_id(elf, m);
    size_t cap = 0, shstrndx = 0;
    int rc = 0;
    if (elf_getshdrstrndx(elf, &shstrndx) == 0) {
        Elf_Scn *scn = NULL;
        while (rc == 0 && (scn = elf_nextscn(elf, scn)) != NULL) {
            GElf_Shdr sh;
            if (!gelf_getshdr(scn, &sh))
                continue;
            if (sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM)
                rc = add_symtab(elf, scn, &sh, m, &cap);
        }
    }
    elf_end(elf);
    close(fd);
    if (rc != 0) {
        for (size_t i = 0; i < m->nsymbols; i++)
            free(m->symbols[i].name);
        free(m->symbols);
        m->symbols = NULL;
        m->nsymbols = 0;
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    pyspy_module_sort_symbols(m);
    dedupe(m);
    return 0;
}
