/* From a Python thread's pthread id to the kernel thread. On x86_64 Linux
 * pthread_self() is the thread pointer, which the kernel keeps as the
 * thread's FS base; without registers, glibc's struct pthread holds the
 * tid, and whatever is read there is trusted only when it names a thread
 * of the process. Inside a container the process's own thread ids (Python's
 * native_thread_id, glibc's tid) are its PID namespace's, not the ones
 * /proc and ptrace take: they are matched against each thread's ns_tid. */
#include "analyze/walk/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

const char *pyspy_os_thread_own_name(const pyspy_memsrc *src,
                                     const pyspy_thread *os) {
    if (!os || !os->name[0] || os->tid == src->proc.pid)
        return NULL;
    const pyspy_thread *main = pyspy_thread_by_tid(src, src->proc.pid);
    /* Without the main thread's name there is nothing to tell an
     * inherited name from a chosen one: no name rather than a wrong one. */
    if (!main || !main->name[0] ||
        strncmp(main->name, os->name, sizeof os->name) == 0)
        return NULL;
    return os->name;
}

static int cmp_own(const void *a, const void *b) {
    const pyspy_own_tid *x = a, *y = b;
    return (x->ns_tid > y->ns_tid) - (x->ns_tid < y->ns_tid);
}

static void own_tids_build(const pyspy_memsrc *src, pyspy_own_tids *m) {
    m->built = true;
    for (size_t i = 0; i < src->nthreads && !m->nested; i++)
        m->nested = src->threads[i].ns_tid > 0 &&
                    src->threads[i].ns_tid != src->threads[i].tid;
    if (!m->nested || !(m->v = malloc(src->nthreads * sizeof *m->v)))
        return; /* out of memory: looked up one by one */
    for (size_t i = 0; i < src->nthreads; i++)
        if (src->threads[i].ns_tid > 0)
            m->v[m->n++] = (pyspy_own_tid){src->threads[i].ns_tid, i};
    qsort(m->v, m->n, sizeof *m->v, cmp_own);
}

const pyspy_thread *pyspy_thread_by_own_tid(const pyspy_memsrc *src,
                                            pyspy_own_tids *m, int tid) {
    if (!m->built)
        own_tids_build(src, m);
    if (!m->nested)
        return pyspy_thread_by_tid(src, tid);
    if (tid <= 0)
        return NULL;
    if (!m->v) {
        for (size_t i = 0; i < src->nthreads; i++)
            if (src->threads[i].ns_tid == tid)
                return &src->threads[i];
        return NULL;
    }
    pyspy_own_tid key = {tid, 0};
    const pyspy_own_tid *hit = bsearch(&key, m->v, m->n, sizeof *m->v, cmp_own);
    return hit && hit->at < src->nthreads ? &src->threads[hit->at] : NULL;
}

bool pyspy_own_tids_nested(const pyspy_memsrc *src, pyspy_own_tids *m) {
    if (!m->built)
        own_tids_build(src, m);
    return m->nested;
}

void pyspy_own_tids_free(pyspy_own_tids *m) {
    free(m->v);
    *m = (pyspy_own_tids){0};
}

const pyspy_thread *pyspy_os_thread_for(pyspy_memsrc *src, pyspy_own_tids *m,
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
            /* glibc keeps the id gettid() gave the thread: the
             * namespace's own inside a container. */
            const pyspy_thread *t = pyspy_thread_by_own_tid(src, m, tid);
            if (t)
                return t;
        }
    }
    return NULL;
}
