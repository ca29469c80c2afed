/* Reading /proc/PID/pagemap is part of the pause (about 10 ms per GiB).
 * The PAGEMAP_SCAN ioctl (Linux 6.7), which returns runs of pages instead
 * of 8 bytes per page, was measured slower here (16 ms against 9.5 ms for
 * a 1 GiB Python heap), so the plain read it is. */
#include "capture/process/pagemap.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE 4096u
#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define PM_FILE (1ULL << 61)
/* Linux 6.15+: a guard page installed with MADV_GUARD_INSTALL (newer glibc
 * puts thread-stack guards inside the stack mapping this way). It shows as
 * a swap entry but holds no data and faults on any access, so it must not
 * be copied: one failed read would drop the whole stack. It reads as the
 * untouched (zero) page it stands for. */
#define PM_GUARD (1ULL << 58)
#define PM_CHUNK 8192u

static int scan_read(int fd, uint64_t start, uint64_t npages, bool file_backed,
                     uint64_t *bits, bool *anon_pages) {
    uint64_t *buf = malloc(PM_CHUNK * sizeof *buf);
    if (!buf)
        return -1;
    for (uint64_t i = 0; i < npages;) {
        uint64_t n = npages - i < PM_CHUNK ? npages - i : PM_CHUNK;
        ssize_t r = pread(fd, buf, n * sizeof *buf,
                          (off_t)((start / PAGE + i) * sizeof *buf));
        if (r <= 0 || r % (ssize_t)sizeof *buf) {
            free(buf);
            return -1;
        }
        n = (uint64_t)r / sizeof *buf;
        for (uint64_t k = 0; k < n; k++) {
            uint64_t e = buf[k];
            if (e & PM_GUARD)
                e = 0;
            bool own = file_backed ? ((e & PM_PRESENT) && !(e & PM_FILE)) ||
                                         (e & PM_SWAPPED)
                                   : (e & (PM_PRESENT | PM_SWAPPED)) != 0;
            if (bits && own)
                bits[(i + k) / 64] |= 1ULL << ((i + k) % 64);
            if ((e & PM_PRESENT) && !(e & PM_FILE) && anon_pages)
                *anon_pages = true;
        }
        i += n;
    }
    free(buf);
    return 0;
}

int pyspy_pagemap_own_pages(int fd, uint64_t start, uint64_t npages,
                            bool file_backed, uint64_t **bits_out,
                            bool *anon_pages) {
    uint64_t *bits = NULL;
    if (bits_out) {
        bits = calloc((npages + 63) / 64 + 1, sizeof *bits);
        if (!bits)
            return -1;
    }
    bool anon = false;
    int rc = scan_read(fd, start, npages, file_backed, bits, &anon);
    if (rc != 0) {
        free(bits);
        return -1;
    }
    if (anon && anon_pages)
        *anon_pages = true;
    if (bits_out)
        *bits_out = bits;
    return 0;
}
