/* What the snapshot writer and the core reader agree on: the PYSPY notes
 * (owner "PYSPY"), a growable byte buffer to build notes in, a bounds-
 * checked cursor to parse them, and the region digest.
 * (capture/snapshot/notes.c builds notes, capture/core/notes_read.c parses
 * them, capture/snapshot/format.c holds the helpers.)
 *
 * Every PYSPY note descriptor is a little-endian record; strings are a u32
 * length followed by that many bytes (no NUL).
 *   PROCESS (1): u32 format version, str tool version, i64 capture time ns,
 *                u32 lock, u64 pause ns, i32 pid, i32 ppid, i32 crash
 *                signal, str exe, str cmdline, i32 pid in its own PID
 *                namespace (0 unknown; absent in older snapshots)
 *   THREAD  (2): i32 tid, u8 state, i64 syscall, u8 crashed, i32 signal,
 *                str name, i32 tid in the process's own PID namespace (0
 *                unknown; absent in older snapshots)
 *   REGIONS (3): u32 count, then per region: u64 start, u64 end, u64 file
 *                offset, u32 perms, u8 present, u8 build-id length, 20
 *                bytes build-id, u64 digest, str path ("" = anonymous)
 *   MODULE  (4): str path, u64 load bias, u64 start, u64 end, u8 build-id
 *                length, 20 bytes build-id, u32 nsymbols, then per symbol:
 *                u64 value, u64 size, u8 type, str name
 *   BLOCKS  (5): u32 block size, u32 count, then per present region: u64
 *                start, u32 nblocks, nblocks x u64 digest of each block
 *                of the region (the last one may be short)
 *   DIGESTS (6): u32 digest kind (1 = XXH64), then the BLOCKS record
 *                above. Present: every block digest (here) and region
 *                digest (REGIONS) is of that kind, and the region digest is
 *                XXH64 of the region's block digests (little-endian u64s),
 *                so it costs no second pass. Writers since then emit
 *                DIGESTS instead of BLOCKS.
 *   MAPS    (7): u32 count, then per region: u64 start, u64 end. Lean
 *                snapshots only: the regions as the process mapped them,
 *                each made of consecutive entries of REGIONS (runs of
 *                pages kept, and runs absent), which a reader shows as
 *                one region whose absent pages are unreadable.
 * Digests are 64-bit FNV-1a when DIGESTS is absent (files written before
 * it: committed fixtures), else XXH64 (own implementation from the
 * published spec; libzstd does not export its copy). The block digests let a
 * reader check only what it reads, so a seekable snapshot stays cheap to open
 * and to sample from; the whole-region digest serves readers that ignore
 * BLOCKS. Compatibility: readers skip note types they do not know and bytes
 * after the fields they know, so new fields go at the end of a record and new
 * facts in new note types; PYSPY_FORMAT_VERSION changes only when an
 * existing field changes meaning (committed fixtures use version 1). */
#ifndef PYSPY_CAPTURE_CORE_FORMAT_H
#define PYSPY_CAPTURE_CORE_FORMAT_H

#include <pyspy.h>

#define PYSPY_NOTE_OWNER "PYSPY"
#define PYSPY_FORMAT_VERSION 1
enum {
    PYSPY_NT_PROCESS = 1,
    PYSPY_NT_THREAD = 2,
    PYSPY_NT_REGIONS = 3,
    PYSPY_NT_MODULE = 4,
    PYSPY_NT_BLOCKS = 5,
    PYSPY_NT_DIGESTS = 6,
    PYSPY_NT_MAPS = 7
};
enum { PYSPY_DIGEST_FNV1A = 0, PYSPY_DIGEST_XXH64 = 1 };
#define PYSPY_DIGEST_BLOCK (1u << 20)

#define PYSPY_FNV_INIT 0xcbf29ce484222325ull
uint64_t pyspy_fnv1a(uint64_t h, const void *buf, size_t len);
uint64_t pyspy_xxh64(const void *buf, size_t len, uint64_t seed);
/* The region digest of kind XXH64, from its n block digests. */
uint64_t pyspy_region_digest_from_blocks(const uint64_t *blocks, size_t n);

typedef struct pyspy_buf {
    uint8_t *data;
    size_t len, cap;
    bool oom; /* sticky: checked once at the end */
} pyspy_buf;

void pyspy_buf_put(pyspy_buf *b, const void *p, size_t n);
void pyspy_buf_u8(pyspy_buf *b, uint8_t v);
void pyspy_buf_u32(pyspy_buf *b, uint32_t v);
void pyspy_buf_u64(pyspy_buf *b, uint64_t v);
void pyspy_buf_str(pyspy_buf *b, const char *s);
void pyspy_buf_align(pyspy_buf *b, size_t a);
void pyspy_buf_free(pyspy_buf *b);

typedef struct pyspy_cursor {
    const uint8_t *p;
    size_t left;
    bool bad; /* sticky: a read ran past the end */
} pyspy_cursor;

uint8_t pyspy_cur_u8(pyspy_cursor *c);
uint32_t pyspy_cur_u32(pyspy_cursor *c);
uint64_t pyspy_cur_u64(pyspy_cursor *c);
void pyspy_cur_bytes(pyspy_cursor *c, void *out, size_t n);
/* Returns a malloc'd NUL-terminated copy; NULL (and bad) when the length
 * runs past the end. Empty strings give "" unless empty_is_null. */
char *pyspy_cur_str(pyspy_cursor *c, bool empty_is_null);

/* Appends one ELF note (Elf64_Nhdr, name, desc, 4-byte padding). */
void pyspy_note_add(pyspy_buf *b, const char *owner, uint32_t type,
                    const void *desc, size_t desc_len);

/* What the writer learned while streaming the memory: per region i, its
 * digest and block digests (present regions only), and absent[i] for a
 * region whose read failed (it overrides the present flag). */
typedef struct pyspy_region_digests {
    const uint64_t *digest;
    uint64_t *const *blocks; /* blocks[i]: ceil(size / block) digests */
    const bool *absent;
} pyspy_region_digests;

struct pyspy_snapshot_opts;
/* Builds every note of a snapshot of src (opts may be NULL). */
int pyspy_notes_build(const pyspy_memsrc *src,
                      const struct pyspy_snapshot_opts *opts,
                      const pyspy_region_digests *dg, pyspy_buf *out,
                      pyspy_error *err);

#endif
