/* capture/base: array growth (doubling, overflow refused, the array kept
 * on failure) and the monotonic clock. */
#include "capture/base/array.h"
#include "capture/base/clock.h"
#include "testlib.h"

#include <stdint.h>
#include <stdlib.h>

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

TEST(clock_is_monotonic) {
    int64_t a = pyspy_clock_ns(), b = pyspy_clock_ns();
    CHECK(a > 0 && b >= a);
    int64_t u = pyspy_clock_us();
    CHECK(u >= a / 1000);
}

TEST_MAIN(T(array_grows_by_doubling_from_first),
          T(array_refuses_overflow_and_keeps_the_array), T(clock_is_monotonic))
