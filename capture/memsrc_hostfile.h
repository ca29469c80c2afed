/* Reading absent file-backed regions of a core from the matching file on
 * this host (capture/memsrc_hostfile.c). */
#ifndef PYSPY_CAPTURE_MEMSRC_HOSTFILE_H
#define PYSPY_CAPTURE_MEMSRC_HOSTFILE_H

#include <pyspy.h>

/* 0 when every byte came from a host file whose build-id matches the
 * region's module; -1 otherwise (buf then undefined). */
int pyspy_memsrc_read_hostfile(const pyspy_memsrc *src, uint64_t addr,
                               void *buf, size_t len);

#endif
