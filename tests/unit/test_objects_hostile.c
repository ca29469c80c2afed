/* The object reader on hostile memory: self-referencing containers,
 * absurd sizes, and buffers of random pointers must give bounded reprs
 * (or NULL), never a crash, a hang or an unbounded allocation. */
#include "analyze/cpython/layout.h"
#include "analyze/objects/objects.h"
#include "testlib.h"

#include <stdlib.h>

#define BASE 0x100000ull
#define SIZE 65536

static uint8_t mem[SIZE];

static int buf_read(pyspy_memsrc *src, uint64_t addr, void *buf, size_t len,
                    pyspy_error *err) {
    (void)src;
    if (addr < BASE || addr - BASE > SIZE || len > SIZE - (addr - BASE))
        return pyspy_error_set(err, PYSPY_E_UNREADABLE, "out of range");
    memcpy(buf, mem + (addr - BASE), len);
    return 0;
}

static const pyspy_memsrc_ops ops = {.kind = "test", .read = buf_read};

static void put(uint64_t addr, uint64_t v) {
    memcpy(mem + (addr - BASE), &v, 8);
}

/* A static type object named name with flags at addr. */
static void make_type(const pyspy_py_layout *l, uint64_t addr, const char *name,
                      uint64_t flags) {
    uint64_t name_at = addr + 400;
    put(addr + (uint64_t)l->ob_type, addr);
    put(addr + (uint64_t)l->type_tp_name, name_at);
    put(addr + (uint64_t)l->type_tp_flags, flags);
    strcpy((char *)mem + (name_at - BASE), name);
}

static pyspy_python setup(int minor) {
    pyspy_python py;
    memset(&py, 0, sizeof py);
    py.major = 3;
    py.minor = minor;
    const pyspy_py_layout *l = pyspy_py_layout_builtin(3, minor, false);
    CHECK(l != NULL);
    if (l)
        py.layout = *l;
    return py;
}

#define T_LIST (BASE + 0x1000)
#define T_DICT (BASE + 0x1400)
#define T_TUPLE (BASE + 0x1800)
#define T_STR (BASE + 0x1c00)

TEST(self_containing_and_huge) {
    pyspy_python py = setup(11);
    const pyspy_py_layout *l = &py.layout;
    memset(mem, 0, sizeof mem);
    make_type(l, T_LIST, "list", 1UL << 25);
    make_type(l, T_TUPLE, "tuple", 1UL << 26);
    pyspy_memsrc src = {.ops = &ops};

    uint64_t L = BASE + 0x3000, items = BASE + 0x3100;
    put(L + (uint64_t)l->ob_type, T_LIST);
    put(L + (uint64_t)l->var_ob_size, 1);
    put(L + (uint64_t)l->list_item, items);
    put(items, L);
    char *s = pyspy_py_repr(&src, &py, L, 2);
    CHECK_STR(s, "[[...]]");
    free(s);

    /* ob_size far beyond anything real */
    put(L + (uint64_t)l->var_ob_size, 1ull << 40);
    s = pyspy_py_repr(&src, &py, L, 2);
    CHECK(s && strncmp(s, "<list at 0x", 11) == 0);
    free(s);

    /* a tuple of 100 copies of itself: output is bounded by length */
    uint64_t T = BASE + 0x4000;
    put(T + (uint64_t)l->ob_type, T_TUPLE);
    put(T + (uint64_t)l->var_ob_size, 100);
    for (int i = 0; i < 100; i++)
        put(T + (uint64_t)l->tuple_item + 8 * (uint64_t)i, T);
    s = pyspy_py_repr(&src, &py, T, 2);
    CHECK(s && strlen(s) <= 4096 + 3);
    free(s);

    /* unreadable object and type */
    CHECK(pyspy_py_repr(&src, &py, 0x10, 1) == NULL);
    uint64_t v;
    pyspy_error err = {0};
    CHECK(pyspy_py_dict_get_str(&src, &py, L, "x", &v, &err) == -1 || v == 0);
    uint64_t *it;
    size_t n;
    CHECK(pyspy_py_seq_items(&src, &py, L, &it, &n, 10, &err) == -1);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

TEST(random_memory_every_version) {
    int minors[] = {6, 7, 8, 9, 10, 11, 12, 13};
    pyspy_memsrc src = {.ops = &ops};
    size_t done = 0, containers = 0;
    for (size_t m = 0; m < sizeof minors / sizeof minors[0]; m++) {
        pyspy_python py = setup(minors[m]);
        const pyspy_py_layout *l = &py.layout;
        for (int round = 0; round < 4; round++) {
            for (size_t i = 0; i < SIZE; i += 8) {
                uint64_t r = next_rand(), v;
                switch (r % 4) {
                case 0:
                    v = BASE + (next_rand() % SIZE & ~7ull);
                    break;
                case 1:
                    v = (uint64_t[]){T_LIST, T_DICT, T_TUPLE,
                                     T_STR}[next_rand() % 4];
                    break;
                case 2:
                    v = next_rand() % 64;
                    break;
                default:
                    v = next_rand();
                }
                memcpy(mem + i, &v, 8);
            }
            make_type(l, T_LIST, "list", 1UL << 25);
            make_type(l, T_DICT, "dict", 1UL << 29);
            make_type(l, T_TUPLE, "tuple", 1UL << 26);
            make_type(l, T_STR, "str", 1UL << 28);
            for (uint64_t a = BASE + 0x2000; a < BASE + SIZE; a += 56) {
                char *s = pyspy_py_repr(&src, &py, a, 1 + (int)(a % 3));
                if (s) {
                    CHECK(strlen(s) <= 4096 + 3);
                    containers += strchr("[({", s[0]) != NULL && s[0];
                }
                free(s);
                uint64_t v;
                pyspy_py_dict_get_str(&src, &py, a, "name", &v, NULL);
                char *t = pyspy_py_str(&src, &py, a, 64, NULL);
                if (t)
                    CHECK(strlen(t) <= 64);
                free(t);
                done++;
            }
        }
    }
    CHECK(done > 1000);
    /* the fuzz reaches the container code, not only the type check */
    CHECK(containers > 100);
    printf("# %zu reprs, %zu of containers\n", done, containers);
}

TEST_MAIN(T(self_containing_and_huge), T(random_memory_every_version))
