/* Output files that appear under their name only once whole.
 * (capture/base/out_file.c) */
#ifndef PYSPY_CAPTURE_OUT_FILE_H
#define PYSPY_CAPTURE_OUT_FILE_H

#include <pyspy.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

/* Every named file pyspy and pyspy-capture write (snapshots, record's and
 * diff's outputs) goes through this, so a failure (ENOSPC, a signal, a
 * crash) leaves the old file of that name intact and no partial one, and
 * a symlink planted at the name by another user is never followed.
 *
 * The data goes first to an unnamed O_TMPFILE in the folder of the final
 * name (nothing to leave behind, even on SIGKILL), fsynced and linked in
 * at commit through /proc/self/fd: straight to the name when it is free,
 * else to a temporary name renamed over it. Where the filesystem has no
 * O_TMPFILE the data goes to "<dir>/.<name>.XXXXXX", created
 * O_EXCL|O_NOFOLLOW and renamed at commit (capture/tool/partial_cleanup.c
 * removes that name on a fatal signal).
 *
 * A symlink at the name is followed only when the caller or root owns it
 * (/dev/stdout), and never replaced; one owned by another user is
 * refused. A character device (/dev/null, a terminal) or a FIFO with a
 * reader (a pipe) is written straight to; any other file that is not a
 * regular one (a socket, a folder, a FIFO nothing reads) is refused. */
typedef struct pyspy_out_file {
    int fd;     /* open O_RDWR; -1 when closed */
    char *path; /* the final name */
    char *tmp;  /* the named temporary, NULL while unnamed */
    mode_t mode;
    bool device;           /* a character device or FIFO, written in place */
    bool follow;           /* path was a trusted symlink (see start()) */
    bool write_failed;     /* a write through pyspy_out_stream failed: */
    pyspy_error write_err; /* why, naming the final path */
} pyspy_out_file;

/* mode as for open(2) (the umask applies). */
int pyspy_out_open(pyspy_out_file *o, const char *path, mode_t mode,
                   pyspy_error *err);
/* pyspy_out_open without trying O_TMPFILE: what it falls back to where
 * the filesystem has none (its own entry so that path can be tested on
 * filesystems that do). */
int pyspy_out_open_named(pyspy_out_file *o, const char *path, mode_t mode,
                         pyspy_error *err);
/* What pyspy_out_open would refuse (a symlink, a FIFO, a folder, a
 * missing folder), said before the work whose result it is to hold: a
 * minute of sampling, a target's pause. */
int pyspy_out_check(const char *path, pyspy_error *err);
/* Flushes the data to disk (fsync), puts the file under its name and
 * closes it. On failure nothing new is left under any name. */
int pyspy_out_commit(pyspy_out_file *o, pyspy_error *err);
/* Closes and removes what is not committed; safe to call after a commit
 * or a failed open, and twice. */
void pyspy_out_abort(pyspy_out_file *o);

/* A stdio stream onto o's file (for the writers of formats/), whose
 * writes go through pyspy_write_full, so a failure is remembered with its
 * reason in o->write_err ("no space left on device writing PATH") rather
 * than stdio's bare error flag. fclose it before pyspy_out_commit. */
FILE *pyspy_out_stream(pyspy_out_file *o);

/* The whole of the above for a writer that takes a stdio stream: opens
 * path, runs fill on a stream onto it and commits when fill returns 0.
 * err names path ("no space left on device writing PATH", "writing
 * 'PATH': WHY"). */
int pyspy_out_write(const char *path, mode_t mode,
                    int (*fill)(FILE *f, void *ctx, pyspy_error *err),
                    void *ctx, pyspy_error *err);

/* "<dir of path>/.<base name of path>." followed by six characters from
 * [A-Za-z0-9]: a fresh name for a temporary beside path (malloc'd). */
char *pyspy_temp_name_for(const char *path);

#endif
