/* top's counters: own/total per function and per line, recursion counted
 * once, --idle/--gil filtering, current vs overall, sort orders. */
#include "analyze/sample/top_stats.h"
#include "heap_bytes.h"
#include "testlib.h"

#include <stdlib.h>

static pyspy_frame fr(const char *name, const char *file, int line) {
    pyspy_frame f = {0};
    f.name = (char *)name;
    f.filename = (char *)file;
    f.line = line;
    return f;
}

static const pyspy_top_entry *find(const pyspy_top_table *t, const char *l) {
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->e[i].label, l) == 0)
            return &t->e[i];
    return NULL;
}

TEST(own_total_and_recursion) {
    pyspy_top_stats s = {0};
    pyspy_agg_opts o = {0};
    /* innermost first: rec -> rec -> main */
    pyspy_frame f[3] = {fr("rec", "r.py", 3), fr("rec", "r.py", 5),
                        fr("main", "r.py", 9)};
    pyspy_trace tr = {
        .active = true, .owns_gil = true, .frames = f, .nframes = 3};
    pyspy_traces ts = {.traces = &tr, .ntraces = 1};
    for (int i = 0; i < 4; i++) {
        CHECK(pyspy_top_add(&s, &o, &ts) == 0);
        pyspy_top_tick(&s, 0, false);
    }
    const pyspy_top_entry *rec = find(&s.funcs, "rec (r.py)");
    const pyspy_top_entry *main_ = find(&s.funcs, "main (r.py)");
    CHECK(rec && rec->all_own == 4 && rec->all_total == 4);
    CHECK(main_ && main_->all_own == 0 && main_->all_total == 4);
    CHECK(find(&s.lines, "rec (r.py:3)") && find(&s.lines, "rec (r.py:5)"));
    CHECK(find(&s.lines, "rec (r.py:5)")->all_own == 0);
    CHECK(s.overall_samples == 4 && s.gil == 4 && s.active == 4);
    pyspy_top_reset_current(&s);
    CHECK(rec->cur_own == 0 && rec->all_own == 4 && s.current_samples == 0);
    uint32_t order[8];
    pyspy_top_sort(&s.funcs, 3, order);
    CHECK_STR(s.funcs.e[order[0]].label, "rec (r.py)");
    pyspy_top_sort(&s.funcs, 4, order);
    CHECK_STR(s.funcs.e[order[0]].label, "main (r.py)");
    pyspy_top_free(&s);
}

TEST(idle_filtered_unless_asked) {
    pyspy_top_stats s = {0};
    pyspy_agg_opts o = {0};
    pyspy_frame f[1] = {fr("wait", "t.py", 1)};
    pyspy_trace tr = {.active = false, .frames = f, .nframes = 1};
    pyspy_traces ts = {.traces = &tr, .ntraces = 1};
    CHECK(pyspy_top_add(&s, &o, &ts) == 0);
    pyspy_top_tick(&s, 0, false);
    CHECK(s.funcs.n == 0 && s.threads == 1);
    o.include_idle = true;
    CHECK(pyspy_top_add(&s, &o, &ts) == 0);
    pyspy_top_tick(&s, 1, true);
    CHECK(s.funcs.n == 1 && s.errors == 1 && s.late == 1);
    o.gil_only = true;
    CHECK(pyspy_top_add(&s, &o, &ts) == 0);
    CHECK(find(&s.funcs, "wait (t.py)")->all_total == 1);
    pyspy_top_free(&s);
}

TEST(many_functions_grow_table) {
    pyspy_top_stats s = {0};
    pyspy_agg_opts o = {0};
    char names[3000][16];
    pyspy_frame *f = calloc(3000, sizeof *f);
    for (int i = 0; i < 3000; i++) {
        snprintf(names[i], sizeof names[i], "f%d", i);
        f[i] = fr(names[i], "m.py", i + 1);
    }
    pyspy_trace tr = {.active = true, .frames = f, .nframes = 3000};
    pyspy_traces ts = {.traces = &tr, .ntraces = 1};
    CHECK(pyspy_top_add(&s, &o, &ts) == 0);
    CHECK(s.funcs.n == 3000);
    CHECK(find(&s.funcs, "f2999 (m.py)")->all_total == 1);
    CHECK(find(&s.funcs, "f0 (m.py)")->all_own == 1);
    free(f);
    pyspy_top_free(&s);
}

/* top's memory is set by the distinct functions and lines seen, not by
 * the number of ticks. */
TEST(memory_stays_flat_over_ticks) {
    pyspy_top_stats s = {0};
    pyspy_agg_opts o = {0};
    pyspy_frame f[2][2] = {{fr("a", "m.py", 3), fr("main", "m.py", 9)},
                           {fr("b", "m.py", 5), fr("main", "m.py", 10)}};
    pyspy_trace tr[2] = {
        {.active = true, .frames = f[0], .nframes = 2},
        {.active = true, .frames = f[1], .nframes = 2},
    };
    pyspy_traces ts = {.traces = tr, .ntraces = 2};
    size_t before = 0;
    for (int i = 0; i < 30000; i++) {
        if (i == 1000)
            before = heap_bytes();
        CHECK(pyspy_top_add(&s, &o, &ts) == 0);
        pyspy_top_tick(&s, 0, false);
        if (i % 100 == 0)
            pyspy_top_reset_current(&s);
    }
    size_t after = heap_bytes();
    CHECK(after < before + 4096);
    CHECK(s.funcs.n == 3 && s.lines.n == 4 && s.overall_samples == 30000);
    pyspy_top_free(&s);
}

TEST_MAIN(T(own_total_and_recursion), T(memory_stays_flat_over_ticks),
          T(idle_filtered_unless_asked), T(many_functions_grow_table))
