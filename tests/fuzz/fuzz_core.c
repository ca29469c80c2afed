/* Cores and snapshots as pyspy_memsrc_open_fd reads them: the content
 * sniffing, the ELF program headers and every note (capture/core/parse.c,
 * capture/core/notes_read.c), the regions they make, and reads through
 * the source, which check region digests. Seeds: fixture snapshots and
 * kernel and gcore cores trimmed to a few small regions (plain, and
 * compressed whole-stream and seekable; tests/fuzz/make-corpus). */
#include "capture/snapshot/snapshot.h"
#include "tests/fuzz/fuzz_common.h"

#define READS 64

static uint8_t buf[8192];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = pyspy_fuzz_fd(data, size);
    if (fd < 0)
        return 0;
    pyspy_memsrc *src = NULL;
    pyspy_error err = {0};
    /* Files the core names are looked for only in a folder that does not
     * exist and where the core says (mostly absent on this host). */
    pyspy_file_opts opts = {.lib_search_path = "/nonexistent-pyspy-fuzz"};
    if (pyspy_memsrc_open_fd(fd, "fuzz input", &opts, &src, &err) != 0)
        return 0; /* it took fd */
    /* A few bytes at each end of the first regions: each read checks
     * the digests of what it touches. */
    for (size_t i = 0; i < src->nregions && i < READS; i++) {
        const pyspy_region *r = &src->regions[i];
        uint64_t len = r->end - r->start;
        size_t n = len < sizeof buf ? (size_t)len : sizeof buf;
        (void)pyspy_memsrc_read(src, r->start, buf, n, &err);
        (void)pyspy_memsrc_read(src, r->end - n, buf, n, &err);
        (void)pyspy_memsrc_read(src, r->end - 1, buf, 2, &err);
    }
    (void)pyspy_memsrc_symbol(src, NULL, "_PyRuntime", NULL);
    (void)pyspy_memsrc_symbol(src, "python", "Py_Version", NULL);
    char line[512];
    (void)pyspy_memsrc_describe_missed(src, line, sizeof line);
    pyspy_memsrc_close(src);
    return 0;
}
