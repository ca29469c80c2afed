/* Bytes the process has allocated and not freed: ASan's own count under
 * the sanitizer build (mallinfo2 knows nothing of its allocator), glibc's
 * otherwise. For tests that a structure stops growing. */
#ifndef PYSPY_TEST_HEAP_BYTES_H
#define PYSPY_TEST_HEAP_BYTES_H
#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
/* From the ASan runtime (its header is not always installed). */
size_t __sanitizer_get_current_allocated_bytes(void);
static size_t heap_bytes(void) {
    return __sanitizer_get_current_allocated_bytes();
}
#else
#include <malloc.h>
static size_t heap_bytes(void) {
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd; /* hblkhd: blocks mmap'd whole */
}
#endif
#endif
