/* The walker on hand-built target memory (3.12 layout): shim frames
 * skipped and entry frames marked, line numbers from the location table,
 * GIL holder, OS threads found by FS base, idle threads from their system
 * call, and hostile chains (frame cycles, wild frame pointers, a cycle in
 * the thread list, a chain deeper than the bound) cut with a marked frame
 * instead of a crash or a hang. */
#include "analyze/walk/line_table.h"
#include "analyze/walk/internal.h"
#include "testlib.h"

#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#define BASE 0x10000000ull
#define SIZE (8u << 20)

static uint8_t *mem;
static uint64_t brk_;

static int fake_read(pyspy_memsrc *src, uint64_t addr, void *buf, size_t len,
                     pyspy_error *err) {
    (void)src;
    if (addr < BASE || addr + len > BASE + SIZE || addr + len < addr)
        return pyspy_error_set(err, PYSPY_E_UNREADABLE, "unmapped");
    memcpy(buf, mem + (addr - BASE), len);
    return 0;
}

static const pyspy_memsrc_ops ops = {.kind = "test", .read = fake_read};

static uint64_t alloc(size_t n) {
    uint64_t a = brk_;
    brk_ += (n + 15) & ~(size_t)15;
    return a;
}
static void put64(uint64_t a, uint64_t v) {
    memcpy(mem + (a - BASE), &v, 8);
}
static void put32(uint64_t a, uint32_t v) {
    memcpy(mem + (a - BASE), &v, 4);
}
static void put8(uint64_t a, uint8_t v) {
    mem[a - BASE] = v;
}

static pyspy_python py;
static uint64_t str_type, bytes_type, code_type;

static uint64_t cstr(const char *s) {
    uint64_t a = alloc(strlen(s) + 1);
    memcpy(mem + (a - BASE), s, strlen(s) + 1);
    return a;
}

static uint64_t type(const char *name, uint64_t flags) {
    const pyspy_py_layout *l = &py.layout;
    uint64_t t = alloc(512);
    put64(t + l->ob_type, t);
    put64(t + l->type_tp_name, cstr(name));
    put64(t + l->type_tp_flags, flags);
    return t;
}

static uint64_t pystr(const char *s) {
    const pyspy_py_layout *l = &py.layout;
    uint64_t o = alloc(l->unicode_ascii_data + strlen(s) + 1);
    put64(o + l->ob_type, str_type);
    put64(o + l->unicode_length, strlen(s));
    put32(o + l->unicode_state, (1u << l->unicode_state_kind_shift) |
                                    (1u << l->unicode_state_compact_shift) |
                                    (1u << l->unicode_state_ascii_shift));
    memcpy(mem + (o + l->unicode_ascii_data - BASE), s, strlen(s) + 1);
    return o;
}

static uint64_t pybytes(const uint8_t *b, size_t n) {
    const pyspy_py_layout *l = &py.layout;
    uint64_t o = alloc(l->bytes_sval + n + 1);
    put64(o + l->ob_type, bytes_type);
    put64(o + l->var_ob_size, n);
    memcpy(mem + (o + l->bytes_sval - BASE), b, n);
    return o;
}

/* 3.12.1's location table for a function starting at line 2; code unit
 * 35 is on line 8. */
static const uint8_t locations312[] = {
    128, 0,  216, 9,   10,  216, 9,  10,  241, 3,   1,   10, 11,  128, 65,
    244, 6,  0,   19,  24,  152, 1,  147, 40,  246, 3,   1,  9,   28,  216,
    13,  14, 242, 3,   0,   10,  11, 240, 0,   1,   9,   28, 128, 65,  240,
    0,   1,  9,   28,  228, 11,  12, 216, 8,   9,   216, 8,  9,   243, 5,
    2,   12, 11,  240, 0,   2,   5,  11,  249, 242, 5,   1,  9,   28};

static uint64_t code(const char *name, const char *file) {
    const pyspy_py_layout *l = &py.layout;
    uint64_t c = alloc(l->code_code_adaptive + 256);
    put64(c + l->ob_type, code_type);
    put64(c + l->code_name, pystr(name));
    put64(c + l->code_filename, pystr(file));
    put32(c + l->code_firstlineno, 2);
    put64(c + l->code_linetable, pybytes(locations312, sizeof locations312));
    return c;
}

static uint64_t frame(uint64_t code_obj, uint64_t previous, int owner,
                      int unit) {
    const pyspy_py_layout *l = &py.layout;
    uint64_t f = alloc(l->iframe_localsplus + 16);
    put64(f + l->iframe_code, code_obj);
    put64(f + l->iframe_previous, previous);
    put8(f + l->iframe_owner, (uint8_t)owner);
    put64(f + l->iframe_instr_ptr,
          code_obj + l->code_code_adaptive + 2 * (uint64_t)unit);
    return f;
}

static uint64_t tstate(uint64_t interp, uint64_t first_frame,
                       uint64_t thread_id) {
    const pyspy_py_layout *l = &py.layout;
    uint64_t cf = alloc(64);
    put64(cf + l->cframe_current_frame, first_frame);
    uint64_t t = alloc(4096);
    put64(t + l->tstate_cframe, cf);
    put64(t + l->tstate_thread_id, thread_id);
    put64(t + l->tstate_interp, interp);
    return t;
}

static pyspy_memsrc src;
static pyspy_thread threads[3];

static void setup(void) {
    if (!mem)
        mem = calloc(1, SIZE);
    memset(mem, 0, SIZE);
    brk_ = BASE + 64;
    memset(&py, 0, sizeof py);
    const pyspy_py_layout *l = pyspy_py_layout_builtin(3, 12, false);
    CHECK(l != NULL);
    if (!l)
        exit(1);
    py.layout = *l;
    py.major = 3;
    py.minor = 12;
    snprintf(py.version, sizeof py.version, "3.12.1");
    str_type = type("str", 1ul << 28);
    bytes_type = type("bytes", 1ul << 27);
    code_type = type("code", 0);
    memset(&src, 0, sizeof src);
    src.ops = &ops;
    src.proc.pid = 100;
    memset(threads, 0, sizeof threads);
    /* 101: blocked in futex (a kernel core: no state letter); 102: R */
    threads[0].tid = 101;
    threads[0].has_regs = true;
    threads[0].regs[21] = 0x7000;
    threads[0].regs[PYSPY_REG_ORIG_RAX] = SYS_futex;
    threads[0].syscall = -2;
    threads[1].tid = 102;
    threads[1].has_regs = true;
    threads[1].regs[21] = 0x8000;
    threads[1].state = 'R';
    threads[2].tid = 100;
    threads[2].state = 'S';
    src.threads = threads;
    src.nthreads = 3;
}

static const pyspy_walk_opts opts = {.lineno = PYSPY_LINENO_LAST_INSTRUCTION};

TEST(threads_frames_gil_and_hostile_chains) {
    setup();
    const pyspy_py_layout *l = &py.layout;
    uint64_t interp = alloc(8192);
    py.interp_head = interp;
    uint64_t gil = alloc(256);
    put64(interp + l->interp_gil_ptr, gil);
    put32(gil + l->gil_locked, 1);

    uint64_t inner = code("inner", "/app/pkg/mod.py");
    uint64_t outer = code("outer", "/app/main.py");
    /* A: inner -> shim -> outer */
    uint64_t f3 = frame(outer, 0, 0, 0);
    uint64_t shim = frame(code("<shim>", "<shim>"), f3, l->owner_cstack, 0);
    uint64_t f1 = frame(inner, shim, 0, 35);
    uint64_t a = tstate(interp, f1, 0x7000);
    /* B: a frame cycle */
    uint64_t f4 = frame(inner, 0, 0, 1);
    uint64_t f5 = frame(outer, f4, 0, 1);
    put64(f4 + l->iframe_previous, f5);
    uint64_t b = tstate(interp, f4, 0x8000);
    /* C: a wild frame pointer behind a good frame */
    uint64_t f6 = frame(inner, 0xdead00000000ull, 0, 1);
    uint64_t c = tstate(interp, f6, 0x9000);
    /* thread list a -> b -> c -> a (a cycle) */
    put64(interp + l->interp_tstate_head, a);
    put64(a + l->tstate_next, b);
    put64(b + l->tstate_next, c);
    put64(c + l->tstate_next, a);
    put64(gil + l->gil_last_holder, b);

    pyspy_traces out;
    pyspy_error err = {0};
    CHECK(pyspy_stack_traces(&src, &py, &opts, &out, &err) == 0);
    CHECK(out.ntraces == 3);
    if (out.ntraces != 3)
        return;
    pyspy_trace *ta = &out.traces[0], *tb = &out.traces[1],
                *tc = &out.traces[2];
    CHECK(ta->thread_id == 0x7000 && ta->os_thread_id == 101);
    CHECK(!ta->active && !ta->owns_gil);
    CHECK(ta->nframes == 2);
    if (ta->nframes == 2) {
        CHECK_STR(ta->frames[0].name, "inner");
        CHECK(ta->frames[0].line == 8);
        CHECK(ta->frames[0].is_entry);
        CHECK_STR(ta->frames[0].short_filename, "mod.py");
        CHECK_STR(ta->frames[1].name, "outer");
        CHECK(ta->frames[1].line == 2);
        CHECK(!ta->frames[1].is_entry);
    }
    CHECK(tb->os_thread_id == 102 && tb->active && tb->owns_gil);
    CHECK(tb->nframes == 3);
    if (tb->nframes == 3) {
        CHECK_STR(tb->frames[1].name, "outer");
        CHECK(tb->frames[2].unreadable);
        CHECK_STR(tb->frames[2].name, "<frame cycle>");
    }
    /* The one thread without an OS thread is the main thread. */
    CHECK(tc->os_thread_id == 100 && !tc->active);
    CHECK(tc->nframes == 2);
    if (tc->nframes == 2) {
        CHECK_STR(tc->frames[0].name, "inner");
        CHECK(tc->frames[1].unreadable);
    }
    CHECK_STR(out.python_version, "3.12.1");
    pyspy_traces_free(&out);
}

TEST(deep_chain_is_bounded) {
    setup();
    const pyspy_py_layout *l = &py.layout;
    uint64_t interp = alloc(8192);
    py.interp_head = interp;
    uint64_t c = code("deep", "/x.py");
    uint64_t prev = 0;
    for (int i = 0; i < PYSPY_MAX_FRAMES + 500; i++)
        prev = frame(c, prev, 0, 1);
    put64(interp + l->interp_tstate_head, tstate(interp, prev, 0x7000));
    pyspy_traces out;
    CHECK(pyspy_stack_traces(&src, &py, &opts, &out, NULL) == 0);
    CHECK(out.ntraces == 1);
    if (out.ntraces == 1) {
        CHECK(out.traces[0].nframes == PYSPY_MAX_FRAMES + 1);
        CHECK(out.traces[0].frames[PYSPY_MAX_FRAMES].unreadable);
    }
    pyspy_traces_free(&out);
}

TEST(unreadable_interpreter_is_an_error) {
    setup();
    py.interp_head = 0xdead00000000ull;
    pyspy_traces out;
    pyspy_error err = {0};
    CHECK(pyspy_stack_traces(&src, &py, &opts, &out, &err) == -1);
    CHECK(strstr(err.msg, "thread list") != NULL);
}

/* What a core lacking memory does to a walk: a code object whose type
 * cannot be read is a marked frame (not skipped), a frame of zeros (gcore
 * writes zeros for stack pages it cannot read) cuts the chain with a mark,
 * a thread list that runs into memory that cannot be read is counted as
 * cut, and each such stack says it is incomplete. */
TEST(lost_memory_is_never_a_shorter_stack) {
    setup();
    const pyspy_py_layout *l = &py.layout;
    uint64_t interp = alloc(8192);
    py.interp_head = interp;
    uint64_t good = code("good", "/app/a.py");
    /* a code object whose type lies outside readable memory */
    uint64_t lost = code("lost", "/app/b.py");
    put64(lost + l->ob_type, 0xdead00000000ull);
    uint64_t f2 = frame(good, 0, 0, 1);
    uint64_t f1 = frame(lost, f2, 0, 1);
    uint64_t f0 = frame(good, f1, 0, 1);
    uint64_t a = tstate(interp, f0, 0x7000);
    /* b: a good frame over a frame of zeros */
    uint64_t zeros = alloc(l->iframe_localsplus + 16);
    uint64_t g = frame(good, zeros, 0, 1);
    uint64_t b = tstate(interp, g, 0x8000);
    put64(interp + l->interp_tstate_head, a);
    put64(a + l->tstate_next, b);
    /* the list goes on into memory that cannot be read */
    put64(b + l->tstate_next, 0xdead00000000ull);
    pyspy_traces out;
    pyspy_error err = {0};
    CHECK(pyspy_stack_traces(&src, &py, &opts, &out, &err) == 0);
    /* the link to nowhere is shown as a thread state that cannot be
     * read, and the list counts as cut after it */
    CHECK(out.ntraces == 3 && out.lists_cut == 1);
    if (out.ntraces == 3) {
        CHECK(out.traces[2].incomplete && out.traces[2].nframes == 1);
        CHECK_STR(out.traces[2].frames[0].name, "<unreadable thread state>");
        pyspy_trace *ta = &out.traces[0], *tb = &out.traces[1];
        CHECK(ta->incomplete && ta->nframes == 3);
        if (ta->nframes == 3) {
            CHECK_STR(ta->frames[0].name, "good");
            CHECK_STR(ta->frames[1].name, "<unreadable code object>");
            CHECK(ta->frames[1].unreadable);
            CHECK_STR(ta->frames[2].name, "good");
        }
        CHECK(tb->incomplete && tb->nframes == 2);
        if (tb->nframes == 2) {
            CHECK_STR(tb->frames[0].name, "good");
            CHECK_STR(tb->frames[1].name, "<invalid frame>");
        }
    }
    pyspy_traces_free(&out);
}

TEST(short_filenames) {
    char *dirs[] = {"/usr/lib/python3.11", "/usr/lib/python3/dist-packages",
                    "/usr/lib/python3"};
    pyspy_sys_path sp = {.dirs = dirs, .n = 3, .gen = 1};
    const char *s =
        pyspy_short_filename(&sp, "/usr/lib/python3.11/threading.py");
    CHECK_STR(s, "threading.py");
    s = pyspy_short_filename(&sp,
                             "/usr/lib/python3/dist-packages/requests/api.py");
    CHECK_STR(s, "requests/api.py");
    s = pyspy_short_filename(&sp, "/srv/app/run.py");
    CHECK_STR(s, "run.py");
    s = pyspy_short_filename(&sp, "<frozen importlib._bootstrap>");
    CHECK_STR(s, "<frozen importlib._bootstrap>");
    s = pyspy_short_filename(&sp, "/usr/lib/python3.11x/a.py");
    CHECK_STR(s, "a.py");
}

TEST(activity_rules) {
    pyspy_thread t = {0};
    t.state = 'S';
    CHECK(!pyspy_thread_active(&t));
    t.state = 'R';
    CHECK(pyspy_thread_active(&t));
    t.state = 0;
    t.syscall = SYS_clock_nanosleep;
    CHECK(!pyspy_thread_active(&t));
    t.syscall = SYS_write;
    CHECK(pyspy_thread_active(&t));
    t.syscall = -2;
    t.has_regs = true;
    t.regs[PYSPY_REG_ORIG_RAX] = (uint64_t)-1;
    CHECK(pyspy_thread_active(&t));
    t.regs[PYSPY_REG_ORIG_RAX] = SYS_epoll_wait;
    CHECK(!pyspy_thread_active(&t));
    pyspy_frame f = {.name = "wait",
                     .filename = "/usr/lib/python3.11/threading.py"};
    CHECK(pyspy_frames_look_idle(&f, 1));
    f.name = "run";
    CHECK(!pyspy_frames_look_idle(&f, 1));
}

/* The set keeps its first entries inline and moves them into a hash
 * table when they outgrow it: membership must hold across the move and
 * across each growth of the table. */
TEST(address_sets_across_growth) {
    pyspy_addr_set s = {0};
    bool added = false;
    CHECK(pyspy_addr_set_add(&s, 0, &added) == 0 && added); /* never kept */
    CHECK(s.nfew == 0);
    for (uint64_t a = 1; a <= 1000; a++) {
        CHECK(pyspy_addr_set_add(&s, a * 0x1000, &added) == 0 && added);
        if (a == PYSPY_ADDR_SET_FEW)
            CHECK(s.map.slots == NULL);
        /* Every earlier entry is still in. */
        if (a % 97 == 0 || a == PYSPY_ADDR_SET_FEW + 1)
            for (uint64_t b = 1; b <= a; b++)
                CHECK(pyspy_addr_set_add(&s, b * 0x1000, &added) == 0 &&
                      !added);
    }
    CHECK(s.map.slots != NULL);
    CHECK(s.map.n == 1000);
    CHECK(pyspy_addr_set_add(&s, 0x1001, &added) == 0 && added);
    pyspy_addr_set_free(&s);
    CHECK(s.map.slots == NULL && s.nfew == 0);
    CHECK(pyspy_addr_set_add(&s, 0x2000, &added) == 0 && added);
    CHECK(pyspy_addr_set_add(&s, 0x2000, &added) == 0 && !added);
    pyspy_addr_set_free(&s);
}

/* A code entry's memo answers as its line table does, whether it hits
 * (the same instruction again) or evicts (more instructions than it
 * holds), and its short filename follows the sys.path read it was made
 * under. */
TEST(code_entries_memo_lines_and_short_names) {
    static const uint8_t lnotab[] = {0, 1,   2, 1, 2, 255, 4, 2, 6, 1,
                                     6, 255, 6, 2, 2, 1,   2, 1, 2, 254};
    pyspy_python py = {0};
    py.layout.lines = PYSPY_LINES_LNOTAB;
    char file[] = "/usr/lib/python3.11/json/decoder.py";
    pyspy_code_info c = {.valid = true,
                         .firstlineno = 2,
                         .filename = file,
                         .linetable = (uint8_t *)lnotab,
                         .linetable_len = sizeof lnotab};
    for (int round = 0; round < 2; round++)
        for (int64_t lasti = -2; lasti <= 40; lasti += 2)
            for (int again = 0; again < 2; again++)
                CHECK(pyspy_code_line(&py, &c, lasti) ==
                      pyspy_line_for(PYSPY_LINES_LNOTAB, false, 1, lnotab,
                                     sizeof lnotab, 2, lasti));
    CHECK(pyspy_code_line(&py, &c, 32) == 7);
    char *near[] = {"/usr/lib/python3.11"},
         *deep[] = {"/usr/lib/python3.11/json"};
    pyspy_sys_path a = {.dirs = near, .n = 1, .gen = 7},
                   b = {.dirs = deep, .n = 1, .gen = 8}, unread = {0};
    CHECK_STR(pyspy_code_short_filename(&c, &a), "json/decoder.py");
    CHECK_STR(pyspy_code_short_filename(&c, &b), "decoder.py");
    CHECK_STR(pyspy_code_short_filename(&c, &a), "json/decoder.py");
    CHECK_STR(pyspy_code_short_filename(&c, &unread), "decoder.py");
    CHECK_STR(pyspy_code_short_filename(&c, NULL), "decoder.py");
}

TEST_MAIN(T(threads_frames_gil_and_hostile_chains), T(deep_chain_is_bounded),
          T(unreadable_interpreter_is_an_error),
          T(lost_memory_is_never_a_shorter_stack), T(short_filenames),
          T(activity_rules), T(address_sets_across_growth),
          T(code_entries_memo_lines_and_short_names))
