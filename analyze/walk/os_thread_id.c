/* From a Python thread's pthread id to the kernel thread. On x86_64 Linux
 * pthread_self() is the thread pointer, which the kernel keeps as the
 * thread's FS base; without registers, glibc's struct pthread holds the
 * tid, and whatever is read there is trusted only when it names a thread
 * of the process. */
#include "analyze/walk/internal.h"

#include <stdint.h>

#define REG_FS_BASE 21 /* user_regs_struct.fs_base */

/* offsetof(struct pthread, tid) in glibc x86_64 (2.26 to at least 2.40):
 * after the 704-byte tcbhead_t and a list_t. */
static const uint64_t glibc_tid_offsets[] = {0x2d0};

const pyspy_thread *pyspy_thread_by_tid(const pyspy_memsrc *src, int tid) {
    for (size_t i = 0; tid > 0 && i < src->nthreads; i++)
        if (src->threads[i].tid == tid)
            return &src->threads[i];
    return NULL;
}

const pyspy_thread *pyspy_os_thread_for(pyspy_memsrc *src,
                                        uint64_t pthread_id) {
    if (!pthread_id)
        return NULL;
    for (size_t i = 0; i < src->nthreads; i++) {
        const pyspy_thread *t = &src->threads[i];
        if (t->has_regs && t->regs[REG_FS_BASE] == pthread_id)
            return t;
    }
    for (size_t k = 0; k < sizeof glibc_tid_offsets / sizeof *glibc_tid_offsets;
         k++) {
        int32_t tid = 0;
        if (pyspy_memsrc_read(src, pthread_id + glibc_tid_offsets[k], &tid,
                              sizeof tid, NULL) == 0) {
            const pyspy_thread *t = pyspy_thread_by_tid(src, tid);
            if (t)
                return t;
        }
    }
    return NULL;
}
