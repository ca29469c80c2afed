/* Region digests: XXH64, the kind snapshots are written with since FNV-1a
 * proved too slow (FNV-1a consumes one byte per dependent multiply, XXH64
 * four 8-byte lanes in parallel). The implementation is Debian's libxxhash,
 * inlined from its header so that pyspy-capture keeps linking libelf and
 * libzstd only. XXH3 was measured too and is no faster on a 1 GiB
 * capture (bench/README.md), so the format keeps XXH64. */
#include "capture/snapshot/format.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t pyspy_xxh64(const void *buf, size_t len, uint64_t seed) {
    return XXH64(buf, len, seed);
}

uint64_t pyspy_region_digest_from_blocks(const uint64_t *blocks, size_t n) {
    /* The block digests as little-endian u64s, as stored in the note. */
    return pyspy_xxh64(blocks, n * sizeof *blocks, 0);
}
