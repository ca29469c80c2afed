/* A memory source that forwards to another and keeps a copy of every page
 * read through it: the page set (and bytes) of a lean snapshot, gathered
 * by whatever walks through it, so the capture side never needs to know
 * what the walk looked for. (capture/memsrc/recording.c) */
#ifndef PYSPY_CAPTURE_MEMSRC_RECORDING_H
#define PYSPY_CAPTURE_MEMSRC_RECORDING_H

#include <pyspy.h>

/* Wraps inner, which must outlive the recording source (closing it does
 * not close inner). It mirrors inner's threads, regions, modules and
 * process facts after each operation that may change them. Pages read
 * before a suspend are read again before the matching resume, so every
 * page kept holds what the target held while it was stopped. With
 * stacks, each thread's stack in use (from its stack pointer, less the
 * red zone, to the end of its mapping, 8 MiB at most) is kept too, read
 * at that resume: what native unwinding (and gdb's bt) needs. */
int pyspy_memsrc_recording_open(pyspy_memsrc *inner, bool stacks,
                                pyspy_memsrc **out, pyspy_error *err);

/* The page-aligned addresses of the pages kept, sorted; valid until the
 * next read through rec. -1 when a page could not be kept (more than the
 * source holds at most, or out of memory), which a lean snapshot must
 * not hide. */
int pyspy_memsrc_recording_pages(pyspy_memsrc *rec, const uint64_t **pages,
                                 size_t *n, pyspy_error *err);

#endif
