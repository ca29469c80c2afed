/* pyspy public C API.
 *
 * Three parts, matching ../shared/DESIGN.md:
 *   - errors and configuration (py-spy's Config, field by field);
 *   - the one seam: a memory source (live process, ELF core, zstd core,
 *     seekable-zstd snapshot), which is all the analyzer ever reads through;
 *   - the stack-trace model every output format is made from.
 *
 * Conventions: functions that can fail return 0 on success and -1 on
 * failure, filling a caller-provided pyspy_error with one human line;
 * what they produce goes through out parameters, never in-band in the
 * return value. Lookups that cannot fail return what they found, or
 * 0 / NULL for nothing (pyspy_memsrc_symbol, pyspy_memsrc_region_at), and
 * pyspy_memsrc_describe_missed returns a count. The library's internal
 * headers follow the same rule.
 *
 * libpyspy.so exports exactly the functions declared here (PYSPY_API);
 * everything else in the library is hidden. pkg-config's pyspy module
 * gives the flags (`pkg-config --cflags --libs pyspy`); in a build tree,
 * PKG_CONFIG_PATH=build/release/lib/pkgconfig finds the uninstalled one.
 */
#ifndef PYSPY_H
#define PYSPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h> /* struct iovec, for batched reads */

#ifdef __cplusplus
extern "C" {
#endif

#define PYSPY_VERSION "0.1.0"

/* Marks what libpyspy.so exports; the library is built with
 * -fvisibility=hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define PYSPY_API __attribute__((visibility("default")))
#else
#define PYSPY_API
#endif

/* ------------------------------------------------------------------ errors */

typedef struct pyspy_error {
    int code; /* 0 = no error; otherwise a PYSPY_E_* value */
    char msg[512];
} pyspy_error;

enum {
    PYSPY_E_OK = 0,
    PYSPY_E_GENERIC = 1,
    PYSPY_E_USAGE = 2,      /* bad command line: CLI exits 2 */
    PYSPY_E_IO = 3,         /* file or /proc problems */
    PYSPY_E_PERM = 4,       /* permission (ptrace_scope, sudo) */
    PYSPY_E_NOPROC = 5,     /* no such process / process exited */
    PYSPY_E_FORMAT = 6,     /* not a core, truncated, corrupted */
    PYSPY_E_UNREADABLE = 7, /* address not present in the memory source */
    PYSPY_E_NOPYTHON = 8,   /* no interpreter found */
    PYSPY_E_UNSUPPORTED = 9 /* unsupported Python version */
};

/* Sets code and a printf-style message. Returns -1 so callers can write
 * `return pyspy_error_set(err, ...)`. err may be NULL. */
PYSPY_API int pyspy_error_set(pyspy_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends "context: " to the existing message (keeps the code). */
PYSPY_API int pyspy_error_prefix(pyspy_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
PYSPY_API void pyspy_error_clear(pyspy_error *err);

/* ------------------------------------------------------------------ config */

typedef enum {
    PYSPY_LOCK = 0,          /* ptrace-stop every thread while reading */
    PYSPY_NONBLOCKING = 1,   /* read while it runs; tolerate torn reads */
    PYSPY_ALREADY_LOCKED = 2 /* someone else stopped it: don't touch */
} pyspy_lock_mode;

typedef enum {
    PYSPY_FORMAT_NONE = 0,
    PYSPY_FORMAT_FLAMEGRAPH,
    PYSPY_FORMAT_RAW,
    PYSPY_FORMAT_SPEEDSCOPE,
    PYSPY_FORMAT_CHROMETRACE,
    PYSPY_FORMAT_PPROF,
    PYSPY_FORMAT_AGGREGATE /* pyspy's own, for pyspy merge */
} pyspy_format;

typedef enum {
    PYSPY_LINENO_NONE = 0,
    PYSPY_LINENO_FIRST,
    PYSPY_LINENO_LAST_INSTRUCTION
} pyspy_lineno;

typedef enum {
    PYSPY_CMD_NONE = 0,
    PYSPY_CMD_RECORD,
    PYSPY_CMD_TOP,
    PYSPY_CMD_DUMP,
    PYSPY_CMD_COMPLETIONS,
    PYSPY_CMD_HELP,    /* --help printed; nothing else to do */
    PYSPY_CMD_VERSION, /* --version printed; nothing else to do */
    PYSPY_CMD_DIFF,    /* differential flamegraph of two recordings */
    PYSPY_CMD_MERGE    /* partial recordings into one */
} pyspy_command;

typedef struct pyspy_config {
    /* py-spy's Config */
    pyspy_lock_mode blocking;
    bool native;
    uint64_t sampling_rate;
    pyspy_format format; /* NONE = not given */
    bool show_line_numbers;
    bool duration_unlimited;
    uint64_t duration_secs; /* meaningful when !duration_unlimited */
    bool include_idle;
    bool include_thread_ids;
    bool subprocesses;
    bool gil_only;
    bool hide_progress;
    bool capture_output;
    bool dump_json;
    uint64_t dump_locals;
    bool full_filenames;
    pyspy_lineno lineno;
    double refresh_seconds;
    char *core_filename; /* NULL = none */

    /* CLI fields */
    pyspy_command command;
    int pid;               /* 0 = none */
    char **python_program; /* NULL-terminated argv, NULL = none */
    int python_program_count;
    char *filename;          /* -o/--output, NULL = default */
    char *completions_shell; /* bash | zsh | fish */
    char **inputs;           /* positional snapshot/core paths (dump, record) */
    int ninputs;
    int jobs; /* -j for offline record; 0 = number of CPUs */
    /* For cores read on another host (pystack's flags): the interpreter's
     * file, and colon-separated folders holding the libraries. */
    char *executable;
    char *lib_search_path;
    /* record --gc: a <GC> frame on top of each sample of a thread running
     * a garbage collection. */
    bool gc_frames;
    /* record --mode exception: only samples of threads handling an
     * exception (--mode wall|cpu|gil set include_idle / gil_only). */
    bool exception_only;
    /* Read snapshots whose integrity checks fail, marking what was read
     * from the damage, instead of refusing them. */
    bool allow_damaged;
    /* dump --snapshot: also write what the dump read as a lean snapshot
     * (the pages the walk read, the threads, the modules) to this file;
     * NULL = none. */
    char *lean_snapshot;
    /* --max-size: bytes of a stream input ("-", /dev/stdin, a FIFO)
     * spooled at most; 0 = 64 GiB, as pyspy-capture's. */
    uint64_t max_stream_size;
} pyspy_config;

/* py-spy's defaults exactly. */
PYSPY_API pyspy_config pyspy_config_default(void);

/* Parses pyspy-analyze's (py-spy's) command line. argv[0] is the program
 * name. out receives any --help/--version/completions text the caller
 * should print (malloc'd, may be NULL). On error returns -1 with
 * err->code == PYSPY_E_USAGE and a message naming the offending argument.
 * Validation (contradictions) is part of parsing. */
PYSPY_API int pyspy_config_from_args(int argc, char **argv, pyspy_config *cfg,
                                     char **out, pyspy_error *err);
PYSPY_API int pyspy_config_validate(const pyspy_config *cfg, pyspy_error *err);
PYSPY_API void pyspy_config_free(pyspy_config *cfg);

/* "flamegraph", "raw", "speedscope", "chrometrace", "pprof",
 * "aggregate", case-insensitive.
 * Error text: "Invalid fileformat: X". */
PYSPY_API int pyspy_file_format_from_str(const char *s, pyspy_format *out,
                                         pyspy_error *err);
PYSPY_API const char *pyspy_file_format_name(pyspy_format f);

/* pyspy-capture's command line. */
typedef struct pyspy_capture_config {
    int pid;
    char *output; /* file, or directory for a series; NULL = default */
    pyspy_lock_mode blocking;
    char *core; /* --core PATH or "-" */
    bool subprocesses;
    bool hide_progress;
    bool filter_given;
    uint32_t filter; /* coredump_filter bits */
    uint64_t rate;   /* --rate for a series; 0 = single snapshot */
    uint64_t duration_secs;
    uint64_t memory_budget; /* 0 = half of available RAM */
    uint64_t max_size;      /* --core of a stream: bytes spooled at most;
                               0 = 64 GiB */
    pyspy_command command;  /* NONE, HELP or VERSION */
} pyspy_capture_config;

PYSPY_API pyspy_capture_config pyspy_capture_config_default(void);
PYSPY_API int pyspy_capture_config_from_args(int argc, char **argv,
                                             pyspy_capture_config *cfg,
                                             char **out, pyspy_error *err);
PYSPY_API void pyspy_capture_config_free(pyspy_capture_config *cfg);

/* ------------------------------------------------------ memory source seam */

enum {
    PYSPY_PERM_R = 1,
    PYSPY_PERM_W = 2,
    PYSPY_PERM_X = 4,
    PYSPY_PERM_SHARED = 8 /* 's' in /proc/PID/maps; otherwise private */
};

typedef struct pyspy_region {
    uint64_t start, end; /* [start, end) */
    uint64_t file_offset;
    uint32_t perms; /* PYSPY_PERM_* */
    bool present;   /* false: excluded from the snapshot (never zeros) */
    char *path;     /* NULL for anonymous */
    uint8_t build_id[20];
    uint8_t build_id_len;
    /* Absent regions: why they could not be served from the file they
     * map (PYSPY_ABSENT_*), and whether a read wanted them, so that an
     * analysis can say what it missed and what to do about it. */
    uint8_t absent_why;
    bool wanted;
} pyspy_region;

enum {
    PYSPY_ABSENT_UNKNOWN = 0,  /* left out of the file; not a file's page */
    PYSPY_ABSENT_NO_FILE,      /* the file it maps is not on this host */
    PYSPY_ABSENT_OTHER_BUILD,  /* that file's build-id differs */
    PYSPY_ABSENT_UNVERIFIABLE, /* the core holds nothing to check it by */
    PYSPY_ABSENT_MUTABLE,      /* shared or writable: the file is no
                                  proof of what the process held */
    /* A lean snapshot's region (present) of which a read wanted pages
     * the analysis that took it did not read. */
    PYSPY_ABSENT_LEAN
};

/* Registers are the x86_64 user_regs_struct (NT_PRSTATUS pr_reg) order. */
#define PYSPY_NREGS 27
enum {
    PYSPY_REG_RBP = 4,
    PYSPY_REG_RIP = 16,
    PYSPY_REG_RSP = 19,
    PYSPY_REG_ORIG_RAX = 15
};

typedef struct pyspy_thread {
    int tid; /* as /proc names it (the host's PID namespace) */
    /* The same thread's id in the process's own PID namespace (what
     * gettid() and Python's native_thread_id say inside a container);
     * equal to tid outside one, 0 unknown (cores, older snapshots). */
    int ns_tid;
    char name[17]; /* /proc comm */
    char state;    /* kernel state before stopping: R S D T t Z ... */
    long syscall;  /* current syscall number, -1 if running user code,
                      -2 unknown */
    bool has_regs;
    uint64_t regs[PYSPY_NREGS];
    bool has_fpregs;
    uint8_t fpregs[512]; /* user_fpregs_struct (NT_FPREGSET) */
    int signal;          /* pending/killing signal from the core, 0 if none */
    bool crashed;        /* the thread that took the fatal signal */
} pyspy_thread;

typedef struct pyspy_symbol {
    char *name;
    uint64_t value; /* link-time value (add the module's load bias) */
    uint64_t size;
    uint8_t type; /* STT_* */
} pyspy_symbol;

/* One mapped ELF object with what analysis needs from its file. */
typedef struct pyspy_module {
    char *path;
    uint64_t load_bias;  /* runtime address = value + load_bias */
    uint64_t start, end; /* address range of all its mappings */
    uint8_t build_id[20];
    uint8_t build_id_len;
    /* The symbols read so far, in any order; NULL if none. A live source
     * reads a module's tables from its file on the first lookup that
     * needs them (pyspy_memsrc_symbol), so until then they may be absent
     * or the exported (.dynsym) ones only. */
    pyspy_symbol *symbols;
    size_t nsymbols;
    /* The library's own: the lookup index and what is still to be read
     * (capture/elf/symbols.h). */
    struct pyspy_module_symtab *symtab;
} pyspy_module;

typedef struct pyspy_process_info {
    int pid, ppid;
    char *exe;
    char *cmdline;           /* arguments joined with spaces */
    int64_t capture_time_ns; /* CLOCK_REALTIME; 0 unknown */
    pyspy_lock_mode lock;
    uint64_t pause_ns;
    int crash_signal; /* from a kernel core; 0 if none */
    int ns_pid;       /* pid in its own PID namespace (see ns_tid), 0 unknown */
} pyspy_process_info;

typedef struct pyspy_memsrc pyspy_memsrc;

typedef struct pyspy_memsrc_ops {
    /* What the source is, for messages and tests only ("live", "ram",
     * "core", "zstd-core", "snapshot", ...): never a question to branch
     * on. What a consumer may ask of a source is the operations below;
     * every one but read is optional (NULL where a source cannot provide
     * it), and the pyspy_memsrc_* functions that call them say what a
     * missing one means. */
    const char *kind;
    /* Reads exactly len bytes or fails (PYSPY_E_UNREADABLE): partial reads
     * are errors, never garbage. */
    int (*read)(pyspy_memsrc *src, uint64_t addr, void *buf, size_t len,
                pyspy_error *err);
    /* A running process: stop/resume per the lock mode, and re-read
     * threads and their kernel state. */
    int (*suspend)(pyspy_memsrc *src, pyspy_error *err);
    void (*resume)(pyspy_memsrc *src);
    int (*refresh)(pyspy_memsrc *src, pyspy_error *err);
    void (*close)(pyspy_memsrc *src);
    /* Batched reads: n (local, remote) pairs of equal lengths, many per
     * system call; ok[i] tells which pairs were read in full, the return
     * how many were. Only sources for which a batch is cheaper than its
     * reads one by one have it. */
    size_t (*readv)(pyspy_memsrc *src, const struct iovec *local,
                    const struct iovec *remote, size_t n, bool *ok);
    /* A sampling hint: the source will serve a sampler that reads
     * registers only when need_regs and the threads' kernel states only
     * when need_states, from the calling thread. */
    void (*sampling)(pyspy_memsrc *src, bool need_regs, bool need_states);
    /* After a walk between suspend and resume: false when a thread that
     * suspend left running (it slept) may have run meanwhile, so the walk
     * may be torn; the next suspend then stops every thread. */
    bool (*check_sleepers)(pyspy_memsrc *src);
    /* The folder the target's file paths are relative to on this host
     * ("/proc/PID/root" for a live process, which reaches files in its
     * mount namespace); "" or NULL: as named. */
    const char *(*file_root)(const pyspy_memsrc *src);
    /* True while suspend holds the target stopped (it may have been
     * stopped already, by someone else). */
    bool (*is_stopped)(const pyspy_memsrc *src);
    /* Re-reads the regions (and the modules when the files mapped moved):
     * for a copy that must match the moment of a stop. */
    int (*reread_regions)(pyspy_memsrc *src, pyspy_error *err);
} pyspy_memsrc_ops;

struct pyspy_memsrc {
    const pyspy_memsrc_ops *ops;
    void *impl;
    pyspy_process_info proc;
    pyspy_region *regions;
    size_t nregions;
    pyspy_thread *threads;
    size_t nthreads;
    pyspy_module *modules;
    size_t nmodules;
    char *origin; /* file path or "pid N", for messages */
    /* Raw auxiliary vector (Elf64_auxv_t pairs, as in NT_AUXV and
     * /proc/PID/auxv); NULL when unknown. Owned by the source. */
    uint8_t *auxv;
    size_t auxv_len;
    /* Integrity (what a file carries to check itself by: a snapshot's
     * region digests, zstd frame checksums, the seek table). damage is
     * the first damage met, one line naming the file and the byte or
     * address range (NULL: none met so far); damaged_reads counts reads
     * that touched damage, so a walk can mark what it read from it by
     * comparing the count before and after. A read that fails a check
     * fails unless the file was opened with allow_damaged; even then it
     * is counted. Owned by the source. */
    char *damage;
    uint64_t damaged_reads;
};

/* Opens a live process. */
PYSPY_API int pyspy_memsrc_open_pid(int pid, pyspy_lock_mode lock,
                                    pyspy_memsrc **out, pyspy_error *err);
/* Opens a snapshot, a plain ELF core or a zstd-compressed core; the kind
 * is detected from the content, not the name. "-" is stdin; stdin, a
 * pipe, FIFO or device is read as a stream, never blocked on. */
PYSPY_API int pyspy_memsrc_open_file(const char *path, pyspy_memsrc **out,
                                     pyspy_error *err);
PYSPY_API void pyspy_memsrc_close(pyspy_memsrc *src);

/* Where the files a core maps are looked for when its pages of them are
 * absent (kernel cores and gcore leave out read-only file pages). */
typedef struct pyspy_file_opts {
    const char *executable; /* the main program's file; NULL: as named */
    /* Colon-separated folders searched first, for a core analysed on
     * another host: DIR/<base name> and DIR/<path as named>. */
    const char *lib_search_path;
    /* Bytes that fail an integrity check are still returned where they
     * can be decoded (counted in damaged_reads, named in damage) rather
     * than failing the read; a seek table that does not match its file
     * is passed over and the file read as one stream. */
    bool allow_damaged;
    /* A stream ("-", a pipe, FIFO or device) is spooled to a temporary
     * file; at most this many bytes (0: 64 GiB). */
    uint64_t max_stream_size;
} pyspy_file_opts;

/* pyspy_memsrc_open_file with those places to look; opts may be NULL. */
PYSPY_API int pyspy_memsrc_open_file_with(const char *path,
                                          const pyspy_file_opts *opts,
                                          pyspy_memsrc **out, pyspy_error *err);
/* One line naming the absent regions reads wanted (and why each could
 * not be filled), or "" when nothing was missed; returns how many. */
PYSPY_API size_t pyspy_memsrc_describe_missed(const pyspy_memsrc *src,
                                              char *buf, size_t len);

PYSPY_API int pyspy_memsrc_read(pyspy_memsrc *src, uint64_t addr, void *buf,
                                size_t len, pyspy_error *err);
/* The optional operations of pyspy_memsrc_ops, each with what it means
 * when the source has none: suspend, resume and refresh do nothing;
 * readv reads the pairs one by one; sampling does nothing;
 * check_sleepers is true (nothing was left running); file_root is ""
 * (paths as named); is_stopped is false; reread_regions does nothing. */
PYSPY_API int pyspy_memsrc_suspend(pyspy_memsrc *src, pyspy_error *err);
PYSPY_API void pyspy_memsrc_resume(pyspy_memsrc *src);
PYSPY_API int pyspy_memsrc_refresh(pyspy_memsrc *src, pyspy_error *err);
PYSPY_API size_t pyspy_memsrc_readv(pyspy_memsrc *src,
                                    const struct iovec *local,
                                    const struct iovec *remote, size_t n,
                                    bool *ok);
PYSPY_API void pyspy_memsrc_sampling(pyspy_memsrc *src, bool need_regs,
                                     bool need_states);
PYSPY_API bool pyspy_memsrc_check_sleepers(pyspy_memsrc *src);
PYSPY_API const char *pyspy_memsrc_file_root(const pyspy_memsrc *src);
PYSPY_API bool pyspy_memsrc_is_stopped(const pyspy_memsrc *src);
PYSPY_API int pyspy_memsrc_reread_regions(pyspy_memsrc *src, pyspy_error *err);
/* Reads a NUL-terminated string of at most max-1 bytes. */
PYSPY_API int pyspy_memsrc_read_cstr(pyspy_memsrc *src, uint64_t addr,
                                     char *buf, size_t max, pyspy_error *err);
PYSPY_API const pyspy_region *pyspy_memsrc_region_at(const pyspy_memsrc *src,
                                                     uint64_t addr);
/* Finds a symbol by exact name in modules whose path contains
 * module_hint (NULL = any). Returns the runtime address, 0 if absent. */
PYSPY_API uint64_t pyspy_memsrc_symbol(const pyspy_memsrc *src,
                                       const char *module_hint,
                                       const char *name, uint64_t *size_out);

/* ------------------------------------------------------------ stack traces */

typedef struct pyspy_local {
    char *name;
    uint64_t addr;
    bool is_arg;
    char *repr;   /* NULL when not requested / unreadable */
    bool damaged; /* read from bytes that failed an integrity check */
} pyspy_local;

typedef struct pyspy_frame {
    char *name;
    char *filename;
    char *short_filename; /* NULL = same as filename */
    char *module;         /* native frames: the shared object; else NULL */
    int line;             /* 0 = none */
    bool is_native;
    bool is_entry;   /* first frame of an eval-loop invocation */
    bool unreadable; /* frame could not be read: chain cut here */
    /* Some of what the frame shows (its header, code object, strings,
     * line table or locals) was read from bytes that failed an
     * integrity check (only read at all with allow_damaged). */
    bool damaged;
    /* The interpreter whose frame this is (0: the main one); frames of
     * sub-interpreters on one OS thread belong to that thread. */
    int64_t interpreter_id;
    /* is_entry frames (3.12+): where that eval-loop invocation keeps its
     * entry frame on the thread's C stack, 0 unknown. --native merges
     * the invocation's Python frames at the native frame holding it. */
    uint64_t entry_frame_addr;
    pyspy_local *locals;
    size_t nlocals;
} pyspy_frame;

typedef struct pyspy_trace {
    int pid;
    uint64_t thread_id;    /* pthread id (PyThreadState.thread_id) */
    uint64_t os_thread_id; /* kernel tid, 0 unknown */
    /* The kernel tid in the process's own PID namespace when that differs
     * from os_thread_id (a container), else 0. */
    uint64_t ns_thread_id;
    char *thread_name; /* NULL unknown */
    bool active;
    bool owns_gil;
    bool crashed; /* thread that took the fatal signal */
    /* Some of the stack could not be read (memory absent from a core,
     * an unreadable frame or code object): frames are what could be
     * read, never presented as the whole stack. */
    bool incomplete;
    /* The thread is running the garbage collector (a collection that
     * started on it is in progress; see pyspy_traces.gc_collecting). */
    bool gc_collecting;
    /* The thread is handling an exception (sys.exc_info() would give
     * one); read only for record --mode exception, else false. */
    bool handling_exception;
    /* The thread's own fields (thread state, name) were read from bytes
     * that failed an integrity check; frames say so each for itself. */
    bool damaged;
    pyspy_frame *frames; /* innermost first */
    size_t nframes;
} pyspy_trace;

typedef struct pyspy_traces {
    int pid, ppid;
    char *command_line;
    char *executable;
    char *python_version; /* "3.11.2" */
    pyspy_trace *traces;
    size_t ntraces;
    /* Lists of thread states or interpreters that ended at memory that
     * could not be read: threads past that point are not in traces. */
    size_t lists_cut;
    /* A garbage collection is running in some interpreter (read from the
     * collector's state; false where the version does not say), whether
     * or not the thread running it could be told (gc_collecting of a
     * trace). */
    bool gc_collecting;
} pyspy_traces;

/* What pyspy_traces_read fills in beyond the frames (dump's options). */
typedef struct pyspy_trace_opts {
    pyspy_lineno lineno;
    uint64_t locals;     /* 0 none; 1 short reprs, 2+ longer (--locals) */
    bool full_filenames; /* else short_filename as py-spy shortens */
    bool native;         /* merge native frames (libdw) */
} pyspy_trace_opts;

/* py-spy dump's defaults: the line of the last instruction, no locals. */
PYSPY_API pyspy_trace_opts pyspy_trace_opts_default(void);

/* Finds the interpreter in src and reads every Python thread's stack
 * into out (free it with pyspy_traces_free); a live source is stopped
 * for the walk as its lock mode says and released. opts may be NULL
 * (the defaults). A stack that could not be read whole is marked
 * incomplete, not an error: -1 only when no interpreter was found or
 * nothing could be read. */
PYSPY_API int pyspy_traces_read(pyspy_memsrc *src, const pyspy_trace_opts *opts,
                                pyspy_traces *out, pyspy_error *err);
PYSPY_API void pyspy_traces_free(pyspy_traces *t);

#ifdef __cplusplus
}
#endif
#endif
