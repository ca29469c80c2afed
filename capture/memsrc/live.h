/* What the RAM copy of a live source needs of it beyond the seam: the
 * process it reads, for the files (/proc/PID/map_files, pagemap) only a
 * copy taken from it reads. (capture/memsrc/live.c) */
#ifndef PYSPY_CAPTURE_MEMSRC_LIVE_H
#define PYSPY_CAPTURE_MEMSRC_LIVE_H

#include <pyspy.h>

int pyspy_live_pid(const pyspy_memsrc *src);

#endif
