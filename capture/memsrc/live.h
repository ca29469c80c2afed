/* Internals of the live memory source that the RAM copy and the capture
 * flow need. (capture/memsrc/live.c, capture/process/modules.c) */
#ifndef PYSPY_CAPTURE_MEMSRC_LIVE_H
#define PYSPY_CAPTURE_MEMSRC_LIVE_H

#include <pyspy.h>
#include <sys/uio.h>

bool pyspy_memsrc_is_live(const pyspy_memsrc *src);
int pyspy_live_pid(const pyspy_memsrc *src);
/* Reads n (local, remote) pairs of equal lengths, many per syscall.
 * ok[i] tells which pairs were read in full; returns how many were. */
size_t pyspy_live_readv(pyspy_memsrc *src, const struct iovec *local,
                        const struct iovec *remote, size_t n, bool *ok);
/* Re-reads the regions (and modules when files moved): for a snapshot,
 * once the process is stopped. */
int pyspy_live_reread_maps(pyspy_memsrc *src, pyspy_error *err);
/* The source serves a sampler: each thread's current syscall (which only
 * snapshots record) is not read, nor registers unless need_regs. Without
 * need_states a NonBlocking source does not read each thread's kernel
 * state either (2-40 % of a sample's CPU, measured side by side): threads are
 * left with state 0 and syscall -1, "unknown", which counts as active. */
void pyspy_live_sampling(pyspy_memsrc *src, bool need_regs, bool need_states);
/* Lock mode for a sampler without native stacks stops only the threads
 * that run: stopping a sleeping one wakes it, costs it a restarted system
 * call, and took most of a sample's pause on a multi-threaded target.
 * What it must prove instead, once the walk is over (before or after
 * resume): each thread left running still sleeps and neither its run
 * time nor its count of times on a CPU moved since before the walk -- it
 * never ran, so its memory is what a stop would have shown. False when
 * one did (the next suspend then stops every thread: walk again). */
bool pyspy_live_check_sleepers(pyspy_memsrc *src);
/* True while suspend holds the threads stopped (Lock mode). */
bool pyspy_live_is_stopped(const pyspy_memsrc *src);

/* Modules for every ELF file mapped in src->regions (live): symbols read
 * through /proc/PID/map_files or /proc/PID/root so containers work. */
int pyspy_live_load_modules(pyspy_memsrc *src, int pid, pyspy_error *err);
void pyspy_modules_free(pyspy_module *m, size_t n);

#endif
