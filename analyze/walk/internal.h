/* Internals of the stack walker shared by the files of analyze/walk/:
 * the walk itself, code_info.c, short_filename.c, os_thread_id.c and
 * thread_activity.c. */
#ifndef PYSPY_ANALYZE_WALK_INTERNAL_H
#define PYSPY_ANALYZE_WALK_INTERNAL_H

#include "analyze/walk/walker.h"
#include "capture/base/map.h"
#include <pyspy.h>

/* Hard bounds: remote data is hostile, so every chain is cut here. */
#define PYSPY_MAX_FRAMES 4096
#define PYSPY_MAX_THREADS 4096
#define PYSPY_MAX_INTERPRETERS 256

/* ---------------------------------------------------------- short filenames */

typedef struct pyspy_sys_path {
    char **dirs; /* absolute entries without a trailing '/' */
    size_t n;
    uint64_t gen; /* unique to each read (0: never read): code entries
                     keep their short filename for one gen */
    bool damaged; /* read from bytes that failed an integrity check */
} pyspy_sys_path;

/* Reads sys.path from an interpreter's sysdict (missing or unreadable:
 * an empty list, not an error). */
void pyspy_sys_path_read(pyspy_memsrc *src, const pyspy_python *py,
                         uint64_t interp, pyspy_sys_path *out);
void pyspy_sys_path_free(pyspy_sys_path *p);
/* The filename relative to the longest sys.path entry that holds it;
 * else its last component for an absolute or relative path; names that
 * are not paths ("<string>") unchanged. A suffix of filename. */
const char *pyspy_short_filename(const pyspy_sys_path *p, const char *filename);

/* ---------------------------------------------------- code objects (cached) */

#define PYSPY_LINE_MEMO 4

typedef struct pyspy_code_info {
    uint64_t addr;
    bool valid; /* a readable code object */
    /* Not valid because memory it needs could not be read (not because
     * it is something else, such as None in a 3.13+ frame). */
    bool unreadable;
    /* Read from bytes that failed an integrity check. */
    bool damaged;
    char *name;
    char *filename;
    int firstlineno;
    uint8_t *linetable;
    size_t linetable_len;
    /* What the entry was read from: a later walk trusts it only while the
     * object at addr still has this type and these field values. */
    uint64_t sig_type, sig_name, sig_filename, sig_table;
    int32_t sig_first;
    uint64_t gen; /* the walk that last read or checked it */
    /* A sampler meets the same few (code, instruction) pairs every
     * sample: their lines and the short filename are kept, not worked out
     * again (the line table decode and the sys.path match were a fifth of
     * a steady sample's instructions). */
    int64_t memo_lasti[PYSPY_LINE_MEMO];
    int memo_line[PYSPY_LINE_MEMO];
    uint8_t memo_n, memo_next;
    uint64_t short_gen; /* the pyspy_sys_path.gen short_off is for; 0 none */
    size_t short_off;
} pyspy_code_info;

typedef struct pyspy_code_cache {
    pyspy_code_info *entries; /* in the order first read */
    size_t n, cap;
    pyspy_map index;      /* address -> position in entries */
    uint64_t gen;         /* bumped by pyspy_code_cache_next_walk */
    pyspy_code_info none; /* what address 0 gives: never valid */
} pyspy_code_cache;

/* The code object at addr, read once per walk; NULL only when out of
 * memory. An unreadable object gives an entry with valid == false. A
 * cache kept across walks (a sampler's) re-checks an entry from an
 * earlier walk with a few word reads instead of reading the object, its
 * strings and its line table again: code objects are immutable, so the
 * same fields at the same address mean the same code, and a freed and
 * reused address shows as different fields. */
pyspy_code_info *pyspy_code_get(pyspy_code_cache *cache, pyspy_memsrc *src,
                                const pyspy_python *py, uint64_t addr);
void pyspy_code_cache_free(pyspy_code_cache *cache);
/* Starts a new walk: entries from earlier ones are re-checked on use. */
void pyspy_code_cache_next_walk(pyspy_code_cache *cache);
/* The line a valid entry's code was at, lasti bytes into its bytecode
 * (-1 unknown), as its interpreter's line table says. */
int pyspy_code_line(const pyspy_python *py, pyspy_code_info *c, int64_t lasti);
/* pyspy_short_filename of a valid entry's filename under sp. */
const char *pyspy_code_short_filename(pyspy_code_info *c,
                                      const pyspy_sys_path *sp);

/* ------------------------------------------------------------------ frames */

/* Walks one thread state's frame chain into frames (innermost first). */
int pyspy_walk_frames(pyspy_memsrc *src, const pyspy_python *py,
                      const pyspy_walk_opts *opts, pyspy_code_cache *cache,
                      const pyspy_sys_path *sp, uint64_t tstate,
                      pyspy_frame **frames, size_t *n);

/* A set of addresses for cycle detection (bounded by its users). The
 * first few entries sit in the struct, so the short chains of a
 * sampler's every walk allocate nothing. Zero-initialised is empty. */
#define PYSPY_ADDR_SET_FEW 16

typedef struct pyspy_addr_set {
    pyspy_map map; /* empty while the entries fit in few */
    size_t nfew;
    uint64_t few[PYSPY_ADDR_SET_FEW];
} pyspy_addr_set;
/* Adds addr; *added is false when it was there already (0, never a
 * remote object, is never kept: always added). -1 out of memory. */
int pyspy_addr_set_add(pyspy_addr_set *s, uint64_t addr, bool *added);
void pyspy_addr_set_free(pyspy_addr_set *s);

/* ------------------------------------------------------ OS threads, activity
 */

/* The source's threads by the ids the process itself knows them by (its
 * own PID namespace's): the source's tids unless some thread's ns_tid
 * differs from its tid, then a sorted index of ns_tid built on first use.
 * Zero-initialised is empty; one per walk (the thread list may change
 * between walks). */
typedef struct pyspy_own_tid {
    int ns_tid;
    size_t at; /* index in src->threads */
} pyspy_own_tid;
typedef struct pyspy_own_tids {
    bool built, nested;
    pyspy_own_tid *v; /* NULL outside a namespace (or out of memory) */
    size_t n;
} pyspy_own_tids;
const pyspy_thread *pyspy_thread_by_own_tid(const pyspy_memsrc *src,
                                            pyspy_own_tids *m, int tid);
/* Whether the process's own ids differ from the source's. */
bool pyspy_own_tids_nested(const pyspy_memsrc *src, pyspy_own_tids *m);
void pyspy_own_tids_free(pyspy_own_tids *m);

/* The memory source's thread whose pthread (TLS block) is pthread_id: by
 * its FS base register, else by glibc's struct pthread tid field checked
 * against the source's thread list. NULL when unknown. */
const pyspy_thread *pyspy_os_thread_for(pyspy_memsrc *src, pyspy_own_tids *m,
                                        uint64_t pthread_id);
/* By the source's (host's) tid. */
const pyspy_thread *pyspy_thread_by_tid(const pyspy_memsrc *src, int tid);
/* The name the thread gave itself (its comm), for a thread Python has
 * no name for; NULL when it has none of its own: empty, or the main
 * thread's, which every new thread inherits and which is the process's
 * name rather than the thread's (so the main thread never has one). */
const char *pyspy_os_thread_own_name(const pyspy_memsrc *src,
                                     const pyspy_thread *os);

/* Whether the kernel saw the thread running at capture: its recorded
 * state when there is one, else (kernel cores) whether it sat in a
 * blocking system call. */
bool pyspy_thread_active(const pyspy_thread *t);
/* py-spy's fallback: a thread whose innermost frame is a known waiting
 * function is idle whatever the kernel said. */
bool pyspy_frames_look_idle(const pyspy_frame *frames, size_t n);

/* ---------------------------------------------------------- the collector */

/* Whether the interpreter's garbage collector is running: 1 yes, 0 no,
 * -1 unknown (a version that keeps the state in statics, or unreadable).
 * When it runs, *start_frame is the frame that started it where the
 * version records one (3.15+), else 0. */
int pyspy_gc_collecting(pyspy_memsrc *src, const pyspy_python *py,
                        uint64_t interp, uint64_t *start_frame);
/* Whether frame is on the thread state's frame chain. */
bool pyspy_gc_frame_on_thread(pyspy_memsrc *src, const pyspy_python *py,
                              uint64_t tstate, uint64_t frame);

/* Whether the thread state is handling an exception (sys.exc_info()
 * would give one); false when that cannot be read. */
bool pyspy_tstate_handling_exception(pyspy_memsrc *src, const pyspy_python *py,
                                     uint64_t tstate);

/* -------------------------------------------------------- sub-interpreters */

/* The thread state each trace was read from (traces[i] from v[i]). */
typedef struct pyspy_tstate_ref {
    uint64_t tstate;
    uint32_t interp_rank; /* place in the interpreter list: 0 the newest */
} pyspy_tstate_ref;

typedef struct pyspy_tstate_refs {
    pyspy_tstate_ref *v;
    size_t n, cap;
    uint32_t ninterps; /* interpreters walked */
} pyspy_tstate_refs;

int pyspy_tstate_refs_push(pyspy_tstate_refs *r, uint64_t tstate,
                           uint32_t interp_rank);
void pyspy_tstate_refs_free(pyspy_tstate_refs *r);
/* Makes the traces one per OS thread (analyze/walk/interps.c says how
 * a thread's interpreters are ordered and why); *n shrinks. Nothing to
 * do with one interpreter. -1 out of memory. */
int pyspy_merge_interpreters(pyspy_memsrc *src, const pyspy_python *py,
                             pyspy_trace *traces, size_t *n,
                             const pyspy_tstate_refs *refs);

/* ------------------------------------------------------------------ traces */

void pyspy_frames_free(pyspy_frame *frames, size_t n);
void pyspy_trace_clear(pyspy_trace *t);

#endif
