/* Reading what analysis needs from an ELF file on disk with libelf:
 * build-id, the load address of its first PT_LOAD, and the defined
 * FUNC/OBJECT symbols of .dynsym and .symtab, indexed for lookup by name.
 * (capture/elf/symbols.c) */
#ifndef PYSPY_CAPTURE_ELF_SYMBOLS_H
#define PYSPY_CAPTURE_ELF_SYMBOLS_H

#include <pyspy.h>

#include "capture/base/map.h"

/* What pyspy.h keeps out of pyspy_module: the lookup index and the state
 * of a table read lazily. */
struct pyspy_module_symtab {
    /* When set, one block holding every symbol name (names point into
     * it); when NULL each name is its own allocation. */
    char *names;
    /* Name -> position in symbols; built by
     * pyspy_module_index_symbols. */
    pyspy_map index;
    /* Symbols not read yet: the file to read them from on first use
     * (pyspy_module_ensure_symbols). A sampler needs the interpreter's
     * few symbols, not every library's. */
    char *file;
    /* symbols holds .dynsym only; the rest is still in file. */
    bool partial;
};
typedef struct pyspy_module_symtab pyspy_module_symtab;

/* Fills m->symbols/nsymbols, m->build_id; *first_vaddr receives the
 * lowest PT_LOAD p_vaddr (page-aligned) so the caller can compute
 * load_bias = mapping start - first_vaddr (after matching offsets). */
int pyspy_elf_load_symbols(const char *path, pyspy_module *m,
                           uint64_t *first_vaddr, pyspy_error *err);
/* The same without the symbols: build-id and lowest PT_LOAD only. */
int pyspy_elf_load_header(const char *path, pyspy_module *m,
                          uint64_t *first_vaddr, pyspy_error *err);
/* Where the symbols of a module loaded with only its header are read
 * from when first needed. -1 when out of memory. */
int pyspy_module_set_symbol_file(pyspy_module *m, const char *path);
/* Whether some of m's symbols are still in that file, and whether the
 * part read is the exported (.dynsym) table only. */
bool pyspy_module_symbols_pending(const pyspy_module *m);
bool pyspy_module_symbols_partial(const pyspy_module *m);
/* Reads all the symbols of a module loaded with only its header, from
 * its symbol file (a file of another build-id gives none). Modules are
 * used by one thread at a time, so the lazy read takes no lock. Every
 * reader of m->symbols calls it first; lookups by name do it
 * themselves, which is why they take a module they may change. */
void pyspy_module_ensure_symbols(pyspy_module *m);
/* A lookup that reads no more than the exported (.dynsym) table of a
 * module not read yet: for probes of API names, which a miss there
 * answers, without reading a big .symtab. */
const pyspy_symbol *pyspy_module_find_dynamic(pyspy_module *m,
                                              const char *name);
/* Moves from's symbols (names and index too) into to, freeing to's. -1
 * (nothing moved) when out of memory. */
int pyspy_module_take_symbols(pyspy_module *to, pyspy_module *from);
/* Frees the path, the symbols (their names too) and the index. */
void pyspy_module_free(pyspy_module *m);
/* Frees m->symtab only (index, names block, pending file): for a table
 * whose symbols array and names the caller owns. */
void pyspy_module_free_symtab(pyspy_module *m);
/* Drops repeated names (keeping an entry with a value) and builds the
 * name index; -1 when out of memory (then lookups find nothing). Every
 * symbol table goes through it. */
int pyspy_module_index_symbols(pyspy_module *m);
/* The symbol called name, NULL if none: the exported table first, then,
 * on a miss, the rest of a module whose tables are still in its file
 * (read then, as pyspy_module_ensure_symbols does). */
const pyspy_symbol *pyspy_module_find_symbol(pyspy_module *m, const char *name);

#endif
