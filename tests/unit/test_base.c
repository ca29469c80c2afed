/* capture/base: array growth (doubling, overflow refused, the array kept
 * on failure), the hash map, the monotonic clock and temporary files. */
#include "capture/base/array.h"
#include "capture/base/clock.h"
#include "capture/base/file_io.h"
#include "capture/base/map.h"
#include "testlib.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TEST(array_grows_by_doubling_from_first) {
    size_t cap = 0;
    int *v = pyspy_array_grow(NULL, &cap, 1, sizeof *v, 16);
    CHECK(v && cap == 16);
    int *same = pyspy_array_grow(v, &cap, 16, sizeof *v, 16);
    CHECK(same == v && cap == 16);
    int *w = pyspy_array_grow(v, &cap, 17, sizeof *v, 16);
    CHECK(w && cap == 32);
    if (w)
        v = w;
    w = pyspy_array_grow(v, &cap, 1000, sizeof *v, 16);
    CHECK(w && cap == 1024);
    if (w)
        v = w;
    free(v);
}

TEST(array_refuses_overflow_and_keeps_the_array) {
    size_t cap = 4;
    uint64_t *v = malloc(cap * sizeof *v);
    CHECK(v != NULL);
    v[0] = 42;
    CHECK(pyspy_array_grow(v, &cap, SIZE_MAX / 4, sizeof *v, 16) == NULL);
    CHECK(cap == 4 && v[0] == 42);
    CHECK(pyspy_array_grow(v, &cap, SIZE_MAX, 1, 16) == NULL);
    CHECK(cap == 4);
    free(v);
}

/* In place: the array and its capacity change together on success and
 * not at all on failure. */
TEST(array_reserve_updates_in_place) {
    int *v = NULL;
    size_t cap = 0;
    CHECK(pyspy_array_reserve(&v, &cap, 1, sizeof *v, 16) == 0);
    CHECK(v && cap == 16);
    int *before = v;
    CHECK(pyspy_array_reserve(&v, &cap, 16, sizeof *v, 16) == 0);
    CHECK(v == before && cap == 16);
    if (v)
        v[0] = 42;
    CHECK(pyspy_array_reserve(&v, &cap, SIZE_MAX / 2, sizeof *v, 16) == -1);
    CHECK(v == before && cap == 16 && v[0] == 42);
    CHECK(pyspy_array_reserve(&v, &cap, 17, sizeof *v, 16) == 0);
    CHECK(v && cap == 32 && v[0] == 42);
    free(v);
}

/* Every key stays found across each growth of the table, a second add
 * gives the first value back, and keys that were never added (0 too)
 * are absent. */
TEST(map_keeps_u64_keys_across_growth) {
    pyspy_map m = {0};
    uint32_t v = 7;
    CHECK(!pyspy_map_find(&m, 0, &v) && v == 7);
    for (uint32_t i = 0; i < 5000; i++) {
        uint32_t val = i;
        bool added = false;
        CHECK(pyspy_map_add(&m, (uint64_t)i << 12, &val, &added) == 0);
        CHECK(added && val == i);
    }
    CHECK(m.n == 5000 && m.cap >= 10000);
    for (uint32_t i = 0; i < 5000; i++) {
        uint32_t val = UINT32_MAX;
        CHECK(pyspy_map_find(&m, (uint64_t)i << 12, &val) && val == i);
        bool added = true;
        val = 99999;
        CHECK(pyspy_map_add(&m, (uint64_t)i << 12, &val, &added) == 0);
        CHECK(!added && val == i);
    }
    CHECK(!pyspy_map_find(&m, 1, &v));
    CHECK(!pyspy_map_find(&m, (uint64_t)5000 << 12, &v));
    CHECK(m.n == 5000);
    pyspy_map_clear(&m);
    CHECK(m.n == 0 && !pyspy_map_find(&m, 0, &v));
    pyspy_map_free(&m);
    CHECK(m.slots == NULL && m.cap == 0);
}

static const char *const words[] = {"alpha", "beta", "gamma", "delta"};

static bool word_eq(const void *ctx, uint32_t v) {
    return strcmp(words[v], ctx) == 0;
}

/* Hashed keys: entries of one hash are told apart by the callback, so
 * even a hash shared by every key finds each entry. */
TEST(map_tells_equal_hashes_apart) {
    pyspy_map m = {0};
    for (uint32_t i = 0; i < 4; i++) {
        uint32_t val = i;
        bool added = false;
        CHECK(pyspy_map_add_hashed(&m, 42, word_eq, words[i], &val, &added) ==
              0);
        CHECK(added);
    }
    for (uint32_t i = 0; i < 4; i++) {
        uint32_t val = UINT32_MAX;
        CHECK(pyspy_map_find_hashed(&m, 42, word_eq, words[i], &val));
        CHECK(val == i);
    }
    uint32_t val;
    CHECK(!pyspy_map_find_hashed(&m, 42, word_eq, "epsilon", &val));
    CHECK(!pyspy_map_find_hashed(&m, 43, word_eq, "alpha", &val));
    CHECK(pyspy_hash_bytes("alpha", 5) == pyspy_hash_bytes("alpha", 5));
    CHECK(pyspy_hash_bytes("alpha", 5) != pyspy_hash_bytes("alphb", 5));
    pyspy_map_free(&m);
}

/* A size that would overflow is refused and the table kept. */
TEST(map_refuses_overflow_and_keeps_the_table) {
    pyspy_map m = {0};
    uint32_t val = 1;
    bool added;
    CHECK(pyspy_map_add(&m, 5, &val, &added) == 0 && added);
    CHECK(pyspy_map_reserve(&m, SIZE_MAX / 2) == -1);
    CHECK(pyspy_map_reserve(&m, SIZE_MAX) == -1);
    CHECK(pyspy_map_reserve(&m, SIZE_MAX / 4) == -1);
    val = 0;
    CHECK(pyspy_map_find(&m, 5, &val) && val == 1 && m.n == 1);
    pyspy_map_free(&m);
}

TEST(clock_is_monotonic) {
    int64_t a = pyspy_clock_ns(), b = pyspy_clock_ns();
    CHECK(a > 0 && b >= a);
    int64_t u = pyspy_clock_us();
    CHECK(u >= a / 1000);
}

/* A temporary file is already unlinked (nothing is left behind, whatever
 * happens to the process), not inherited by children, and usable; a
 * $TMPDIR that cannot hold one is named in the error. */
TEST(temp_fd_is_unlinked_and_named_on_failure) {
    pyspy_error err = {0};
    int fd = pyspy_temp_fd("test", &err);
    CHECK(fd >= 0);
    if (fd >= 0) {
        struct stat st;
        CHECK(fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 0);
        CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        CHECK(pyspy_write_full(fd, "abc", 3, "t", &err) == 0);
        char buf[3] = {0};
        CHECK(pyspy_pread_full(fd, buf, 3, 0, "t", &err) == 0);
        CHECK(memcmp(buf, "abc", 3) == 0);
        close(fd);
    }
    const char *old = getenv("TMPDIR");
    char *keep = old ? strdup(old) : NULL;
    setenv("TMPDIR", "/nonexistent-pyspy-dir", 1);
    CHECK(pyspy_temp_fd("test", &err) == -1);
    CHECK(strstr(err.msg, "cannot create a temporary file in "
                          "/nonexistent-pyspy-dir") != NULL);
    if (keep)
        setenv("TMPDIR", keep, 1);
    else
        unsetenv("TMPDIR");
    free(keep);
}

TEST_MAIN(T(array_grows_by_doubling_from_first),
          T(array_refuses_overflow_and_keeps_the_array),
          T(array_reserve_updates_in_place),
          T(map_keeps_u64_keys_across_growth), T(map_tells_equal_hashes_apart),
          T(map_refuses_overflow_and_keeps_the_table), T(clock_is_monotonic),
          T(temp_fd_is_unlinked_and_named_on_failure))
