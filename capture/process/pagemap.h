/* Which pages of a mapping only the process holds, from
 * /proc/PID/pagemap. (capture/process/pagemap.c) */
#ifndef PYSPY_CAPTURE_PAGEMAP_H
#define PYSPY_CAPTURE_PAGEMAP_H

#include <stdbool.h>
#include <stdint.h>

/* For [start, start + npages pages) of the process whose pagemap is fd:
 * with bits_out, a bitmap of the pages only the process holds (touched
 * anonymous pages; with file_backed, only those not backed by the file,
 * i.e. written copies and swapped pages); *anon_pages is set when a
 * present page is not a file page. Guard pages (MADV_GUARD_INSTALL) are
 * never counted. -1 when the pagemap cannot be read or memory runs out. */
int pyspy_pagemap_own_pages(int fd, uint64_t start, uint64_t npages,
                            bool file_backed, uint64_t **bits_out,
                            bool *anon_pages);

#endif
