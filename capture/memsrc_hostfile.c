/* A last resort for reads a core cannot answer: the kernel leaves the
 * read-only file mappings of a process (an interpreter's .rodata, where
 * type names live) out of its cores, as gdb expects to find them in the
 * files. When the region is a file mapping, the memory source knows the
 * module's build-id, and the file on this host has the same build-id, the
 * bytes are read from the file. A file with another build-id, or none to
 * compare, is never used. */
#include "capture/elf_symbols.h"
#include "capture/memsrc_hostfile.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CACHE_SLOTS 32

typedef struct host_file {
    char *path;
    uint8_t build_id[20];
    uint8_t build_id_len;
    int fd; /* -1: the host file does not match */
} host_file;

static host_file cache[CACHE_SLOTS];
static size_t ncache;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static const pyspy_module *module_of(const pyspy_memsrc *src,
                                     const pyspy_region *r, uint64_t addr) {
    for (size_t i = 0; i < src->nmodules; i++) {
        const pyspy_module *m = &src->modules[i];
        if (m->path && strcmp(m->path, r->path) == 0 && addr >= m->start &&
            addr < m->end)
            return m;
    }
    return NULL;
}

/* The host file's descriptor when its build-id is want's; -1 otherwise.
 * Called with the lock held. */
static int matching_fd(const char *path, const uint8_t *want, uint8_t len) {
    for (size_t i = 0; i < ncache; i++)
        if (cache[i].build_id_len == len &&
            memcmp(cache[i].build_id, want, len) == 0 &&
            strcmp(cache[i].path, path) == 0)
            return cache[i].fd;
    if (ncache == CACHE_SLOTS)
        return -1;
    int fd = -1;
    pyspy_module host;
    memset(&host, 0, sizeof host);
    uint64_t first = 0;
    if (pyspy_elf_load_symbols(path, &host, &first, NULL) == 0 &&
        host.build_id_len == len && memcmp(host.build_id, want, len) == 0)
        fd = open(path, O_RDONLY | O_CLOEXEC);
    pyspy_module_free(&host);
    host_file *h = &cache[ncache];
    h->path = strdup(path);
    if (!h->path) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    memcpy(h->build_id, want, len);
    h->build_id_len = len;
    h->fd = fd;
    ncache++;
    return fd;
}

int pyspy_memsrc_read_hostfile(const pyspy_memsrc *src, uint64_t addr,
                               void *buf, size_t len) {
    uint8_t *p = buf;
    while (len > 0) {
        const pyspy_region *r = pyspy_memsrc_region_at(src, addr);
        if (!r || r->present || !r->path || r->path[0] != '/')
            return -1;
        const pyspy_module *m = module_of(src, r, addr);
        const uint8_t *bid =
            r->build_id_len ? r->build_id : (m ? m->build_id : NULL);
        uint8_t blen =
            r->build_id_len ? r->build_id_len : (m ? m->build_id_len : 0);
        if (!bid || blen == 0)
            return -1;
        size_t k = r->end - addr < len ? (size_t)(r->end - addr) : len;
        pthread_mutex_lock(&lock);
        int fd = matching_fd(r->path, bid, blen);
        pthread_mutex_unlock(&lock);
        if (fd < 0)
            return -1;
        off_t off = (off_t)(r->file_offset + (addr - r->start));
        if (pread(fd, p, k, off) != (ssize_t)k)
            return -1;
        p += k;
        addr += k;
        len -= k;
    }
    return 0;
}
