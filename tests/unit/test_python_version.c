/* Version parsing for interpreter discovery, and (with PYSPY_PROBE_PID
 * set) a live probe used by tests/test_python_find.py: opens the pid,
 * finds the interpreter and prints what it found as key=value lines. */
#include "analyze/cpython/layout_tables.h"
#include "analyze/cpython/python.h"
#include "analyze/cpython/find.h"
#include "capture/elf/symbols.h"
#include "tests/unit/testlib.h"

#include <stdlib.h>

TEST(version_from_hex) {
    pyspy_pyver v;
    CHECK(pyspy_pyver_from_hex(0x030b02f0, &v) == 0);
    CHECK_STR(v.version, "3.11.2");
    CHECK(v.major == 3 && v.minor == 11 && v.micro == 2);
    CHECK(pyspy_pyver_from_hex(0x030f00a2, &v) == 0);
    CHECK_STR(v.version, "3.15.0a2");
    CHECK(pyspy_pyver_from_hex(0x030e00c1, &v) == 0);
    CHECK_STR(v.version, "3.14.0rc1");
    CHECK(pyspy_pyver_from_hex(0x030d00b3, &v) == 0);
    CHECK_STR(v.version, "3.13.0b3");
    CHECK(pyspy_pyver_from_hex(0x030b0210, &v) < 0); /* level 1 */
    CHECK(pyspy_pyver_from_hex(0x050b02f0, &v) < 0);
    CHECK(pyspy_pyver_from_hex(0x1030b02f0ULL, &v) < 0);
    CHECK(pyspy_pyver_from_hex(0, &v) < 0);
}

TEST(version_from_text) {
    pyspy_pyver v = {0};
    const char *s = "3.9.18 (main, Nov 24 2026, 10:00:00) [GCC 12.2.0]";
    CHECK(pyspy_pyver_parse(s, strlen(s), &v) == 6);
    CHECK_STR(v.version, "3.9.18");
    s = "3.15.0a2 (main";
    CHECK(pyspy_pyver_parse(s, strlen(s), &v) == 8);
    CHECK_STR(v.version, "3.15.0a2");
    CHECK(v.micro == 0 && v.minor == 15);
    s = "3.14.0rc1";
    CHECK(pyspy_pyver_parse(s, strlen(s), &v) == 9);
    CHECK_STR(v.version, "3.14.0rc1");
    s = "2.7.18+ (default";
    CHECK(pyspy_pyver_parse(s, strlen(s), &v) == 7);
    CHECK_STR(v.version, "2.7.18");
    CHECK(pyspy_pyver_parse("3.9", 3, &v) == 0);
    CHECK(pyspy_pyver_parse("1.2.11", 6, &v) == 0);
    CHECK(pyspy_pyver_parse("3.9.1234", 8, &v) == 0);
    CHECK(pyspy_pyver_parse("3.14.0rc", 8, &v) == 0);
    /* Cut short: never reads past len. */
    CHECK(pyspy_pyver_parse("3.11.2", 4, &v) == 0);
}

TEST(version_from_name) {
    pyspy_pyver v;
    CHECK(pyspy_pyver_from_name("/usr/lib/libpython3.9.so.1.0", &v) == 0);
    CHECK(v.major == 3 && v.minor == 9 && v.micro == -1 && !v.free_threaded);
    CHECK(pyspy_pyver_from_name("/usr/bin/python3.13t", &v) == 0);
    CHECK(v.minor == 13 && v.free_threaded);
    CHECK(pyspy_pyver_from_name("/x/lib/libpython3.6m.so.1.0", &v) == 0);
    CHECK(v.minor == 6);
    CHECK(pyspy_pyver_from_name("/usr/bin/python2.7", &v) == 0);
    CHECK(v.major == 2 && v.minor == 7);
    CHECK(pyspy_pyver_from_name("/usr/bin/python3", &v) < 0);
    CHECK(pyspy_pyver_from_name("/usr/lib/python3.11/lib-dynload/"
                                "_ssl.cpython-311-x86_64-linux-gnu.so",
                                &v) < 0);
    CHECK(pyspy_pyver_from_name("/usr/bin/python3.11x", &v) < 0);
    CHECK(pyspy_pyver_from_name(NULL, &v) < 0);
}

/* Every 3.13+ table has a _Py_DebugOffsets map for the same family whose
 * fields land inside the layout struct and inside the debug struct. */
TEST(debug_maps_cover_313_plus) {
    for (size_t i = 0; i < pyspy_py_layout_count(); i++) {
        const pyspy_py_layout *l = pyspy_py_layout_at(i);
        if (l->runtime_debug_offsets < 0)
            continue;
        const pyspy_py_debug_map *d = NULL;
        for (size_t k = 0; k < pyspy_py_debug_maps_count; k++)
            if (pyspy_py_debug_maps[k].major == l->major &&
                pyspy_py_debug_maps[k].minor == l->minor &&
                pyspy_py_debug_maps[k].free_threaded == l->free_threaded)
                d = &pyspy_py_debug_maps[k];
        CHECK(d != NULL);
        if (!d)
            continue;
        CHECK(d->version == 8 && d->free_threaded_flag == 16);
        size_t n = 0;
        for (; n < PYSPY_DEBUG_MAP_MAX && d->fields[n].layout_off; n++) {
            CHECK((size_t)d->fields[n].layout_off + 4 <=
                  sizeof(pyspy_py_layout));
            CHECK((unsigned)d->fields[n].debug_off + 8 <= (unsigned)d->size);
        }
        CHECK(n >= 40);
        CHECK(d->gil_base > 0 && d->gil_locked > d->gil_base);
        CHECK((d->tlbc_index >= 0) == (l->free_threaded && l->minor >= 14));
    }
}

/* A fake target: one writable region holding whatever the test puts
 * there, and one module (a libpython) with the symbols it names. */
#define FAKE_BASE 0x10000000ULL
#define FAKE_SIZE 0x10000
typedef struct {
    pyspy_memsrc src;
    pyspy_region region;
    pyspy_module module;
    pyspy_symbol syms[3];
    uint8_t mem[FAKE_SIZE];
} fake;

static int fake_read(pyspy_memsrc *src, uint64_t addr, void *buf, size_t len,
                     pyspy_error *err) {
    fake *f = src->impl;
    if (addr < FAKE_BASE || addr - FAKE_BASE > FAKE_SIZE ||
        len > FAKE_SIZE - (addr - FAKE_BASE))
        return pyspy_error_set(err, PYSPY_E_UNREADABLE, "unmapped");
    memcpy(buf, f->mem + (addr - FAKE_BASE), len);
    return 0;
}

static const pyspy_memsrc_ops fake_ops = {.kind = "fake", .read = fake_read};

/* Symbols are sorted here as every symbol table is. */
static fake *fake_new(const char *path, const char *sym0, uint64_t off0,
                      const char *sym1, uint64_t off1) {
    fake *f = calloc(1, sizeof *f);
    f->src.ops = &fake_ops;
    f->src.impl = f;
    f->src.origin = "fake target";
    f->region = (pyspy_region){.start = FAKE_BASE,
                               .end = FAKE_BASE + FAKE_SIZE,
                               .perms = PYSPY_PERM_R | PYSPY_PERM_W,
                               .present = true,
                               .path = (char *)path};
    f->src.regions = &f->region;
    f->src.nregions = 1;
    f->module = (pyspy_module){.path = (char *)path,
                               .start = FAKE_BASE,
                               .end = FAKE_BASE + FAKE_SIZE,
                               .symbols = f->syms};
    if (sym0)
        f->syms[f->module.nsymbols++] =
            (pyspy_symbol){.name = (char *)sym0, .value = FAKE_BASE + off0};
    if (sym1)
        f->syms[f->module.nsymbols++] =
            (pyspy_symbol){.name = (char *)sym1, .value = FAKE_BASE + off1};
    pyspy_module_index_symbols(&f->module);
    f->src.modules = &f->module;
    f->src.nmodules = 1;
    return f;
}

static void fake_free(fake *f) {
    pyspy_module_free_symtab(&f->module);
    free(f);
}

static void put64(fake *f, uint64_t off, uint64_t v) {
    memcpy(f->mem + off, &v, 8);
}

TEST(unsupported_versions_are_named) {
    static const struct {
        uint64_t hex;
        const char *text;
    } cases[] = {{0x030500f0, "Python 3.5.0 "},
                 {0x031000a1, "Python 3.16.0a1 "}};
    for (size_t i = 0; i < 2; i++) {
        fake *f = fake_new("/x/lib/libpython3.so", "Py_Version", 0x100,
                           "_PyRuntime", 0x1000);
        put64(f, 0x100, cases[i].hex);
        pyspy_python py;
        pyspy_error err = {0};
        CHECK(pyspy_python_find(&f->src, &py, &err) == -1);
        CHECK(err.code == PYSPY_E_UNSUPPORTED);
        CHECK(strstr(err.msg, cases[i].text) != NULL);
        if (!strstr(err.msg, cases[i].text))
            fprintf(stderr, "  message: %s\n", err.msg);
        fake_free(f);
    }
}

TEST(trace_refs_builds_refused) {
    fake *f = fake_new("/x/lib/libpython3.9d.so", "Py_GetVersion", 0x100,
                       "_Py_ForgetReference", 0x200);
    memcpy(f->mem + 0x300, "3.9.18 (main, Jan  1 2026) [GCC]", 33);
    pyspy_python py;
    pyspy_error err = {0};
    CHECK(pyspy_python_find(&f->src, &py, &err) == -1);
    CHECK(err.code == PYSPY_E_UNSUPPORTED);
    CHECK(strstr(err.msg, "Python 3.9.18 ") && strstr(err.msg, "debug"));
    fake_free(f);
}

TEST(no_interpreter_names_origin) {
    fake *f = fake_new("/usr/lib/libfoo.so", NULL, 0, NULL, 0);
    pyspy_python py;
    pyspy_error err = {0};
    CHECK(pyspy_python_find(&f->src, &py, &err) == -1);
    CHECK(err.code == PYSPY_E_NOPYTHON);
    CHECK_STR(err.msg, "no Python interpreter found in fake target");
    fake_free(f);
}

/* A 3.11 runtime whose first interpreter's thread state points back at
 * it is accepted; one that points elsewhere is refused. */
TEST(interpreter_must_validate) {
    const pyspy_py_layout *l = pyspy_py_layout_builtin(3, 11, false);
    CHECK(l != NULL);
    if (!l)
        return;
    for (int good = 0; good < 2; good++) {
        fake *f = fake_new("/x/lib/libpython3.11.so.1.0", "Py_Version", 0x100,
                           "_PyRuntime", 0x1000);
        put64(f, 0x100, 0x030b02f0);
        uint64_t interp = FAKE_BASE + 0x4000, tstate = FAKE_BASE + 0x8000;
        put64(f, 0x1000 + (uint64_t)l->runtime_interpreters_head, interp);
        put64(f, 0x4000 + (uint64_t)l->interp_tstate_head, tstate);
        put64(f, 0x8000 + (uint64_t)l->tstate_interp,
              good ? interp : interp + 64);
        pyspy_python py;
        pyspy_error err = {0};
        int rc = pyspy_python_find(&f->src, &py, &err);
        if (good) {
            CHECK(rc == 0);
            if (rc == 0) {
                CHECK_STR(py.version, "3.11.2");
                CHECK(py.interp_head == interp);
                CHECK(py.runtime_addr == FAKE_BASE + 0x1000);
                CHECK(py.module == &f->module);
                pyspy_python_free(&py);
            }
        } else {
            CHECK(rc == -1 && err.code == PYSPY_E_NOPYTHON);
            CHECK(strstr(err.msg, "does not validate") != NULL);
        }
        fake_free(f);
    }
}

static const pyspy_py_debug_map *map_of(int major, int minor, bool ft) {
    for (size_t j = 0; j < pyspy_py_debug_maps_count; j++)
        if (pyspy_py_debug_maps[j].major == major &&
            pyspy_py_debug_maps[j].minor == minor &&
            pyspy_py_debug_maps[j].free_threaded == ft)
            return &pyspy_py_debug_maps[j];
    return NULL;
}

/* Writes the _Py_DebugOffsets a target of layout l would publish. */
static void put_debug_offsets(fake *f, uint64_t off, const pyspy_py_layout *l,
                              const pyspy_py_debug_map *d, uint64_t hex) {
    memcpy(f->mem + off, "xdebugpy", 8);
    put64(f, off + (uint64_t)d->version, hex);
    put64(f, off + (uint64_t)d->free_threaded_flag, l->free_threaded);
    for (size_t k = 0; k < PYSPY_DEBUG_MAP_MAX && d->fields[k].layout_off;
         k++) {
        int32_t v;
        memcpy(&v, (const char *)l + d->fields[k].layout_off, 4);
        put64(f, off + d->fields[k].debug_off, (uint64_t)v);
    }
    put64(f, off + (uint64_t)d->gil_base, 5000);
    put64(f, off + (uint64_t)d->gil_locked, 5000 + (uint64_t)l->gil_locked);
    put64(f, off + (uint64_t)d->gil_holder,
          5000 + (uint64_t)l->gil_last_holder);
}

/* The target's offsets win over the built-in table when plausible; a
 * hostile value leaves the table untouched. */
TEST(debug_offsets_patch_layout) {
    const pyspy_py_layout *b = pyspy_py_layout_builtin(3, 14, false);
    const pyspy_py_debug_map *d = map_of(3, 14, false);
    CHECK(b && d);
    if (!b || !d)
        return;
    pyspy_py_layout moved = *b;
    moved.tstate_thread_id += 8;
    moved.code_qualname += 16;
    fake *f = fake_new("/x/python3.14", NULL, 0, NULL, 0);
    put_debug_offsets(f, 0x1000, &moved, d, 0x030e0af0);
    pyspy_py_layout l = *b;
    pyspy_error err = {0};
    CHECK(pyspy_debug_offsets_apply(&f->src, FAKE_BASE + 0x1000, &l, &err) ==
          0);
    CHECK(l.tstate_thread_id == b->tstate_thread_id + 8);
    CHECK(l.code_qualname == b->code_qualname + 16);
    CHECK(l.gil_locked == b->gil_locked);
    CHECK(l.tuple_item == b->tuple_item);

    uint64_t version;
    bool ft = true;
    CHECK(pyspy_debug_offsets_header(&f->src, FAKE_BASE + 0x1000, &version,
                                     &ft) == 0);
    CHECK(version == 0x030e0af0 && !ft);
    CHECK(pyspy_debug_offsets_header(&f->src, FAKE_BASE + 0x1008, &version,
                                     &ft) < 0);

    /* An offset beyond any struct, and one outside its struct. */
    for (int bad = 0; bad < 2; bad++) {
        pyspy_py_layout hostile = *b;
        if (bad == 0)
            hostile.interp_tstate_head = 1 << 30;
        else
            hostile.tstate_next = hostile.tstate_size + 64;
        put_debug_offsets(f, 0x1000, &hostile, d, 0x030e0af0);
        l = *b;
        CHECK(pyspy_debug_offsets_apply(&f->src, FAKE_BASE + 0x1000, &l, &err) <
              0);
        CHECK(err.code == PYSPY_E_FORMAT);
        CHECK(memcmp(&l, b, sizeof l) == 0);
    }
    /* A 3.15 header does not patch a 3.14 table. */
    put_debug_offsets(f, 0x1000, b, d, 0x030f02f0);
    l = *b;
    CHECK(pyspy_debug_offsets_apply(&f->src, FAKE_BASE + 0x1000, &l, &err) < 0);
    fake_free(f);
}

/* Without symbols, the cookie is found in the module's writable data. */
TEST(debug_offsets_scan_finds_cookie) {
    const pyspy_py_layout *b = pyspy_py_layout_builtin(3, 13, false);
    const pyspy_py_debug_map *d = map_of(3, 13, false);
    CHECK(b && d);
    if (!b || !d)
        return;
    fake *f = fake_new("/x/python3.13", NULL, 0, NULL, 0);
    /* A stray cookie with a bad version comes first and is skipped. */
    memcpy(f->mem + 0x800, "xdebugpy", 8);
    put64(f, 0x808, 0x12345678);
    put_debug_offsets(f, 0x3000, b, d, 0x030d00f0);
    CHECK(pyspy_debug_offsets_scan(&f->src, &f->module) == FAKE_BASE + 0x3000);
    fake_free(f);
}

/* Probe (a live pid, or a snapshot/core with PYSPY_PROBE_FILE): prints
 * what discovery found; tests/test_python_find.py
 * compares it with the target. PYSPY_PROBE_NOSYMS=1 hides every module's
 * symbols first, so discovery must scan for a structure that validates
 * and read the version from the target's data. */
TEST(probe_pid) {
    const char *pid = getenv("PYSPY_PROBE_PID");
    const char *file = getenv("PYSPY_PROBE_FILE");
    if ((!pid || !*pid) && (!file || !*file)) {
        printf("# PYSPY_PROBE_PID/PYSPY_PROBE_FILE not set: no probe\n");
        return;
    }
    pyspy_memsrc *src = NULL;
    pyspy_error err = {0};
    int rc = file && *file ? pyspy_memsrc_open_file(file, &src, &err)
                           : pyspy_memsrc_open_pid(atoi(pid), PYSPY_NONBLOCKING,
                                                   &src, &err);
    if (rc != 0) {
        printf("error=%d %s\n", err.code, err.msg);
        CHECK(rc == 0);
        return;
    }
    const char *nosyms = getenv("PYSPY_PROBE_NOSYMS");
    size_t *saved = calloc(src->nmodules + 1, sizeof *saved);
    if (nosyms && *nosyms == '1')
        for (size_t i = 0; i < src->nmodules; i++) {
            /* Read now, so that no lookup reads them later. */
            pyspy_module_ensure_symbols(&src->modules[i]);
            saved[i] = src->modules[i].nsymbols;
            src->modules[i].nsymbols = 0;
        }
    pyspy_python py;
    rc = pyspy_python_find(src, &py, &err);
    if (rc != 0) {
        printf("error=%d %s\n", err.code, err.msg);
    } else {
        printf("version=%s\n", py.version);
        printf("free_threaded=%d\n", py.layout.free_threaded ? 1 : 0);
        printf("module=%s\n", py.module ? py.module->path : "");
        printf("executable=%s\n", py.executable ? py.executable : "");
        printf("runtime=0x%llx\n", (unsigned long long)py.runtime_addr);
        printf("interp_head=0x%llx\n", (unsigned long long)py.interp_head);
        printf("tstate_current=0x%llx\n",
               (unsigned long long)py.tstate_current_addr);
        printf("version_source=%s\n", py.version_source);
        printf("debug_offsets=%d\n", py.debug_offsets ? 1 : 0);
        /* Which int32 offsets the target's _Py_DebugOffsets changed
         * relative to the built-in table, by position in the struct. */
        const pyspy_py_layout *b = pyspy_py_layout_builtin(
            py.major, py.minor, py.layout.free_threaded);
        printf("layout_diff=");
        for (size_t k = 0; b && k < PYSPY_DEBUG_MAP_MAX; k++) {
            const pyspy_py_debug_map *d = NULL;
            for (size_t j = 0; j < pyspy_py_debug_maps_count; j++)
                if (pyspy_py_debug_maps[j].major == py.major &&
                    pyspy_py_debug_maps[j].minor == py.minor &&
                    pyspy_py_debug_maps[j].free_threaded ==
                        py.layout.free_threaded)
                    d = &pyspy_py_debug_maps[j];
            if (!d || !d->fields[k].layout_off)
                break;
            int32_t x, y;
            memcpy(&x, (const char *)&py.layout + d->fields[k].layout_off, 4);
            memcpy(&y, (const char *)b + d->fields[k].layout_off, 4);
            /* Struct sizes may differ by build options the installed
             * headers do not show (3.15's interp by 8 bytes); every
             * offset must agree. */
            if (d->fields[k].layout_off ==
                    offsetof(pyspy_py_layout, interp_size) ||
                d->fields[k].layout_off ==
                    offsetof(pyspy_py_layout, tstate_size))
                continue;
            if (x != y)
                printf("%u:%d!=%d,", d->fields[k].layout_off, x, y);
        }
        printf("\n");
        pyspy_python_free(&py);
    }
    if (nosyms && *nosyms == '1')
        for (size_t i = 0; i < src->nmodules; i++)
            src->modules[i].nsymbols = saved[i];
    free(saved);
    pyspy_memsrc_close(src);
    CHECK(rc == 0);
}

TEST_MAIN(T(version_from_hex), T(version_from_text), T(version_from_name),
          T(debug_maps_cover_313_plus), T(unsupported_versions_are_named),
          T(trace_refs_builds_refused), T(no_interpreter_names_origin),
          T(interpreter_must_validate), T(debug_offsets_patch_layout),
          T(debug_offsets_scan_finds_cookie), T(probe_pid))
