/* What /proc tells about a live process: mapped regions, threads and
 * their kernel state, process facts. (capture/proc_maps.c,
 * capture/proc_threads.c) */
#ifndef PYSPY_CAPTURE_PROC_H
#define PYSPY_CAPTURE_PROC_H

#include <pyspy.h>

/* Regions of /proc/PID/maps, sorted by start; build-ids left empty. */
int pyspy_proc_read_maps(int pid, pyspy_region **out, size_t *n,
                         pyspy_error *err);
void pyspy_regions_free(pyspy_region *r, size_t n);

/* Thread ids of /proc/PID/task, sorted. */
int pyspy_proc_list_tids(int pid, int **out, size_t *n, pyspy_error *err);
/* Fills tid, name, state and syscall of one thread from
 * /proc/PID/task/TID/{stat,syscall}; -1 when the thread is gone. Leaves
 * registers alone. */
int pyspy_proc_thread_state(int pid, int tid, pyspy_thread *t);
/* Every thread with its kernel state (registers not filled). */
int pyspy_proc_read_threads(int pid, pyspy_thread **out, size_t *n,
                            pyspy_error *err);
/* State letter of the process (its main thread) from /proc/PID/stat, 0 if
 * it does not exist. */
char pyspy_proc_state(int pid);
/* pid, ppid, exe and cmdline. */
int pyspy_proc_read_info(int pid, pyspy_process_info *info, pyspy_error *err);
void pyspy_process_info_free(pyspy_process_info *info);
/* Whole small /proc file, NUL-terminated; *len excludes the NUL. At most
 * max bytes. -1 with errno set on failure. */
int pyspy_proc_slurp(const char *path, size_t max, char **out, size_t *len);
/* Every descendant of pid (children, grandchildren, ...), from the ppid
 * field of /proc/N/stat. */
int pyspy_proc_descendants(int pid, int **out, size_t *n, pyspy_error *err);
/* The error for a pid that could not be opened, from errno. */
int pyspy_proc_error(int pid, int errnum, const char *what, pyspy_error *err);

#endif
