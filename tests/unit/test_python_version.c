/* Version parsing for interpreter discovery, and (with PYSPY_PROBE_PID
 * set) a live probe used by tests/test_python_find.py: opens the pid,
 * finds the interpreter and prints what it found as key=value lines. */
#include "analyze/py_layout_tables.h"
#include "analyze/python.h"
#include "analyze/python_find.h"
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

/* Live probe: prints what discovery found; nothing to check here beyond
 * success (tests/test_python_find.py compares it with the target). */
TEST(probe_pid) {
    const char *pid = getenv("PYSPY_PROBE_PID");
    if (!pid || !*pid) {
        printf("# PYSPY_PROBE_PID not set: no live probe\n");
        return;
    }
    pyspy_memsrc *src = NULL;
    pyspy_error err = {0};
    int rc = pyspy_memsrc_open_pid(atoi(pid), PYSPY_NONBLOCKING, &src, &err);
    if (rc != 0) {
        printf("error=%d %s\n", err.code, err.msg);
        CHECK(rc == 0);
        return;
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
        pyspy_python_free(&py);
    }
    pyspy_memsrc_close(src);
    CHECK(rc == 0);
}

TEST_MAIN(T(version_from_hex), T(version_from_text), T(version_from_name),
          T(debug_maps_cover_313_plus), T(probe_pid))
