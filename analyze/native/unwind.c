/* Native unwinding with libdw's unwinder driven entirely by the memory
 * source: our own Dwfl_Thread_Callbacks give it registers from
 * src->threads and memory from pyspy_memsrc_read, so live processes,
 * snapshots and cores unwind the same way and libdw never ptraces.
 * Modules come from this host's files when they are the same build, else
 * from the ELF image rebuilt out of the target's memory. */
#include "analyze/native/unwind.h"
#include "analyze/walk/internal.h"
#include "capture/base/array.h"
#include "capture/base/map.h"
#include "capture/elf/symbols.h"

#include <dlfcn.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <gelf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct unwind_ctx {
    pyspy_memsrc *src;
    const pyspy_thread *thread;
    uint64_t pcs[PYSPY_MAX_NATIVE_FRAMES];
    uint64_t sps[PYSPY_MAX_NATIVE_FRAMES];
    bool activation[PYSPY_MAX_NATIVE_FRAMES];
    size_t n;
} unwind_ctx;

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_argp) {
    (void)dwfl;
    unwind_ctx *c = arg;
    /* Only the requested thread is ever unwound. */
    if (*thread_argp)
        return 0;
    *thread_argp = (void *)c->thread;
    return c->thread->tid;
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp) {
    (void)dwfl;
    unwind_ctx *c = arg;
    if (tid != c->thread->tid)
        return false;
    *thread_argp = (void *)c->thread;
    return true;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result,
                        void *arg) {
    (void)dwfl;
    unwind_ctx *c = arg;
    uint64_t v;
    if (pyspy_memsrc_read(c->src, addr, &v, sizeof v, NULL) < 0)
        return false;
    *result = v;
    return true;
}

/* DWARF numbering for x86_64 (rax rdx rcx rbx rsi rdi rbp rsp r8..r15
 * rip) as indexes into user_regs_struct. */
static const int dwarf_to_user[17] = {10, 12, 11, 5, 13, 14, 4, 19, 9,
                                      8,  7,  6,  3, 2,  1,  0, 16};

static bool set_initial_registers(Dwfl_Thread *thread, void *thread_arg) {
    const pyspy_thread *t = thread_arg;
    Dwarf_Word regs[17];
    for (int i = 0; i < 17; i++)
        regs[i] = t->regs[dwarf_to_user[i]];
    return dwfl_thread_state_registers(thread, 0, 17, regs);
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
    .next_thread = next_thread,
    .get_thread = get_thread,
    .memory_read = memory_read,
    .set_initial_registers = set_initial_registers,
};

static int find_elf(Dwfl_Module *mod, void **userdata, const char *modname,
                    Dwarf_Addr base, char **file_name, Elf **elfp);
static char *debuginfo_path;
static const Dwfl_Callbacks dwfl_callbacks = {
    .find_elf = find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &debuginfo_path,
};

/* The file a module without a build-id was read from: nothing else
 * tells one build of it from another at the same path. All zero when
 * there was no file (the module came from the target's memory). */
typedef struct file_id {
    uint64_t dev, ino, size;
    int64_t mtime_ns;
} file_id;

/* Where this host has m's file: under the target's file root. */
static bool host_path(const char *root, const pyspy_module *m, char *path,
                      size_t pathlen) {
    if (!m->path || m->path[0] != '/')
        return false;
    int w = snprintf(path, pathlen, "%s%s", root, m->path);
    return w >= 0 && (size_t)w < pathlen;
}

/* The file at m's host path now, all zero when there is none; the
 * session records it when opened and a lookup compares it, the same
 * question both times, so a file that cannot be opened still matches. */
static file_id file_now(const char *root, const pyspy_module *m) {
    char path[4096 + 64];
    struct stat st;
    if (!host_path(root, m, path, sizeof path) || stat(path, &st) != 0 ||
        !S_ISREG(st.st_mode))
        return (file_id){0};
    return (file_id){
        (uint64_t)st.st_dev, (uint64_t)st.st_ino, (uint64_t)st.st_size,
        (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec};
}

/* Opens the host's copy of m when it is the same build as the target's
 * (a different build would give wrong unwind tables and names). */
static int open_module_file(const pyspy_memsrc *src, const pyspy_module *m,
                            char *path, size_t pathlen) {
    if (!host_path(pyspy_memsrc_file_root(src), m, path, pathlen))
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (m->build_id_len == 0)
        return fd;
    bool same = false;
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    if (elf) {
        const void *id = NULL;
        ssize_t len = dwelf_elf_gnu_build_id(elf, &id);
        same = len == m->build_id_len && memcmp(id, m->build_id, len) == 0;
        elf_end(elf);
    }
    if (!same) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Largest module image rebuilt from memory: bounds what a hostile
 * header can make us allocate. */
#define MAX_IMAGE (512u << 20)

/* A module whose file is not on this host, rebuilt from the target's
 * memory: its PT_LOAD segments placed at their file offsets (the
 * snapshot keeps file-backed private mappings), section headers dropped
 * as they are not mapped. libdw then finds .eh_frame through
 * PT_GNU_EH_FRAME and symbols through PT_DYNAMIC. */
typedef struct mem_image {
    pyspy_memsrc *src;
    uint64_t start; /* lowest mapping, where the ELF header is */
    bool used;
    uint8_t *buf;
} mem_image;

static void copy_segment(pyspy_memsrc *src, uint64_t addr, uint8_t *dst,
                         uint64_t len) {
    /* Page by page: an absent page stays zero instead of failing all. */
    uint64_t done = 0;
    while (done < len) {
        uint64_t chunk = 4096 - ((addr + done) & 4095);
        if (chunk > len - done)
            chunk = len - done;
        (void)pyspy_memsrc_read(src, addr + done, dst + done, chunk, NULL);
        done += chunk;
    }
}

static Elf *image_from_memory(mem_image *im) {
    Elf64_Ehdr eh;
    if (pyspy_memsrc_read(im->src, im->start, &eh, sizeof eh, NULL) < 0 ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 ||
        eh.e_phnum > 256 || eh.e_phoff > 65536)
        return NULL;
    Elf64_Phdr ph[256];
    if (pyspy_memsrc_read(im->src, im->start + eh.e_phoff, ph,
                          eh.e_phnum * sizeof ph[0], NULL) < 0)
        return NULL;
    uint64_t first_vaddr = UINT64_MAX, size = 0;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD)
            continue;
        if (ph[i].p_offset > MAX_IMAGE || ph[i].p_filesz > MAX_IMAGE)
            return NULL;
        if ((ph[i].p_vaddr & ~(uint64_t)4095) < first_vaddr)
            first_vaddr = ph[i].p_vaddr & ~(uint64_t)4095;
        if (ph[i].p_offset + ph[i].p_filesz > size)
            size = ph[i].p_offset + ph[i].p_filesz;
    }
    if (size == 0 || size > MAX_IMAGE || first_vaddr == UINT64_MAX ||
        size < sizeof eh + eh.e_phoff + eh.e_phnum * sizeof ph[0])
        return NULL;
    /* The header page sits at the module's lowest mapping. */
    uint64_t bias = im->start - first_vaddr;
    im->buf = calloc(1, size);
    if (!im->buf)
        return NULL;
    for (unsigned i = 0; i < eh.e_phnum; i++)
        if (ph[i].p_type == PT_LOAD)
            copy_segment(im->src, bias + ph[i].p_vaddr,
                         im->buf + ph[i].p_offset, ph[i].p_filesz);
    Elf64_Ehdr *h = (Elf64_Ehdr *)im->buf;
    h->e_shoff = 0;
    h->e_shnum = 0;
    h->e_shstrndx = 0;
    return elf_memory((char *)im->buf, size);
}

static int find_elf(Dwfl_Module *mod, void **userdata, const char *modname,
                    Dwarf_Addr base, char **file_name, Elf **elfp) {
    mem_image *im = *userdata;
    if (!im)
        return dwfl_build_id_find_elf(mod, userdata, modname, base, file_name,
                                      elfp);
    *elfp = image_from_memory(im);
    return -1;
}

static void report_from_memory(Dwfl *dwfl, pyspy_memsrc *src, const char *name,
                               uint64_t start, uint64_t end, mem_image *im) {
    if (end <= start)
        return;
    Dwfl_Module *mod = dwfl_report_module(dwfl, name, start, end);
    void **userdata = NULL;
    if (!mod ||
        !dwfl_module_info(mod, &userdata, NULL, NULL, NULL, NULL, NULL, NULL))
        return;
    *im = (mem_image){.src = src, .start = start, .used = true};
    *userdata = im;
}

/* images has room for src->nmodules + 1 entries (the last for the vDSO,
 * which is no file anywhere); their buffers outlive dwfl. */
/* files[i]: what module i without a build-id was read from. */
static void report_modules(Dwfl *dwfl, pyspy_memsrc *src, mem_image *images,
                           file_id *files) {
    char path[4096 + 64];
    for (size_t i = 0; i < src->nmodules; i++) {
        const pyspy_module *m = &src->modules[i];
        /* Before the open: a file replaced in between is then a
         * different key at the next lookup, not a stale session. */
        if (!m->build_id_len)
            files[i] = file_now(pyspy_memsrc_file_root(src), m);
        int fd = open_module_file(src, m, path, sizeof path);
        /* On success libdw owns fd. */
        if (fd >= 0 &&
            dwfl_report_elf(dwfl, m->path, path, fd, m->load_bias, false))
            continue;
        if (fd >= 0)
            close(fd);
        report_from_memory(dwfl, src, m->path ? m->path : "?", m->start, m->end,
                           &images[i]);
    }
    for (size_t i = 0; i < src->nregions; i++) {
        const pyspy_region *r = &src->regions[i];
        if (r->path && strcmp(r->path, "[vdso]") == 0 && r->present) {
            report_from_memory(dwfl, src, "[vdso]", r->start, r->end,
                               &images[src->nmodules]);
            break;
        }
    }
}

static int frame_cb(Dwfl_Frame *state, void *arg) {
    unwind_ctx *c = arg;
    Dwarf_Addr pc;
    bool activation = false;
    if (!dwfl_frame_pc(state, &pc, &activation))
        return DWARF_CB_ABORT;
    /* A zero or repeated pc is the end of a chain libdw cannot see. */
    if (pc == 0 || (c->n > 0 && c->pcs[c->n - 1] == pc && c->n >= 2 &&
                    c->pcs[c->n - 2] == pc))
        return DWARF_CB_ABORT;
    /* DWARF register 7 is rsp: in an unwound frame, the CFA of the
     * frame inside it. */
    Dwarf_Word sp = 0;
    if (dwfl_frame_reg(state, 7, &sp) != 0)
        sp = 0;
    c->pcs[c->n] = pc;
    c->sps[c->n] = sp;
    c->activation[c->n] = activation;
    c->n++;
    return c->n >= PYSPY_MAX_NATIVE_FRAMES ? DWARF_CB_ABORT : DWARF_CB_OK;
}

/* Names from the embedded symbol tables when libdw has no module. */
static const char *symbol_from_modules(const pyspy_memsrc *src, uint64_t pc,
                                       const char **module) {
    for (size_t i = 0; i < src->nmodules; i++) {
        pyspy_module *m = &src->modules[i];
        if (pc < m->start || pc >= m->end)
            continue;
        *module = m->path;
        pyspy_module_ensure_symbols(m);
        const pyspy_symbol *best = NULL;
        for (size_t k = 0; k < m->nsymbols; k++) {
            const pyspy_symbol *s = &m->symbols[k];
            if (s->type != STT_FUNC && s->type != STT_GNU_IFUNC)
                continue;
            uint64_t lo = s->value + m->load_bias;
            if (pc >= lo && (pc < lo + s->size || (s->size == 0 && pc == lo)))
                if (!best || s->value > best->value)
                    best = s;
        }
        return best ? best->name : NULL;
    }
    return NULL;
}

/* C++ names are demangled by the C++ runtime's own demangler, loaded on
 * first use (libstdc++ is on every Debian system; when it cannot be
 * loaded, names stay mangled). */
typedef char *(*demangle_fn)(const char *, char *, size_t *, int *);

static demangle_fn demangler;
static pthread_once_t demangler_once = PTHREAD_ONCE_INIT;

static void load_demangler(void) {
    void *h = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
    void *sym = h ? dlsym(h, "__cxa_demangle") : NULL;
    /* POSIX guarantees object-to-function pointer conversion for dlsym
     * results. */
    memcpy(&demangler, &sym, sizeof demangler);
}

static char *demangle(const char *name) {
    if (strncmp(name, "_Z", 2) != 0)
        return NULL;
    pthread_once(&demangler_once, load_demangler);
    demangle_fn fn = demangler;
    if (!fn)
        return NULL;
    int status = -1;
    char *out = fn(name, NULL, NULL, &status);
    if (status != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static int resolve(Dwfl *dwfl, pyspy_memsrc *src, uint64_t pc, bool activation,
                   pyspy_native_frame *f) {
    /* A return address may point past the call's last byte, into the
     * next function: look up the call itself. */
    uint64_t at = activation || pc == 0 ? pc : pc - 1;
    const char *name = NULL, *module = NULL;
    Dwfl_Module *mod = dwfl_addrmodule(dwfl, at);
    if (mod) {
        GElf_Off off;
        GElf_Sym sym;
        name = dwfl_module_addrinfo(mod, at, &off, &sym, NULL, NULL, NULL);
        module =
            dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    }
    if (!name) {
        const char *mod_path = NULL;
        name = symbol_from_modules(src, at, &mod_path);
        if (!module)
            module = mod_path;
    }
    f->pc = pc;
    /* Symbol versions ("@GLIBC_2.2.5") are not part of the name. */
    if (name && !(f->name = strndup(name, strcspn(name, "@"))))
        return -1;
    char *plain = f->name ? demangle(f->name) : NULL;
    if (plain) {
        free(f->name);
        f->name = plain;
    }
    if (module && !(f->module = strdup(module)))
        return -1;
    return 0;
}

void pyspy_native_frames_free(pyspy_native_frame *f, size_t n) {
    for (size_t i = 0; f && i < n; i++) {
        free(f[i].name);
        free(f[i].module);
    }
    free(f);
}

/* libdw sessions, kept between calls: reporting modules and loading their
 * symbol and unwind tables costs far more than an unwind, and record and
 * top unwind every thread at every sample. A session serves any source
 * whose modules are the same files at the same addresses, found in the
 * same place (its key), so also the next snapshot of one program; it is
 * used by one caller at a time, and a caller that finds every session of
 * its key taken opens another, so the workers of an offline record
 * unwind side by side. */

/* A resolved address: libdw looks a symbol up by scanning the module's
 * table, which was most of a --native sample's time (the target stopped
 * all along); samples meet the same few hundred addresses again and
 * again. Valid for the session's modules. */
typedef struct resolved {
    char *name, *module;
} resolved;
#define RESOLVED_MAX 8192u /* addresses; the table starts over when full */

/* What a session was opened for, module by module: the build-id where
 * the module has one, else the file it was read from (path and inode);
 * the path is kept either way, as libdw names frames' modules by it. */
typedef struct module_key {
    uint8_t build_id[20];
    uint8_t build_id_len;
    char *path;
    uint64_t start, end, load_bias;
} module_key;

struct pyspy_native_session {
    struct pyspy_native_session *next; /* in the pool */
    uint64_t hash;                     /* of the key below */
    char *root;                        /* pyspy_memsrc_file_root */
    module_key *mods;
    size_t nmods;
    file_id *files; /* per module, those without a build-id */
    uint64_t vdso;  /* start of the [vdso] mapping, 0 none */
    bool busy;      /* taken by a caller */
    uint64_t used;  /* pool clock when last given back */
    Dwfl *dwfl;
    bool attached;
    mem_image *images;
    size_t nimages;
    unwind_ctx *ctx;
    resolved *seen;
    size_t nseen, capseen;
    pyspy_map seen_at; /* address -> position in seen */
};
typedef struct pyspy_native_session session;

/* Sessions not in use that are kept: one per target of a sampler that
 * follows subprocesses, or per worker of an offline record; beyond it the
 * least recently used goes. */
#define MAX_IDLE 32

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static session *pool;
static uint64_t pool_clock;

static void seen_clear(session *s) {
    for (size_t i = 0; i < s->nseen; i++) {
        free(s->seen[i].name);
        free(s->seen[i].module);
    }
    free(s->seen);
    s->seen = NULL;
    s->nseen = s->capseen = 0;
    pyspy_map_free(&s->seen_at);
}

static char *dup_or_null(const char *s, bool *oom) {
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *oom = true;
    return d;
}

/* Keeps what at resolved to; out of memory only means it is not kept. */
static void remember(session *s, uint64_t at, const pyspy_native_frame *f) {
    if (s->nseen >= RESOLVED_MAX)
        seen_clear(s);
    resolved *grown = pyspy_array_grow(s->seen, &s->capseen, s->nseen + 1,
                                       sizeof *grown, 256);
    if (!grown)
        return;
    s->seen = grown;
    bool oom = false, added;
    resolved r = {dup_or_null(f->name, &oom), dup_or_null(f->module, &oom)};
    uint32_t i = (uint32_t)s->nseen;
    if (oom || pyspy_map_add(&s->seen_at, at, &i, &added) != 0) {
        free(r.name);
        free(r.module);
        return;
    }
    s->seen[s->nseen++] = r;
}

/* resolve() through the session's table of addresses seen before. */
static int resolve_seen(session *s, pyspy_memsrc *src, uint64_t pc,
                        bool activation, pyspy_native_frame *f) {
    uint64_t at = activation || pc == 0 ? pc : pc - 1;
    uint32_t i;
    if (at && pyspy_map_find(&s->seen_at, at, &i)) {
        bool oom = false;
        f->pc = pc;
        f->name = dup_or_null(s->seen[i].name, &oom);
        f->module = dup_or_null(s->seen[i].module, &oom);
        return oom ? -1 : 0;
    }
    if (resolve(s->dwfl, src, pc, activation, f) < 0)
        return -1;
    if (at)
        remember(s, at, f);
    return 0;
}

static void session_free(session *s) {
    if (!s)
        return;
    seen_clear(s);
    if (s->dwfl)
        dwfl_end(s->dwfl);
    for (size_t i = 0; s->images && i < s->nimages; i++)
        free(s->images[i].buf);
    free(s->images);
    free(s->ctx);
    for (size_t i = 0; s->mods && i < s->nmods; i++)
        free(s->mods[i].path);
    free(s->mods);
    free(s->files);
    free(s->root);
    free(s);
}

static uint64_t mix(uint64_t h, uint64_t v) {
    h = (h ^ v) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

static uint64_t mix_str(uint64_t h, const char *p) {
    for (; p && *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    return mix(h, 0);
}

static uint64_t vdso_start(const pyspy_memsrc *src) {
    for (size_t i = 0; i < src->nregions; i++) {
        const char *p = src->regions[i].path;
        if (p && p[0] == '[' && strcmp(p, "[vdso]") == 0)
            return src->regions[i].start;
    }
    return 0;
}

/* The key's hash: build-ids rather than paths where there are any, so a
 * lookup hashes a few words per module. */
static uint64_t key_hash(const pyspy_memsrc *src, const char *root,
                         uint64_t vdso) {
    uint64_t h = mix(mix_str(0xcbf29ce484222325ull, root), src->nmodules);
    for (size_t i = 0; i < src->nmodules; i++) {
        const pyspy_module *m = &src->modules[i];
        if (m->build_id_len) {
            uint64_t w[3] = {0};
            memcpy(w, m->build_id, m->build_id_len < 20 ? m->build_id_len : 20);
            h = mix(mix(mix(h, w[0]), w[1]), w[2] ^ m->build_id_len);
        } else {
            h = mix_str(h, m->path);
        }
        h = mix(mix(mix(h, m->start), m->end), m->load_bias);
    }
    return mix(h, vdso);
}

static bool same_str(const char *a, const char *b) {
    return a && b ? strcmp(a, b) == 0 : a == b;
}

/* file_now of src's modules without a build-id; NULL when every module
 * has one (or out of memory, which only means no session matches). */
static file_id *files_now(const pyspy_memsrc *src, const char *root) {
    size_t i = 0;
    while (i < src->nmodules && src->modules[i].build_id_len)
        i++;
    if (i == src->nmodules)
        return NULL;
    file_id *files = calloc(src->nmodules, sizeof *files);
    for (; files && i < src->nmodules; i++)
        if (!src->modules[i].build_id_len)
            files[i] = file_now(root, &src->modules[i]);
    return files;
}

static bool same_file(const file_id *a, const file_id *b) {
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns;
}

/* files: from files_now (NULL when no module lacks a build-id). */
static bool key_matches(const session *s, const pyspy_memsrc *src,
                        const char *root, uint64_t hash, uint64_t vdso,
                        const file_id *files) {
    if (s->hash != hash || s->nmods != src->nmodules || s->vdso != vdso ||
        strcmp(s->root, root) != 0)
        return false;
    for (size_t i = 0; i < s->nmods; i++) {
        const module_key *k = &s->mods[i];
        const pyspy_module *m = &src->modules[i];
        if (k->start != m->start || k->end != m->end ||
            k->load_bias != m->load_bias ||
            k->build_id_len != m->build_id_len ||
            memcmp(k->build_id, m->build_id, k->build_id_len) != 0 ||
            !same_str(k->path, m->path))
            return false;
        if (!m->build_id_len && (!files || !same_file(&s->files[i], &files[i])))
            return false;
    }
    return true;
}

static session *session_open(pyspy_memsrc *src, const char *root, uint64_t hash,
                             uint64_t vdso, pyspy_error *err) {
    session *s = calloc(1, sizeof *s);
    if (!s) {
        pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        return NULL;
    }
    s->hash = hash;
    s->vdso = vdso;
    s->root = strdup(root);
    s->nmods = src->nmodules;
    s->mods = calloc(s->nmods + 1, sizeof *s->mods);
    s->files = calloc(s->nmods + 1, sizeof *s->files);
    bool oom = !s->root || !s->mods || !s->files;
    for (size_t i = 0; !oom && i < s->nmods; i++) {
        const pyspy_module *m = &src->modules[i];
        module_key *k = &s->mods[i];
        memcpy(k->build_id, m->build_id, sizeof k->build_id);
        k->build_id_len = m->build_id_len;
        k->path = dup_or_null(m->path, &oom);
        k->start = m->start;
        k->end = m->end;
        k->load_bias = m->load_bias;
    }
    s->nimages = src->nmodules + 1;
    s->images = oom ? NULL : calloc(s->nimages, sizeof *s->images);
    s->ctx = oom ? NULL : calloc(1, sizeof *s->ctx);
    if (!s->images || !s->ctx) {
        session_free(s);
        pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        return NULL;
    }
    s->dwfl = dwfl_begin(&dwfl_callbacks);
    if (!s->dwfl) {
        session_free(s);
        pyspy_error_set(err, PYSPY_E_GENERIC, "libdw: %s", dwfl_errmsg(-1));
        return NULL;
    }
    s->ctx->src = src;
    dwfl_report_begin(s->dwfl);
    report_modules(s->dwfl, src, s->images, s->files);
    dwfl_report_end(s->dwfl, NULL, NULL);
    pid_t pid = src->proc.pid > 0 ? src->proc.pid : 1;
    s->attached =
        dwfl_attach_state(s->dwfl, NULL, pid, &thread_callbacks, s->ctx);
    return s;
}

/* Points the session at this call's source (the same modules, maybe a
 * different snapshot of them). */
static void session_retarget(session *s, pyspy_memsrc *src) {
    s->ctx->src = src;
    for (size_t i = 0; i < s->nimages; i++)
        if (s->images[i].used)
            s->images[i].src = src;
}

/* Unlinks from the pool (pool_lock held) every idle session for which
 * drop says so, into *out. */
static void unlink_idle(session **out,
                        bool (*drop)(const session *, const void *),
                        const void *arg) {
    for (session **pp = &pool; *pp;) {
        session *s = *pp;
        if (!s->busy && drop(s, arg)) {
            *pp = s->next;
            s->next = *out;
            *out = s;
        } else {
            pp = &s->next;
        }
    }
}

static void free_list(session *s) {
    while (s) {
        session *next = s->next;
        session_free(s);
        s = next;
    }
}

static bool any(const session *s, const void *arg) {
    (void)s;
    (void)arg;
    return true;
}

/* A target's own files (a live process) changed mapping: its sessions
 * of the old modules will not be asked for again. */
static bool same_root(const session *s, const void *root) {
    return ((const char *)root)[0] && strcmp(s->root, root) == 0;
}

pyspy_native_session *pyspy_native_get(pyspy_memsrc *src, pyspy_error *err) {
    const char *root = pyspy_memsrc_file_root(src);
    uint64_t vdso = vdso_start(src);
    uint64_t hash = key_hash(src, root, vdso);
    file_id *files = files_now(src, root);
    session *s = NULL, *stale = NULL;
    pthread_mutex_lock(&pool_lock);
    for (s = pool; s; s = s->next)
        if (!s->busy && key_matches(s, src, root, hash, vdso, files))
            break;
    if (s)
        s->busy = true;
    else
        unlink_idle(&stale, same_root, root);
    pthread_mutex_unlock(&pool_lock);
    free(files);
    free_list(stale);
    if (s) {
        if (s->ctx->src != src)
            session_retarget(s, src);
        return s;
    }
    /* Opened outside the lock: it reads files and the target's memory,
     * and other callers' sessions are theirs meanwhile. */
    s = session_open(src, root, hash, vdso, err);
    if (!s)
        return NULL;
    s->busy = true;
    pthread_mutex_lock(&pool_lock);
    s->next = pool;
    pool = s;
    pthread_mutex_unlock(&pool_lock);
    return s;
}

void pyspy_native_put(pyspy_native_session *s) {
    if (!s)
        return;
    session *victim = NULL;
    pthread_mutex_lock(&pool_lock);
    s->busy = false;
    s->used = ++pool_clock;
    size_t idle = 0;
    session **oldest = NULL;
    for (session **pp = &pool; *pp; pp = &(*pp)->next)
        if (!(*pp)->busy) {
            idle++;
            if (!oldest || (*pp)->used < (*oldest)->used)
                oldest = pp;
        }
    if (idle > MAX_IDLE) {
        victim = *oldest;
        *oldest = victim->next;
        victim->next = NULL;
    }
    pthread_mutex_unlock(&pool_lock);
    session_free(victim);
}

int pyspy_native_unwind_in(pyspy_native_session **sp, pyspy_memsrc *src,
                           int tid, pyspy_native_frame **out, size_t *n,
                           pyspy_error *err) {
    *out = NULL;
    *n = 0;
    const pyspy_thread *t = pyspy_thread_by_tid(src, tid);
    if (!t || !t->has_regs)
        return pyspy_error_set(err, PYSPY_E_UNREADABLE,
                               "no registers for thread %d", tid);
    if (!*sp && !(*sp = pyspy_native_get(src, err)))
        return -1;
    session *s = *sp;
    if (s->ctx->src != src)
        session_retarget(s, src);
    unwind_ctx *c = s->ctx;
    c->thread = t;
    c->n = 0;
    if (s->attached)
        /* Stopping early (end of stack, no unwind data) is expected. */
        (void)dwfl_getthread_frames(s->dwfl, t->tid, frame_cb, c);
    if (c->n == 0) {
        /* No unwind at all (no module told libdw the architecture): the
         * innermost frame is all that can be named. */
        c->pcs[0] = t->regs[PYSPY_REG_RIP];
        c->sps[0] = t->regs[PYSPY_REG_RSP];
        c->activation[0] = true;
        c->n = 1;
    }
    pyspy_native_frame *v = calloc(c->n, sizeof *v);
    if (!v)
        return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
    for (size_t i = 0; i < c->n; i++) {
        if (resolve_seen(s, src, c->pcs[i], c->activation[i], &v[i]) < 0) {
            pyspy_native_frames_free(v, c->n);
            return pyspy_error_set(err, PYSPY_E_GENERIC, "out of memory");
        }
        v[i].sp = c->sps[i];
    }
    *out = v;
    *n = c->n;
    return 0;
}

int pyspy_native_unwind(pyspy_memsrc *src, int tid, pyspy_native_frame **out,
                        size_t *n, pyspy_error *err) {
    session *s = NULL;
    int rc = pyspy_native_unwind_in(&s, src, tid, out, n, err);
    pyspy_native_put(s);
    return rc;
}

void pyspy_native_release(void) {
    session *idle = NULL;
    pthread_mutex_lock(&pool_lock);
    unlink_idle(&idle, any, NULL);
    pthread_mutex_unlock(&pool_lock);
    free_list(idle);
}
