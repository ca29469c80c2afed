/* Aggregation and record's writers on synthetic stack traces. */
#include "analyze/sample/aggregate.h"
#include "analyze/sample/record.h"
#include "formats/record_formats.h"
#include "heap_bytes.h"
#include "testlib.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

/* How many samples the last pyspy_agg_add added. */
static size_t added;

typedef struct fr {
    const char *name, *file;
    int line;
} fr;

/* One trace; frames given innermost first, as the walker fills them. */
static pyspy_trace mk_trace(int pid, uint64_t tid, const char *tname,
                            bool active, bool gil, const fr *f, size_t n) {
    pyspy_trace t = {0};
    t.pid = pid;
    t.thread_id = tid;
    t.os_thread_id = tid & 0xffff;
    t.thread_name = tname ? strdup(tname) : NULL;
    t.active = active;
    t.owns_gil = gil;
    t.frames = calloc(n, sizeof *t.frames);
    t.nframes = n;
    for (size_t i = 0; i < n; i++) {
        t.frames[i].name = strdup(f[i].name);
        t.frames[i].filename = strdup(f[i].file);
        t.frames[i].line = f[i].line;
    }
    return t;
}

static void free_trace(pyspy_trace *t) {
    for (size_t i = 0; i < t->nframes; i++) {
        free(t->frames[i].name);
        free(t->frames[i].filename);
    }
    free(t->frames);
    free(t->thread_name);
}

static const fr busy[] = {{"work", "app.py", 7}, {"<module>", "app.py", 12}};
static const fr busy2[] = {{"work", "app.py", 8}, {"<module>", "app.py", 12}};
static const fr idle[] = {{"wait", "threading.py", 320},
                          {"run", "worker.py", 3}};

/* Ticks: main busy (line 7) x3, busy (line 8) x1, a worker idle x4. */
static pyspy_agg *build(pyspy_agg_opts o) {
    pyspy_agg *a = pyspy_agg_new(&o, NULL);
    pyspy_traces ts = {.pid = 42, .command_line = (char *)"python3 app.py"};
    pyspy_trace tr[2];
    for (int i = 0; i < 4; i++) {
        tr[0] = mk_trace(42, 0x7f00aa, "MainThread", true, true,
                         i == 3 ? busy2 : busy, 2);
        tr[1] = mk_trace(42, 0x7f00bb, "worker", false, false, idle, 2);
        ts.traces = tr;
        ts.ntraces = 2;
        CHECK(pyspy_agg_add(a, &ts, 1000 + i * 10000, NULL, NULL) == 0);
        free_trace(&tr[0]);
        free_trace(&tr[1]);
    }
    return a;
}

static char *write_to_string(int (*fn)(FILE *, const pyspy_agg *,
                                       pyspy_error *),
                             const pyspy_agg *a) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    pyspy_error err = {0};
    CHECK(fn(f, a, &err) == 0);
    fclose(f);
    return buf;
}

static int fg(FILE *f, const pyspy_agg *a, pyspy_error *e) {
    return pyspy_write_flamegraph(f, a, "pyspy record -- python3 app.py", e);
}
static int ss(FILE *f, const pyspy_agg *a, pyspy_error *e) {
    return pyspy_write_speedscope(f, a, e);
}

TEST(filters_idle_and_gil) {
    pyspy_agg *a = build((pyspy_agg_opts){.show_line_numbers = true});
    CHECK(a->total == 4); /* idle worker excluded */
    CHECK(a->nthreads == 1);
    pyspy_agg_free(a);
    a = build((pyspy_agg_opts){.include_idle = true, .show_line_numbers = 1});
    CHECK(a->total == 8);
    CHECK(a->nthreads == 2);
    CHECK(a->gil == 4);
    pyspy_agg_free(a);
    a = build((pyspy_agg_opts){.include_idle = true, .gil_only = true});
    CHECK(a->total == 4);
    pyspy_agg_free(a);
}

TEST(raw_exact) {
    pyspy_agg *a = build((pyspy_agg_opts){.show_line_numbers = true});
    char *s = write_to_string(pyspy_write_raw, a);
    CHECK_STR(s, "<module> (app.py:12);work (app.py:7) 3\n"
                 "<module> (app.py:12);work (app.py:8) 1\n");
    free(s);
    pyspy_agg_free(a);
}

TEST(raw_nolineno_merges) {
    pyspy_agg *a = build((pyspy_agg_opts){.show_line_numbers = false});
    char *s = write_to_string(pyspy_write_raw, a);
    CHECK_STR(s, "<module> (app.py);work (app.py) 4\n");
    free(s);
    pyspy_agg_free(a);
}

TEST(raw_threads_and_processes_prefix) {
    pyspy_agg *a = build((pyspy_agg_opts){.include_idle = true,
                                          .include_thread_ids = true,
                                          .subprocesses = true,
                                          .show_line_numbers = true});
    char *s = write_to_string(pyspy_write_raw, a);
    CHECK_STR(s, "process 42:\"python3 app.py\";thread (170): MainThread;"
                 "<module> (app.py:12);work (app.py:7) 3\n"
                 "process 42:\"python3 app.py\";thread (170): MainThread;"
                 "<module> (app.py:12);work (app.py:8) 1\n"
                 "process 42:\"python3 app.py\";thread (187): worker;"
                 "run (worker.py:3);wait (threading.py:320) 4\n");
    free(s);
    pyspy_agg_free(a);
}

TEST(subprocess_chain) {
    pyspy_agg_opts o = {.subprocesses = true, .show_line_numbers = true};
    pyspy_agg *a = pyspy_agg_new(&o, NULL);
    const fr f[] = {{"work", "w.py", 1}};
    /* parent 42, child 43, grandchild 44 whose ppid loops back to 44's
     * own child (hostile): the chain stops, bounded. */
    int pids[] = {42, 43, 44}, ppids[] = {1, 42, 43};
    const char *cmds[] = {"python p.py", "python c.py", "python g.py"};
    for (int i = 0; i < 3; i++) {
        pyspy_trace tr = mk_trace(pids[i], 1, NULL, true, true, f, 1);
        pyspy_traces ts = {.pid = pids[i],
                           .ppid = ppids[i],
                           .command_line = (char *)cmds[i],
                           .traces = &tr,
                           .ntraces = 1};
        CHECK(pyspy_agg_add(a, &ts, i, &added, NULL) == 0 && added == 1);
        free_trace(&tr);
    }
    char *s = write_to_string(pyspy_write_raw, a);
    CHECK_STR(s, "process 42:\"python p.py\";process 43:\"python c.py\";"
                 "process 44:\"python g.py\";work (w.py:1) 1\n"
                 "process 42:\"python p.py\";process 43:\"python c.py\";"
                 "work (w.py:1) 1\n"
                 "process 42:\"python p.py\";work (w.py:1) 1\n");
    free(s);
    /* A ppid cycle (43 <-> 42) ends the chain instead of looping. */
    pyspy_trace tr = mk_trace(42, 1, NULL, true, true, f, 1);
    pyspy_traces ts = {.pid = 42,
                       .ppid = 43,
                       .command_line = (char *)"x",
                       .traces = &tr,
                       .ntraces = 1};
    CHECK(pyspy_agg_add(a, &ts, 9, &added, NULL) == 0 && added == 1);
    free_trace(&tr);
    pyspy_agg_free(a);
}

TEST(raw_hostile_names) {
    pyspy_agg_opts o = {.show_line_numbers = true};
    pyspy_agg *a = pyspy_agg_new(&o, NULL);
    const fr bad[] = {{"a;b\n\xff", "x\x01.py", 1}};
    pyspy_trace tr = mk_trace(1, 1, NULL, true, true, bad, 1);
    pyspy_traces ts = {.pid = 1, .traces = &tr, .ntraces = 1};
    CHECK(pyspy_agg_add(a, &ts, 0, &added, NULL) == 0 && added == 1);
    free_trace(&tr);
    char *s = write_to_string(pyspy_write_raw, a);
    CHECK_STR(s, "a:b?? (x?.py:1) 1\n");
    free(s);
    pyspy_agg_free(a);
}

TEST(frameless_threads_skipped) {
    pyspy_agg_opts o = {.include_idle = true, .include_thread_ids = true};
    pyspy_agg *a = pyspy_agg_new(&o, NULL);
    pyspy_trace tr = mk_trace(1, 1, "starting", true, true, NULL, 0);
    pyspy_traces ts = {.pid = 1, .traces = &tr, .ntraces = 1};
    CHECK(pyspy_agg_add(a, &ts, 0, &added, NULL) == 0 && added == 0);
    CHECK(a->total == 0 && a->nstacks == 0);
    free_trace(&tr);
    pyspy_agg_free(a);
}

TEST(runs_are_time_ordered) {
    pyspy_agg *a =
        build((pyspy_agg_opts){.show_line_numbers = true, .period_us = 10000});
    CHECK(a->threads[0].nruns == 2);
    CHECK(a->threads[0].runs[0].count == 3);
    CHECK(a->threads[0].runs[1].count == 1);
    CHECK(a->threads[0].runs[1].first_us == 31000);
    pyspy_agg_free(a);
}

TEST(thread_id_os_first) {
    char buf[32];
    pyspy_format_thread_id(0x7f6bbf9c56c0, 13721, buf, sizeof buf);
    CHECK_STR(buf, "13721");
    /* No OS thread id known: the pthread id, as py-spy's {:#X}. */
    pyspy_format_thread_id(0x7f6bbf9c56c0, 0, buf, sizeof buf);
    CHECK_STR(buf, "0x7F6BBF9C56C0");
}

TEST(speedscope_structure) {
    pyspy_agg *a = build((pyspy_agg_opts){.include_idle = true,
                                          .include_thread_ids = true,
                                          .show_line_numbers = true,
                                          .period_us = 10000,
                                          .rate = 100});
    char *s = write_to_string(ss, a);
    /* py-spy's field order and its null fields, as serde writes them. */
    const char *head = "{\"$schema\":\"https://www.speedscope.app/"
                       "file-format-schema.json\",\"profiles\":[{\"type\":"
                       "\"sampled\",\"name\":\"Thread 170 \\\"MainThread\\\"\","
                       "\"unit\":\"seconds\",\"startValue\":0.0,\"endValue\":"
                       "0.04,\"samples\":[";
    CHECK(strncmp(s, head, strlen(head)) == 0);
    CHECK(strstr(s, "\"weights\":[0.01,0.01,0.01,0.01]}") != NULL);
    CHECK(strstr(s, "{\"name\":\"thread (170): MainThread\",\"file\":"
                    "\"\",\"line\":0,\"col\":null}") != NULL);
    CHECK(strstr(s, "{\"name\":\"work\",\"file\":\"app.py\",\"line\":7,"
                    "\"col\":null}") != NULL);
    const char *tail =
        "]},\"activeProfileIndex\":null,\"exporter\":\"pyspy@" PYSPY_VERSION
        "\",\"name\":\"py-spy profile\"}\n";
    CHECK(strlen(s) > strlen(tail) &&
          strcmp(s + strlen(s) - strlen(tail), tail) == 0);
    cJSON *j = cJSON_Parse(s);
    CHECK(j != NULL);
    cJSON *frames =
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "shared"), "frames");
    CHECK(cJSON_IsArray(frames));
    int nframes = cJSON_GetArraySize(frames);
    cJSON *profiles = cJSON_GetObjectItem(j, "profiles");
    CHECK(cJSON_GetArraySize(profiles) == 2);
    cJSON *p0 = cJSON_GetArrayItem(profiles, 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(p0, "name")),
              "Thread 170 \"MainThread\"");
    /* One sample per tick, in time order: line 7 three times, then 8. */
    cJSON *samples = cJSON_GetObjectItem(p0, "samples");
    CHECK(cJSON_GetArraySize(samples) == 4);
    for (int i = 0; i < 4; i++) {
        cJSON *smp = cJSON_GetArrayItem(samples, i);
        CHECK(cJSON_GetArraySize(smp) == 3);
        int leaf = (int)cJSON_GetArrayItem(smp, 2)->valuedouble;
        CHECK(leaf >= 0 && leaf < nframes);
        cJSON *lf = cJSON_GetArrayItem(frames, leaf);
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(lf, "name")),
                  "work");
        CHECK(cJSON_GetObjectItem(lf, "line")->valuedouble == (i == 3 ? 8 : 7));
    }
    cJSON_Delete(j);
    free(s);
    pyspy_agg_free(a);
    /* Without line numbers every line is null. */
    a = build((pyspy_agg_opts){.period_us = 10000, .rate = 100});
    s = write_to_string(ss, a);
    CHECK(strstr(s, "\"line\":null,\"col\":null}") != NULL);
    CHECK(strstr(s, "\"line\":7") == NULL && strstr(s, "\"line\":0") == NULL);
    free(s);
    pyspy_agg_free(a);
}

/* Ticks skipped or failed: the next sample stands for them, so the
 * weights still add up to the time recorded; two targets sampled in one
 * tick share it. */
TEST(speedscope_skipped_ticks_weigh) {
    pyspy_agg_opts o = {
        .show_line_numbers = true, .period_us = 10000, .rate = 100};
    pyspy_agg *a = pyspy_agg_new(&o, NULL);
    const int64_t at[] = {0, 10000, 43000, 43000, 50000};
    const int pid[] = {42, 42, 42, 43, 42};
    for (int i = 0; i < 5; i++) {
        pyspy_traces ts = {.pid = pid[i]};
        pyspy_trace tr =
            mk_trace(pid[i], 0x7f00aa, "MainThread", true, true, busy, 2);
        ts.traces = &tr;
        ts.ntraces = 1;
        CHECK(pyspy_agg_add(a, &ts, at[i], NULL, NULL) == 0);
        free_trace(&tr);
    }
    CHECK(a->nthreads == 2);
    char *s = write_to_string(ss, a);
    CHECK(strstr(s, "\"endValue\":0.06,") != NULL);
    CHECK(strstr(s, "\"weights\":[0.01,0.01,0.03,0.01]}") != NULL);
    CHECK(strstr(s, "\"endValue\":0.03,") != NULL);
    CHECK(strstr(s, "\"weights\":[0.03]}") != NULL);
    free(s);
    pyspy_agg_free(a);
}

TEST(chrometrace_structure) {
    pyspy_agg *a =
        build((pyspy_agg_opts){.show_line_numbers = true, .period_us = 10000});
    char *s = write_to_string(pyspy_write_chrometrace, a);
    cJSON *j = cJSON_Parse(s), *e;
    CHECK(cJSON_IsArray(j));
    int meta = 0, depth = 0, maxdepth = 0, begins = 0, module_b = 0;
    double last_ts = 0, module_begin = -1, module_end = -1;
    const char *stack[8];
    cJSON_ArrayForEach(e, j) {
        const char *ph = cJSON_GetStringValue(cJSON_GetObjectItem(e, "ph"));
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(e, "name"));
        CHECK(ph && name);
        if (!ph || !name)
            continue;
        /* py-spy's track: the pthread id, written as an integer. */
        cJSON *tid = cJSON_GetObjectItem(e, "tid");
        CHECK(cJSON_IsNumber(tid) && tid->valuedouble == 0x7f00aa);
        if (!strcmp(ph, "M")) {
            meta++;
            CHECK_STR(name, "thread_name");
            CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(
                          cJSON_GetObjectItem(e, "args"), "name")),
                      "thread (170): MainThread");
            continue;
        }
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(e, "cat")),
                  "py-spy");
        cJSON *args = cJSON_GetObjectItem(e, "args");
        CHECK(cJSON_IsNumber(cJSON_GetObjectItem(args, "line")));
        CHECK(cJSON_GetStringValue(cJSON_GetObjectItem(args, "filename")));
        double ts = cJSON_GetObjectItem(e, "ts")->valuedouble;
        CHECK(ts >= last_ts); /* time order */
        last_ts = ts;
        if (!strcmp(ph, "B")) {
            CHECK(depth < 8);
            if (depth < 8)
                stack[depth] = name;
            depth++;
            begins++;
            if (depth > maxdepth)
                maxdepth = depth;
            if (!strcmp(name, "<module>")) {
                module_b++;
                module_begin = ts;
            }
        } else {
            CHECK_STR(ph, "E");
            CHECK(depth > 0);
            /* Ends match the innermost open begin. */
            if (depth > 0 && depth <= 8)
                CHECK_STR(name, stack[depth - 1]);
            depth--;
            if (!strcmp(name, "<module>"))
                module_end = ts;
        }
    }
    CHECK(meta == 1);
    CHECK(depth == 0);
    CHECK(maxdepth == 2);
    /* <module> stays on the stack for all 4 samples; work changes line
     * (a different frame) once: 3 begins in all. */
    CHECK(module_b == 1);
    CHECK(module_end - module_begin == 40000);
    CHECK(begins == 3);
    cJSON_Delete(j);
    free(s);
    pyspy_agg_free(a);
}

TEST(flamegraph_basics) {
    pyspy_agg *a = build((pyspy_agg_opts){.show_line_numbers = true});
    char *s = write_to_string(fg, a);
    CHECK(strncmp(s, "<?xml", 5) == 0);
    CHECK(strstr(s, "<svg") != NULL);
    CHECK(strstr(s, "</svg>\n") != NULL);
    CHECK(strstr(s, "pyspy record -- python3 app.py (4 samples)") != NULL);
    CHECK(strstr(s, "data-l=\"&lt;module&gt; (app.py:12)\" data-s=\"4\"") !=
          NULL);
    CHECK(strstr(s, "data-l=\"work (app.py:7)\" data-s=\"3\" data-x=\"0\"") !=
          NULL);
    CHECK(strstr(s, "data-l=\"work (app.py:8)\" data-s=\"1\" data-x=\"3\"") !=
          NULL);
    CHECK(strstr(s, "function search(") != NULL);
    /* Every opened <g> is closed. */
    size_t open = 0, close = 0;
    for (const char *p = s; (p = strstr(p, "<g")); p++)
        open++;
    for (const char *p = s; (p = strstr(p, "</g>")); p++)
        close++;
    CHECK(open == close);
    free(s);
    pyspy_agg_free(a);
}

TEST(flamegraph_many_stacks_drops_narrow) {
    pyspy_agg_opts o = {.show_line_numbers = true};
    pyspy_agg *a = pyspy_agg_new(&o, NULL);
    char name[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(name, sizeof name, "f%d", i);
        fr f[2] = {{name, "m.py", 1}, {"main", "m.py", 2}};
        pyspy_trace tr = mk_trace(1, 1, NULL, true, true, f, 2);
        pyspy_traces ts = {.pid = 1, .traces = &tr, .ntraces = 1};
        CHECK(pyspy_agg_add(a, &ts, i, &added, NULL) == 0 && added == 1);
        free_trace(&tr);
    }
    CHECK(a->nstacks == 20000);
    char *s = write_to_string(fg, a);
    size_t boxes = 0;
    for (const char *p = s; (p = strstr(p, "<g class=\"f\"")); p++)
        boxes++;
    /* 1180 px / 20000 samples < 0.1 px: only all and main are drawn. */
    CHECK(boxes == 2);
    free(s);
    pyspy_agg_free(a);
}

TEST(empty_profile) {
    pyspy_agg_opts o = {0};
    pyspy_agg *a = pyspy_agg_new(&o, NULL);
    char *s = write_to_string(pyspy_write_raw, a);
    CHECK_STR(s, "");
    free(s);
    s = write_to_string(ss, a);
    cJSON *j = cJSON_Parse(s);
    CHECK(j && cJSON_GetArraySize(cJSON_GetObjectItem(j, "profiles")) == 0);
    cJSON_Delete(j);
    free(s);
    s = write_to_string(fg, a);
    CHECK(strstr(s, "</svg>") != NULL);
    free(s);
    pyspy_agg_free(a);
}

/* Eight threads whose stacks change at every tick: the worst case for
 * the time line (a run per sample). Returns the heap growth between the
 * 1000th and the 51000th tick. */
static size_t growth_over_ticks(pyspy_agg_opts o, pyspy_agg **out) {
    pyspy_agg *a = pyspy_agg_new(&o, NULL);
    pyspy_traces ts = {.pid = 42, .command_line = (char *)"python3 app.py"};
    pyspy_trace tr[2][8];
    for (int v = 0; v < 2; v++)
        for (int k = 0; k < 8; k++)
            tr[v][k] = mk_trace(42, 0x7f0000 + (uint64_t)k, "worker", true,
                                k == 0, v ? busy2 : busy, 2);
    ts.ntraces = 8;
    size_t before = 0;
    for (int i = 0; i < 51000; i++) {
        if (i == 1000)
            before = heap_bytes();
        ts.traces = tr[i & 1];
        size_t added = 0;
        CHECK(pyspy_agg_add(a, &ts, 1000 + (int64_t)i * 10000, &added, NULL) ==
                  0 &&
              added == 8);
    }
    size_t after = heap_bytes();
    for (int v = 0; v < 2; v++)
        for (int k = 0; k < 8; k++)
            free_trace(&tr[v][k]);
    *out = a;
    return after > before ? after - before : 0;
}

/* flamegraph, raw: memory set by the distinct stacks, not the samples.
 * The same ticks with a time line grow it, so the measure can fail. */
TEST(counts_only_memory_stays_flat) {
    pyspy_agg *a;
    size_t grew = growth_over_ticks((pyspy_agg_opts){.show_line_numbers = true,
                                                     .period_us = 10000,
                                                     .counts_only = true},
                                    &a);
    CHECK(grew < 4096);
    CHECK(a->nstacks == 2 && a->nthreads == 8 && a->total == 8 * 51000);
    for (size_t i = 0; i < a->nthreads; i++)
        CHECK(a->threads[i].nruns == 0 && a->threads[i].runs == NULL &&
              a->threads[i].samples == 51000);
    CHECK(a->stacks[0].count + a->stacks[1].count == 8 * 51000);
    char *raw = write_to_string(pyspy_write_raw, a);
    CHECK(raw && strstr(raw, ";work (app.py:7) 204000\n") &&
          strstr(raw, ";work (app.py:8) 204000\n"));
    free(raw);
    pyspy_agg_free(a);
    grew = growth_over_ticks(
        (pyspy_agg_opts){.show_line_numbers = true, .period_us = 10000}, &a);
    CHECK(grew > 8 * 50000 * sizeof(pyspy_agg_run) / 2);
    CHECK(a->threads[0].nruns == 51000);
    pyspy_agg_free(a);
}

/* record keeps a time line only for the formats that show one. */
TEST(record_keeps_time_lines_only_for_time_formats) {
    pyspy_config c = {.sampling_rate = 100};
    c.format = PYSPY_FORMAT_FLAMEGRAPH;
    CHECK(pyspy_record_agg_opts(&c).counts_only);
    c.format = PYSPY_FORMAT_RAW;
    CHECK(pyspy_record_agg_opts(&c).counts_only);
    c.format = PYSPY_FORMAT_SPEEDSCOPE;
    CHECK(!pyspy_record_agg_opts(&c).counts_only);
    c.format = PYSPY_FORMAT_CHROMETRACE;
    CHECK(!pyspy_record_agg_opts(&c).counts_only);
}

TEST_MAIN(T(filters_idle_and_gil), T(raw_exact), T(raw_nolineno_merges),
          T(raw_threads_and_processes_prefix), T(subprocess_chain),
          T(raw_hostile_names), T(frameless_threads_skipped),
          T(runs_are_time_ordered), T(thread_id_os_first),
          T(speedscope_structure), T(speedscope_skipped_ticks_weigh),
          T(chrometrace_structure), T(flamegraph_basics),
          T(flamegraph_many_stacks_drops_narrow), T(empty_profile),
          T(counts_only_memory_stays_flat),
          T(record_keeps_time_lines_only_for_time_formats))
