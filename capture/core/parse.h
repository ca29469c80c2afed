/* The state shared by the core parser (capture/core/parse.c) and the
 * note decoder (capture/core/notes_read.c) while one core is opened. */
#ifndef PYSPY_CAPTURE_CORE_PARSE_H
#define PYSPY_CAPTURE_CORE_PARSE_H

#include "capture/core/reader.h"

#include <sys/procfs.h>

typedef struct {
    uint64_t vaddr, memsz, off, filesz;
    uint32_t flags;
} pyspy_core_load;

typedef struct {
    uint64_t start, end, pgoff;
    const char *path; /* points into the note image */
} pyspy_core_file;

typedef struct pyspy_core_ctx {
    const char *name;
    pyspy_bytesrc *bs;
    pyspy_memsrc *src;
    pyspy_core_layout *lay;
    pyspy_core_load *loads;
    size_t nloads;
    pyspy_core_file *files; /* NT_FILE, sorted by start */
    size_t nfiles;
    uint64_t file_page;
    bool have_prpsinfo;
    struct elf_prpsinfo prpsinfo;
    size_t cap_threads;
    /* PYSPY REGIONS note, kept until regions are built */
    const uint8_t *pyregions;
    size_t pyregions_len;
    /* PYSPY BLOCKS note, likewise */
    const uint8_t *pyblocks;
    size_t pyblocks_len;
    /* PYSPY MAPS note (lean snapshots), likewise */
    const uint8_t *pymaps;
    size_t pymaps_len;
    /* PYSPY_DIGEST_*: XXH64 when a DIGESTS note was seen (its block table
     * then wins over a BLOCKS note) */
    uint32_t digest_kind;
    size_t cap_modules;
} pyspy_core_ctx;

/* "NAME is corrupted (what)" */
int pyspy_core_corrupt(const pyspy_core_ctx *c, pyspy_error *err,
                       const char *what);
/* Decodes one note into c->src (unknown notes are skipped). */
int pyspy_core_note(pyspy_core_ctx *c, const char *owner, size_t owner_len,
                    uint32_t type, const uint8_t *desc, size_t desc_len,
                    pyspy_error *err);

#endif
