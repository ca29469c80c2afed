/* Lookup in a region table sorted by start, as every source keeps its
 * own (capture/memsrc/seam.c). */
#ifndef PYSPY_CAPTURE_MEMSRC_REGIONS_H
#define PYSPY_CAPTURE_MEMSRC_REGIONS_H

#include <pyspy.h>

/* The index of the region holding addr, or n when none does. */
size_t pyspy_regions_index(const pyspy_region *regions, size_t n,
                           uint64_t addr);

#endif
