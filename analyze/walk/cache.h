/* What a sampler keeps across walks of one target: sys.path and thread
 * names change rarely, yet reading them costs most of a walk's reads;
 * code objects never change, and reading their names, files and line
 * tables was most of the rest. */
#ifndef PYSPY_ANALYZE_WALK_CACHE_H
#define PYSPY_ANALYZE_WALK_CACHE_H

#include <stdint.h>
#include "analyze/objects/objects.h"
#include "analyze/walk/internal.h"

typedef struct pyspy_walk_cache pyspy_walk_cache;

/* refresh_us: how old an entry may get before it is read again;
 * missing_us: how old once a walk met a thread without a cached name (a
 * new thread is named soon, the steady state costs little). NULL on out
 * of memory (the walker then reads everything each time). */
pyspy_walk_cache *pyspy_walk_cache_new(int64_t refresh_us, int64_t missing_us);
/* A walk of interp met a thread the cached names lack (c may be NULL). */
void pyspy_walk_cache_name_missing(pyspy_walk_cache *c, uint64_t interp);
void pyspy_walk_cache_free(pyspy_walk_cache *c);

/* What a walk of one interpreter reads besides its threads, uncached:
 * sys.path, and the names from its threading module when want_names. The
 * caller frees both. */
void pyspy_interp_context_read(pyspy_memsrc *src, const pyspy_python *py,
                               uint64_t interp, bool want_names,
                               pyspy_sys_path *sp, pyspy_thread_name **names,
                               size_t *nnames);

/* The cached sys.path and thread names (when want_names) of one
 * interpreter, read afresh
 * when missing or stale. Both stay owned by the cache until the next
 * call for the same interpreter or pyspy_walk_cache_free. Returns -1 when
 * the cache cannot hold the interpreter (the caller reads it itself). */
int pyspy_walk_cache_interp(pyspy_walk_cache *c, pyspy_memsrc *src,
                            const pyspy_python *py, uint64_t interp,
                            bool want_names, const pyspy_sys_path **sp,
                            const pyspy_thread_name **names, size_t *nnames);

/* The code objects seen so far (entries are re-checked by each walk; see
 * pyspy_code_get); NULL without a cache. */
pyspy_code_cache *pyspy_walk_cache_code(pyspy_walk_cache *c);

#endif
