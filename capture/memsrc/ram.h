/* A view of a live source with coredump_filter applied, either copied into
 * RAM while the target is stopped (so it can be resumed before the slow
 * compression) or read through to the still-stopped target when the copy
 * would not fit the memory budget. (capture/memsrc/ram.c) */
#ifndef PYSPY_CAPTURE_MEMSRC_RAM_H
#define PYSPY_CAPTURE_MEMSRC_RAM_H

#include <pyspy.h>

/* Builds the filtered region table of live (regions left out are
 * absent; with ELF_HEADERS their first page of an ELF image stays) and
 * the bytes a copy would take: private anonymous pages the target never
 * touched are zeros and cost nothing. */
int pyspy_memsrc_view_open(pyspy_memsrc *live, uint32_t filter,
                           pyspy_memsrc **out, pyspy_error *err);
uint64_t pyspy_memsrc_view_bytes(const pyspy_memsrc *view);
/* Memory for a copy, allocated and faulted in before the target is
 * stopped: first touches of fresh pages are most of the cost of a copy. */
typedef struct pyspy_ram_pool {
    uint8_t *base; /* huge-page aligned, inside map */
    uint64_t size, used;
    void *map;
    size_t map_len;
} pyspy_ram_pool;
int pyspy_ram_pool_init(pyspy_ram_pool *p, uint64_t size, pyspy_error *err);
void pyspy_ram_pool_free(pyspy_ram_pool *p);

/* Copies every present region into RAM (into pool while it lasts; the
 * view takes the pool over, pool may be NULL); from then on reads are
 * memcpy and need not the target. Regions that cannot be read become
 * absent. */
int pyspy_memsrc_view_copy(pyspy_memsrc *view, pyspy_ram_pool *pool,
                           pyspy_error *err);
/* Half of MemAvailable (the default budget); 0 if unknown. */
uint64_t pyspy_default_memory_budget(void);

#endif
