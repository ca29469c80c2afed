/* Writing snapshots (ELF core + PYSPY notes, zstd seekable stream) and
 * opening files as memory sources. (capture/snapshot/writer.c,
 * capture/snapshot/notes.c, capture/snapshot/zstd_seekable.c,
 * capture/memsrc/file.c) */
#ifndef PYSPY_CAPTURE_SNAPSHOT_H
#define PYSPY_CAPTURE_SNAPSHOT_H

#include <pyspy.h>
#include <stdio.h>

/* coredump_filter bits (man 5 core). */
enum {
    PYSPY_FILTER_ANON_PRIVATE = 1 << 0,
    PYSPY_FILTER_ANON_SHARED = 1 << 1,
    PYSPY_FILTER_FILE_PRIVATE = 1 << 2,
    PYSPY_FILTER_FILE_SHARED = 1 << 3,
    PYSPY_FILTER_ELF_HEADERS = 1 << 4,
    PYSPY_FILTER_HUGE_PRIVATE = 1 << 5,
    PYSPY_FILTER_HUGE_SHARED = 1 << 6
};
#define PYSPY_FILTER_DEFAULT 0x37u

typedef struct pyspy_snapshot_opts {
    int zstd_level;     /* 0 = default (3) */
    bool hide_progress; /* progress bar on stderr only when a TTY */
    const char *tool_version;
    /* Ingest of a stream (stdin, a pipe or FIFO): at most this many bytes
     * are spooled (0: PYSPY_DEFAULT_MAX_STREAM, 64 GiB). */
    uint64_t max_input_size;
    /* A lean snapshot's region table as the process had it (a MAPS note),
     * the regions written being its runs of pages kept and left out;
     * NULL for any other snapshot. */
    const pyspy_region *maps;
    size_t nmaps;
} pyspy_snapshot_opts;

typedef struct pyspy_snapshot_stats {
    uint64_t memory_bytes; /* bytes of memory written */
    uint64_t file_bytes;   /* compressed file size */
} pyspy_snapshot_stats;

/* Writes every present region of src (reads through src->ops->read),
 * src's threads (NT_PRSTATUS/NT_FPREGSET), process info, modules with
 * their symbols, and absent regions as absent. Writes to path through
 * pyspy_out_open (capture/base/file_io.h), mode 0600: nothing appears
 * under path until the file is whole. A region whose read fails with
 * PYSPY_E_UNREADABLE is recorded as absent; any other read error fails the
 * write. */
int pyspy_snapshot_write(pyspy_memsrc *src, const pyspy_snapshot_opts *opts,
                         const char *path, pyspy_snapshot_stats *stats,
                         pyspy_error *err);

/* A lean snapshot: of src's present regions only the pages listed
 * (sorted page addresses, read through src) are written; the rest of
 * each region is recorded as absent, page run by page run, so a reader
 * says so rather than returning zeros. The segments are those runs (what
 * gdb reads); the region table a reader shows is src's (a MAPS note).
 * (capture/snapshot/lean.c) */
int pyspy_snapshot_write_lean(pyspy_memsrc *src, const uint64_t *pages,
                              size_t npages, const pyspy_snapshot_opts *opts,
                              const char *path, pyspy_snapshot_stats *stats,
                              pyspy_error *err);

/* Like pyspy_memsrc_open_file on an open descriptor of a regular file
 * (it may be unlinked); takes ownership of fd. name is for messages. */
int pyspy_memsrc_open_fd(int fd, const char *name, const pyspy_file_opts *opts,
                         pyspy_memsrc **out, pyspy_error *err);

/* Reads a plain or zstd-compressed core (or a snapshot) from in_path, or
 * from stdin when in_path is "-" (spooled to an unlinked temporary file
 * first: a pipe cannot be seeked), and writes it as a snapshot of the same
 * shape to out_path, with the symbols of this host's copies of its
 * modules so it analyzes elsewhere. */
int pyspy_core_ingest(const char *in_path, const char *out_path,
                      const pyspy_snapshot_opts *opts,
                      pyspy_snapshot_stats *stats, pyspy_error *err);

/* pyspy_core_ingest with coredump_filter bits (PYSPY_FILTER_*): the
 * regions the filter leaves out become absent (with ELF_HEADERS, the
 * first page of a left-out ELF mapping stays). filter 0 keeps every
 * region the core holds, as pyspy_core_ingest does. */
int pyspy_core_ingest_filtered(const char *in_path, const char *out_path,
                               const pyspy_snapshot_opts *opts, uint32_t filter,
                               pyspy_snapshot_stats *stats, pyspy_error *err);

#endif
