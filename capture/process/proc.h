/* What /proc tells about a live process: mapped regions, threads and
 * their kernel state, process facts. (capture/process/maps.c,
 * capture/process/threads.c) */
#ifndef PYSPY_CAPTURE_PROC_H
#define PYSPY_CAPTURE_PROC_H

#include <pyspy.h>

/* Regions of /proc/PID/maps, sorted by start; build-ids left empty. */
int pyspy_proc_read_maps(int pid, pyspy_region **out, size_t *n,
                         pyspy_error *err);
void pyspy_regions_free(pyspy_region *r, size_t n);

/* Fills tid, name, state and syscall of one thread from
 * /proc/PID/task/TID/{stat,syscall}; -1 when the thread is gone. Leaves
 * registers alone. */
int pyspy_proc_thread_state(int pid, int tid, pyspy_thread *t);
/* "pid (comm) S rest": comm into name (cut to 16), the state letter;
 * returns the text after it, NULL when malformed. */
const char *pyspy_proc_parse_stat(const char *buf, char name[17], char *state);
/* A decimal pid/tid, -1 if s is not one. */
int pyspy_proc_numeric(const char *s);

/* The threads of one process kept open between looks: the task directory
 * and each thread's stat (and syscall) file stay open and are re-read in
 * place, so a sampler asking a thousand times a second pays a read per
 * thread instead of an open, a read and a close of each file.
 * (capture/process/tasks.c) */
typedef struct pyspy_task_file {
    int tid, stat_fd, syscall_fd, sched_fd;
    int ns_tid;    /* read once: a thread keeps its ids */
    unsigned seen; /* listing generation */
} pyspy_task_file;
typedef struct pyspy_proc_tasks {
    int pid;
    int dir_fd;
    bool syscalls; /* read each thread's current syscall too */
    unsigned gen;
    pyspy_task_file *v;
    size_t n, cap;
    int *last; /* the last listing */
    size_t nlast;
    long leader_threads; /* num_threads of the last read of the leader's
                            stat, -1 if unknown */
    /* 1: the process lives in a PID namespace below this /proc's, so each
     * thread's own id is read from its status; 0: ids are the same; -1:
     * not looked at yet. */
    int ns_nested;
} pyspy_proc_tasks;
void pyspy_proc_tasks_init(pyspy_proc_tasks *t, int pid, bool syscalls);
/* Thread ids, sorted (caller frees); files of threads gone are closed. */
int pyspy_proc_tasks_list(pyspy_proc_tasks *t, int **out, size_t *n,
                          pyspy_error *err);
/* The last listing again when the thread count has not changed since
 * (a thread gone and another come is caught by the caller: the gone one
 * cannot be stopped, and the count then differs from what it holds). */
int pyspy_proc_tasks_list_quick(pyspy_proc_tasks *t, int **out, size_t *n,
                                pyspy_error *err);
/* How many threads the process has now (one fstat: the task directory's
 * link count is 2 + threads); -1 if unknown. */
long pyspy_proc_tasks_count(pyspy_proc_tasks *t);
/* As pyspy_proc_thread_state, through the kept files (syscall only when
 * asked for at init, else -2), with ns_tid. */
int pyspy_proc_tasks_state(pyspy_proc_tasks *t, int tid, pyspy_thread *out);
void pyspy_proc_tasks_close(pyspy_proc_tasks *t);
/* Stops reading syscalls and closes the syscall files already open (a
 * sampler's thousands of threads would otherwise keep them for nothing). */
void pyspy_proc_tasks_drop_syscalls(pyspy_proc_tasks *t);
/* Every thread listed with its state (registers not filled). */
int pyspy_proc_tasks_read(pyspy_proc_tasks *t, pyspy_thread **out, size_t *n,
                          pyspy_error *err);
/* From /proc/PID/task/TID/schedstat: nanoseconds run so far and how many
 * times the thread was put on a CPU. Either changes once it runs. */
int pyspy_proc_tasks_sched(pyspy_proc_tasks *t, int tid, uint64_t *run_ns,
                           uint64_t *slices);

/* Every thread with its kernel state (registers not filled). */
int pyspy_proc_read_threads(int pid, pyspy_thread **out, size_t *n,
                            pyspy_error *err);
/* The id of process pid (tid 0) or of its thread tid in its own PID
 * namespace, from the last NSpid entry of its status file, and in
 * *levels how many namespaces NSpid lists (1: the same as this /proc's);
 * 0 and *levels 0 when unknown (no such thread, a kernel before 4.1). */
int pyspy_proc_ns_id(int pid, int tid, int *levels);
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
/* The same from /proc/N/task/T/children, reading only the files of the
 * processes in pid's tree (a scan of /proc reads every process's stat):
 * cheap enough for a sampler to run every tick. PYSPY_E_UNSUPPORTED when
 * the kernel has no children files (CONFIG_PROC_CHILDREN). Sorted. */
int pyspy_proc_children_tree(int pid, int **out, size_t *n, pyspy_error *err);
/* The error for a pid that could not be opened, from errno. */
int pyspy_proc_error(int pid, int errnum, const char *what, pyspy_error *err);

/* Modules for every ELF file mapped in src->regions (live): symbols read
 * through /proc/PID/map_files or /proc/PID/root so containers work.
 * (capture/process/modules.c) */
int pyspy_live_load_modules(pyspy_memsrc *src, int pid, pyspy_error *err);
void pyspy_modules_free(pyspy_module *m, size_t n);

/* What decides whether this process may trace another, as far as /proc
 * tells. */
typedef struct pyspy_perm_facts {
    bool target_uid_known;
    bool target_same_user; /* its real, effective and saved uids are ours */
    unsigned target_uid;
    unsigned our_uid; /* effective */
    bool cap_sys_ptrace;
    int yama_scope; /* /proc/sys/kernel/yama/ptrace_scope; -1: no Yama */
} pyspy_perm_facts;

void pyspy_perm_facts_read(int pid, pyspy_perm_facts *f);
/* What to do about a permission error on the process described by f, as
 * one clause: only restrictions actually present are named (Yama's
 * ptrace_scope only where Yama is on and set to a value that blocks). */
void pyspy_perm_advice(const pyspy_perm_facts *f, char *buf, size_t len);

#endif
