/* Reading an ELF core from a byte source (plain file, or the decompressed
 * view of a seekable snapshot) into a pyspy_memsrc. Internal to
 * capture/memsrc/file.c and capture/core/parse.c. */
#ifndef PYSPY_CAPTURE_CORE_READER_H
#define PYSPY_CAPTURE_CORE_READER_H

#include "capture/snapshot/zstd_seekable.h"
#include <pyspy.h>

typedef struct pyspy_bytesrc {
    int fd;
    uint64_t size;         /* of the uncompressed core */
    pyspy_zsk_reader *zsk; /* NULL: plain file */
    const char *name;      /* for messages */
} pyspy_bytesrc;

int pyspy_bytesrc_read(pyspy_bytesrc *b, uint64_t off, void *buf, size_t len,
                       pyspy_error *err);

/* What a region's bytes are checked against, and what was checked. */
typedef struct pyspy_region_check {
    uint64_t digest; /* of the whole region (has_digest) */
    bool has_digest;
    bool verified;     /* whole region checked */
    uint32_t nblocks;  /* 0: no block digests */
    uint64_t *blocks;  /* digest of each block_size block */
    uint8_t *block_ok; /* per block: PYSPY_CHECK_* */
    bool bad;          /* the whole region failed its digest */
} pyspy_region_check;

enum { PYSPY_CHECK_UNREAD = 0, PYSPY_CHECK_OK = 1, PYSPY_CHECK_BAD = 2 };

/* Per-region facts the read op needs beyond pyspy_region. */
typedef struct pyspy_core_layout {
    uint64_t *file_off;         /* where region i's bytes start in the core */
    pyspy_region_check *checks; /* per region; NULL: nothing to check */
    uint32_t block_size;
    bool has_pyspy; /* PYSPY notes were found */
    /* Kernel cores: file pages the kernel did not dump (never written)
     * served from this host's copy of the file, when its build-id matches
     * the one in the core. host_fd[i] indexes fds, -1: not from a file. */
    int *host_fd;
    int *fds;
    size_t nfds;
    uint32_t digest_kind; /* PYSPY_DIGEST_* of checks */
    /* A lean snapshot (MAPS note): the regions as the process mapped
     * them, each the union of consecutive parsed regions (its runs of
     * pages kept and absent); NULL otherwise. The file source shows
     * these and reads through the parsed ones. */
    pyspy_region *maps;
    size_t nmaps;
} pyspy_core_layout;

/* Checks the first n bytes of a file for an ELF core header pyspy reads
 * (64-bit little-endian x86_64 ET_CORE); else one line saying what the
 * file is instead (another class or architecture, an executable, no ELF
 * at all). */
int pyspy_core_check_ehdr(const uint8_t *h, size_t n, const char *name,
                          pyspy_error *err);

/* Fills src's regions, threads, proc, modules, auxv and lay. On error the
 * caller frees what was filled (pyspy_core_free_fields). */
int pyspy_core_parse(pyspy_bytesrc *bs, pyspy_memsrc *src,
                     pyspy_core_layout *lay, pyspy_error *err);
void pyspy_core_free_fields(pyspy_memsrc *src, pyspy_core_layout *lay);

/* After parsing (it reads through src). For a core without PYSPY notes:
 * one module per file mapped at offset 0, build-ids from the dumped ELF
 * headers, symbols from the matching file. For every core: the absent
 * read-only private pages of a module are then read from its file (lay)
 * when that file is shown to be the same build, looked for where opts
 * says and where the core names it; each region left absent says why.
 * (capture/core/modules.c) */
void pyspy_core_add_host_modules(pyspy_memsrc *src, pyspy_core_layout *lay,
                                 const pyspy_file_opts *opts);

#endif
