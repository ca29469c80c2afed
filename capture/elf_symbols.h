/* Reading what analysis needs from an ELF file on disk with libelf:
 * build-id, the load address of its first PT_LOAD, and the defined
 * FUNC/OBJECT symbols of .dynsym and .symtab, sorted for lookup by name.
 * (capture/elf_symbols.c) */
#ifndef PYSPY_CAPTURE_ELF_SYMBOLS_H
#define PYSPY_CAPTURE_ELF_SYMBOLS_H

#include <pyspy.h>

/* Fills m->symbols/nsymbols, m->build_id; *first_vaddr receives the
 * lowest PT_LOAD p_vaddr (page-aligned) so the caller can compute
 * load_bias = mapping start - first_vaddr (after matching offsets). */
int pyspy_elf_load_symbols(const char *path, pyspy_module *m,
                           uint64_t *first_vaddr, pyspy_error *err);
void pyspy_module_free(pyspy_module *m);
/* Sorts symbols for lookup by name (by the name's hash, then the name),
 * setting each one's hash. Every symbol table is sorted with it. */
void pyspy_module_sort_symbols(pyspy_module *m);
/* The symbol called name in a sorted table, NULL if none. */
const pyspy_symbol *pyspy_module_find_symbol(const pyspy_module *m,
                                             const char *name);
uint32_t pyspy_symbol_hash(const char *name);

#endif
