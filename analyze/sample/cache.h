/* A page cache in front of a memory source for the span of one sample.
 *
 * Walking one sample reads hundreds of small objects (frames, code
 * objects, strings, dict entries) that sit on far fewer pages; reading
 * whole pages once per sample turns those reads into a few syscalls. The
 * cache is emptied before every sample, so it never serves memory from an
 * earlier moment: within one sample the target is stopped (Lock) or torn
 * reads are tolerated anyway (NonBlocking). */
#ifndef PYSPY_ANALYZE_SAMPLE_CACHE_H
#define PYSPY_ANALYZE_SAMPLE_CACHE_H

#include <pyspy.h>

typedef struct pyspy_sample_cache pyspy_sample_cache;

/* NULL when out of memory. */
pyspy_sample_cache *pyspy_sample_cache_new(void);
void pyspy_sample_cache_free(pyspy_sample_cache *c);

/* Starts a sample on src: empties the cache and returns a memory source
 * that reads through it. It mirrors src's fields (threads, regions,
 * modules, process facts) as they are now, so call it after suspend or
 * refresh, and use it only until the next call. Its close op does
 * nothing; it finds the target's files where src does (file_root). A
 * walk's rarely refreshed reads are better sent to src itself
 * (pyspy_walk_opts.cold_src). */
pyspy_memsrc *pyspy_sample_cache_begin(pyspy_sample_cache *c,
                                       pyspy_memsrc *src);

/* Reads and syscalls-worth of page fills in the last sample (tests and
 * benchmarks). */
void pyspy_sample_cache_stats(const pyspy_sample_cache *c, uint64_t *reads,
                              uint64_t *fills);

#endif
