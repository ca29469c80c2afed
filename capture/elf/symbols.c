/* Symbols and build-id of an ELF file on disk, read with libelf. The file
 * may be anything a target maps, so every count and offset is checked
 * against the file before use. */
#include "capture/base/array.h"
#include "capture/elf/symbols.h"

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

/* m's private table state, made on first need; NULL when out of
 * memory. */
static pyspy_module_symtab *symtab_of(pyspy_module *m) {
    if (!m->symtab)
        m->symtab = calloc(1, sizeof *m->symtab);
    return m->symtab;
}

static char *names_of(const pyspy_module *m) {
    return m->symtab ? m->symtab->names : NULL;
}

static void free_names(pyspy_module *m) {
    if (names_of(m)) {
        free(m->symtab->names);
        m->symtab->names = NULL;
    } else {
        for (size_t i = 0; m->symbols && i < m->nsymbols; i++)
            free(m->symbols[i].name);
    }
}

static void free_index(pyspy_module *m) {
    if (m->symtab)
        pyspy_map_free(&m->symtab->index);
}

/* Lookups go through a hash table built in one pass: sorting a
 * libpython's or a libc's tens of thousands of names (and allocating
 * each) was more than half of a sampler's start-up. */
typedef struct name_key {
    const pyspy_symbol *symbols;
    const char *name;
} name_key;

static bool name_eq(const void *ctx, uint32_t v) {
    const name_key *k = ctx;
    return strcmp(k->symbols[v].name, k->name) == 0;
}

static uint64_t name_hash(const char *name) {
    return pyspy_hash_bytes(name, strlen(name));
}

int pyspy_module_index_symbols(pyspy_module *m) {
    free_index(m);
    if (!m->symbols || m->nsymbols == 0)
        return 0;
    pyspy_module_symtab *t = symtab_of(m);
    if (!t || m->nsymbols > UINT32_MAX ||
        pyspy_map_reserve(&t->index, m->nsymbols) != 0)
        return -1;
    bool own_names = !t->names;
    /* .symtab and .dynsym overlap: keep one entry per name, one with a
     * value when there is one, and close the gaps as we go. */
    size_t w = 0;
    for (size_t i = 0; i < m->nsymbols; i++) {
        pyspy_symbol s = m->symbols[i];
        name_key k = {m->symbols, s.name};
        uint32_t at = (uint32_t)w;
        bool added;
        /* Cannot fail: the table has room for every symbol. */
        if (pyspy_map_add_hashed(&t->index, name_hash(s.name), name_eq, &k, &at,
                                 &added) != 0)
            return -1;
        if (!added) {
            pyspy_symbol *old = &m->symbols[at];
            if (old->value == 0 && s.value != 0) {
                char *keep = old->name;
                *old = s;
                old->name = keep;
            }
            if (own_names)
                free(s.name);
            continue;
        }
        m->symbols[w++] = s;
    }
    m->nsymbols = w;
    return 0;
}

static const pyspy_symbol *lookup(const pyspy_module *m, const char *name) {
    if (!m || !m->symbols || !m->symtab)
        return NULL;
    name_key k = {m->symbols, name};
    uint32_t at;
    /* A caller may shorten nsymbols to hide the tail. */
    return pyspy_map_find_hashed(&m->symtab->index, name_hash(name), name_eq,
                                 &k, &at) &&
                   at < m->nsymbols
               ? &m->symbols[at]
               : NULL;
}

/* The pending file and whether the table is partial stay to's. */
int pyspy_module_take_symbols(pyspy_module *to, pyspy_module *from) {
    if ((from->symtab || to->symtab) && !symtab_of(to))
        return -1;
    free_names(to);
    free(to->symbols);
    free_index(to);
    to->symbols = from->symbols;
    to->nsymbols = from->nsymbols;
    if (from->symtab) {
        to->symtab->names = from->symtab->names;
        to->symtab->index = from->symtab->index;
        from->symtab->names = NULL;
        memset(&from->symtab->index, 0, sizeof from->symtab->index);
    }
    from->symbols = NULL;
    from->nsymbols = 0;
    return 0;
}

void pyspy_module_free_symtab(pyspy_module *m) {
    if (!m || !m->symtab)
        return;
    pyspy_map_free(&m->symtab->index);
    free(m->symtab->names);
    free(m->symtab->file);
    free(m->symtab);
    m->symtab = NULL;
}

int pyspy_module_set_symbol_file(pyspy_module *m, const char *path) {
    pyspy_module_symtab *t = symtab_of(m);
    char *p = t ? strdup(path) : NULL;
    if (!p)
        return -1;
    free(t->file);
    t->file = p;
    t->partial = false;
    return 0;
}

bool pyspy_module_symbols_pending(const pyspy_module *m) {
    return m && m->symtab && m->symtab->file;
}

bool pyspy_module_symbols_partial(const pyspy_module *m) {
    return m && m->symtab && m->symtab->partial;
}

void pyspy_module_free(pyspy_module *m) {
    if (!m)
        return;
    free_names(m);
    free(m->symbols);
    pyspy_module_free_symtab(m);
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

/* The string tables the symbol tables name, copied into one block (each
 * followed by a NUL, so no name runs past its table). */
typedef struct strtabs {
    size_t link[2], base[2], size[2];
    size_t n;
} strtabs;

static int copy_strtabs(Elf *elf, pyspy_module *m, strtabs *t) {
    size_t total = 0;
    const Elf_Data *ds[2] = {0};
    for (size_t i = 0; i < t->n; i++) {
        Elf_Scn *scn = elf_getscn(elf, t->link[i]);
        ds[i] = scn ? elf_getdata(scn, NULL) : NULL;
        if (ds[i] && ds[i]->d_buf)
            total += ds[i]->d_size + 1;
    }
    pyspy_module_symtab *st = symtab_of(m);
    char *names = st ? malloc(total + 1) : NULL;
    if (!names)
        return -1;
    st->names = names;
    size_t at = 0;
    for (size_t i = 0; i < t->n; i++) {
        t->base[i] = at;
        t->size[i] = 0;
        if (!ds[i] || !ds[i]->d_buf)
            continue;
        t->size[i] = ds[i]->d_size;
        memcpy(names + at, ds[i]->d_buf, ds[i]->d_size);
        at += ds[i]->d_size;
        names[at++] = 0;
    }
    names[at] = 0;
    return 0;
}

/* Appends the defined FUNC/OBJECT symbols of one symbol table whose
 * names start at names (strsize bytes, NUL-terminated after). */
static int add_symtab(Elf_Scn *scn, const GElf_Shdr *sh, pyspy_module *m,
                      const char *names, size_t strsize, size_t *cap) {
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
            s.st_shndx == SHN_UNDEF || s.st_value == 0 || s.st_name >= strsize)
            continue;
        const char *name = names + s.st_name;
        if (!*name || strnlen(name, MAX_NAME) == MAX_NAME)
            continue;
        if (m->nsymbols >= MAX_SYMBOLS)
            return 0;
        if (m->nsymbols == *cap) {
            size_t nc = *cap;
            pyspy_symbol *ns = pyspy_array_grow(
                m->symbols, &nc, n > *cap + 1 ? n : *cap + 1, sizeof *ns, 1024);
            if (!ns)
                return -1;
            m->symbols = ns;
            *cap = nc;
        }
        m->symbols[m->nsymbols++] = (pyspy_symbol){.name = (char *)name,
                                                   .value = s.st_value,
                                                   .size = s.st_size,
                                                   .type = (uint8_t)type};
    }
    return 0;
}

/* Both symbol tables of an ELF file (only .dynsym when dynamic_only),
 * or -1 when out of memory. *more: a .symtab was left out. */
static int load_symtabs(Elf *elf, pyspy_module *m, bool dynamic_only,
                        bool *more) {
    Elf_Scn *scns[2];
    GElf_Shdr shs[2];
    strtabs t = {.n = 0};
    Elf_Scn *scn = NULL;
    while (t.n < 2 && (scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) ||
            (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM))
            continue;
        if (dynamic_only && sh.sh_type == SHT_SYMTAB) {
            *more = true;
            continue;
        }
        scns[t.n] = scn;
        shs[t.n] = sh;
        t.link[t.n++] = sh.sh_link;
    }
    if (t.n == 0)
        return 0;
    if (copy_strtabs(elf, m, &t) != 0)
        return -1;
    size_t cap = 0;
    for (size_t i = 0; i < t.n; i++)
        if (add_symtab(scns[i], &shs[i], m, m->symtab->names + t.base[i],
                       t.size[i], &cap) != 0)
            return -1;
    return 0;
}

/* Opens path as an ELF file and reads its header part into m; *elfp and
 * *fdp stay open for the caller on success. */
static int open_header(const char *path, pyspy_module *m, uint64_t *first_vaddr,
                       Elf **elfp, int *fdp, pyspy_error *err) {
    if (elf_version(EV_CURRENT) == EV_NONE)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "libelf too old");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pyspy_error_set(err, errno == EACCES ? PYSPY_E_PERM : PYSPY_E_IO,
                               "cannot open %s: %s", path, strerror(errno));
    Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
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
    *elfp = elf;
    *fdp = fd;
    return 0;
}

int pyspy_elf_load_header(const char *path, pyspy_module *m,
                          uint64_t *first_vaddr, pyspy_error *err) {
    Elf *elf;
    int fd;
    if (open_header(path, m, first_vaddr, &elf, &fd, err) != 0)
        return -1;
    elf_end(elf);
    close(fd);
    return 0;
}

static int load_symbols(const char *path, pyspy_module *m,
                        uint64_t *first_vaddr, bool dynamic_only, bool *more,
                        pyspy_error *err) {
    Elf *elf;
    int fd;
    if (open_header(path, m, first_vaddr, &elf, &fd, err) != 0)
        return -1;
    int rc = load_symtabs(elf, m, dynamic_only, more);
    elf_end(elf);
    close(fd);
    if (rc != 0 || pyspy_module_index_symbols(m) != 0) {
        pyspy_module_free(m);
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    }
    return 0;
}

int pyspy_elf_load_symbols(const char *path, pyspy_module *m,
                           uint64_t *first_vaddr, pyspy_error *err) {
    bool more = false;
    return load_symbols(path, m, first_vaddr, false, &more, err);
}

/* Reads m's pending table (only .dynsym when dynamic_only and no table
 * is there yet), replacing what it holds. */
static void read_pending(pyspy_module *m, bool dynamic_only) {
    pyspy_module_symtab *t = m->symtab;
    pyspy_module got;
    memset(&got, 0, sizeof got);
    pyspy_error e = {0};
    bool more = false;
    if (load_symbols(t->file, &got, NULL, dynamic_only, &more, &e) != 0 ||
        (m->build_id_len &&
         (got.build_id_len != m->build_id_len ||
          memcmp(got.build_id, m->build_id, m->build_id_len) != 0)) ||
        pyspy_module_take_symbols(m, &got) != 0)
        more = false; /* unreadable now: it will not get better */
    pyspy_module_free(&got);
    t->partial = more;
    if (!more) {
        free(t->file);
        t->file = NULL;
    }
}

void pyspy_module_ensure_symbols(pyspy_module *m) {
    if (pyspy_module_symbols_pending(m))
        read_pending(m, false);
}

const pyspy_symbol *pyspy_module_find_dynamic(pyspy_module *m,
                                              const char *name) {
    if (!m)
        return NULL;
    if (pyspy_module_symbols_pending(m) && !m->symtab->partial)
        read_pending(m, true);
    return lookup(m, name);
}

const pyspy_symbol *pyspy_module_find_symbol(pyspy_module *m,
                                             const char *name) {
    const pyspy_symbol *s = pyspy_module_find_dynamic(m, name);
    if (!s && pyspy_module_symbols_pending(m)) {
        pyspy_module_ensure_symbols(m);
        s = lookup(m, name);
    }
    return s;
}
