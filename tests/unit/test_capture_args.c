/* pyspy-capture's command line: defaults, every flag, every refusal. */
#include "testlib.h"
#include <pyspy.h>

#include "capture/snapshot/snapshot.h"

#include <stdlib.h>
#include <string.h>

static int run(const char *line, pyspy_capture_config *c, char **out,
               pyspy_error *e) {
    static char buf[2048];
    static char *argv[64];
    int argc = 0;
    argv[argc++] = "pyspy-capture";
    snprintf(buf, sizeof buf, "%s", line);
    for (char *t = strtok(buf, " "); t && argc < 63; t = strtok(NULL, " "))
        argv[argc++] = t;
    argv[argc] = NULL;
    pyspy_error_clear(e);
    return pyspy_capture_config_from_args(argc, argv, c, out, e);
}

static pyspy_capture_config ok(const char *line) {
    pyspy_capture_config c;
    pyspy_error e = {0};
    char *out = NULL;
    if (run(line, &c, &out, &e) != 0)
        fprintf(stderr, "  '%s' failed: %s\n", line, e.msg);
    CHECK(e.code == 0);
    free(out);
    return c;
}

static const char *fails(const char *line) {
    static pyspy_error e;
    pyspy_capture_config c;
    char *out = (char *)1;
    int rc = run(line, &c, &out, &e);
    if (rc == 0)
        fprintf(stderr, "  '%s' unexpectedly parsed\n", line);
    CHECK(rc == -1);
    CHECK(e.code == PYSPY_E_USAGE);
    CHECK(out == NULL);
    CHECK(c.output == NULL && c.core == NULL && c.pid == 0);
    CHECK(strchr(e.msg, '\n') == NULL);
    return e.msg;
}

static bool contains(const char *hay, const char *needle) {
    bool r = hay && strstr(hay, needle) != NULL;
    if (!r)
        fprintf(stderr, "  '%s' does not contain '%s'\n", hay ? hay : "(null)",
                needle);
    return r;
}

TEST(defaults) {
    pyspy_capture_config c = pyspy_capture_config_default();
    CHECK(c.pid == 0 && c.output == NULL && c.core == NULL);
    CHECK(c.blocking == PYSPY_LOCK);
    CHECK(!c.subprocesses && !c.hide_progress);
    CHECK(!c.filter_given && c.filter == PYSPY_FILTER_DEFAULT);
    CHECK(c.rate == 0 && c.duration_secs == 0 && c.memory_budget == 0);
    CHECK(c.command == PYSPY_CMD_NONE);
    pyspy_capture_config_free(&c);

    c = ok("--pid 42");
    CHECK(c.pid == 42 && c.output == NULL && c.blocking == PYSPY_LOCK);
    CHECK(c.filter == PYSPY_FILTER_DEFAULT && !c.filter_given);
    pyspy_capture_config_free(&c);
}

TEST(every_flag) {
    pyspy_capture_config c =
        ok("-p 0x2a -o snap.core.zst --nonblocking -s --hideprogress "
           "--filter 0x33 --memory-budget 64M");
    CHECK(c.pid == 42);
    CHECK_STR(c.output, "snap.core.zst");
    CHECK(c.blocking == PYSPY_NONBLOCKING);
    CHECK(c.subprocesses && c.hide_progress);
    CHECK(c.filter_given && c.filter == 0x33);
    CHECK(c.memory_budget == 64ull << 20);
    pyspy_capture_config_free(&c);

    c = ok("--pid=7 --already-locked --output=x --filter=7f");
    CHECK(c.pid == 7 && c.blocking == PYSPY_ALREADY_LOCKED);
    CHECK_STR(c.output, "x");
    CHECK(c.filter == 0x7f);
    pyspy_capture_config_free(&c);

    c = ok("-c - -o out");
    CHECK_STR(c.core, "-");
    CHECK(c.pid == 0);
    pyspy_capture_config_free(&c);

    c = ok("--core /var/crash/core.1");
    CHECK_STR(c.core, "/var/crash/core.1");
    pyspy_capture_config_free(&c);

    c = ok("-p 9 -r 5 -d 10 -o series");
    CHECK(c.rate == 5 && c.duration_secs == 10);
    CHECK_STR(c.output, "series");
    pyspy_capture_config_free(&c);

    c = ok("-sp9 -r5 -d2");
    CHECK(c.subprocesses && c.pid == 9 && c.rate == 5 && c.duration_secs == 2);
    pyspy_capture_config_free(&c);

    const char *budgets[] = {"512", "2K", "3k", "1G", "2GiB", "1T", "5MB"};
    const uint64_t want[] = {512,        2048,       3072,      1ull << 30,
                             2ull << 30, 1ull << 40, 5ull << 20};
    for (int i = 0; i < 7; i++) {
        char line[64];
        snprintf(line, sizeof line, "-p 1 --memory-budget %s", budgets[i]);
        c = ok(line);
        CHECK(c.memory_budget == want[i]);
        pyspy_capture_config_free(&c);
    }
}

TEST(help_and_version) {
    const char *lines[] = {"--help", "-h", "-p 1 --help", "--help --bogus"};
    for (int i = 0; i < 4; i++) {
        pyspy_capture_config c;
        pyspy_error e = {0};
        char *out = NULL;
        CHECK(run(lines[i], &c, &out, &e) == 0);
        CHECK(c.command == PYSPY_CMD_HELP);
        CHECK(contains(out, "USAGE:"));
        CHECK(contains(out, "--memory-budget <bytes>"));
        char dflt[32];
        snprintf(dflt, sizeof dflt, "[default: %x]", PYSPY_FILTER_DEFAULT);
        CHECK(contains(out, dflt));
        free(out);
        pyspy_capture_config_free(&c);
    }
    const char *vlines[] = {"--version", "-V"};
    for (int i = 0; i < 2; i++) {
        pyspy_capture_config c;
        pyspy_error e = {0};
        char *out = NULL;
        CHECK(run(vlines[i], &c, &out, &e) == 0);
        CHECK(c.command == PYSPY_CMD_VERSION);
        CHECK_STR(out, "pyspy-capture " PYSPY_VERSION "\n");
        free(out);
        pyspy_capture_config_free(&c);
    }
}

TEST(refusals) {
    CHECK(contains(fails(""), "--pid <pid> or --core <core>"));
    CHECK(contains(fails("-o x"), "--pid <pid> or --core <core>"));
    CHECK_STR(fails("-p 1 -c x"),
              "the argument '--pid <pid>' cannot be used with '--core <core>'");
    CHECK(contains(fails("-p 1 --nonblocking --already-locked"),
                   "'--nonblocking' cannot be used with '--already-locked'"));
    CHECK(contains(fails("-c x --nonblocking"), "--nonblocking"));
    CHECK(contains(fails("-c x --already-locked"), "--already-locked"));
    CHECK(contains(fails("-c x -s"), "--subprocesses"));
    CHECK(contains(fails("-p 1 -r 5"), "requires '--duration"));
    CHECK(contains(fails("-p 1 -d 5"), "requires '--rate"));
    CHECK(contains(fails("-c x -r 5 -d 5"), "--rate"));
    CHECK_STR(fails("-p 1 --bogus"), "unexpected argument '--bogus' found");
    CHECK_STR(fails("-p 1 -x"), "unexpected argument '-x' found");
    CHECK_STR(fails("-p 1 extra"), "unexpected argument 'extra' found");
    CHECK(contains(fails("-p 1 --"), "'--'"));
    CHECK(contains(fails("-p 1 --hideprogress=1"), "unexpected value '1'"));
    CHECK(contains(fails("-p 1 -p 2"), "cannot be used multiple times"));
    CHECK_STR(fails("-p abc"), "invalid value 'abc' for '--pid <pid>': "
                               "invalid digit found in string");
    CHECK(contains(fails("-p 0"), "invalid value '0' for '--pid <pid>'"));
    CHECK(contains(fails("-p"), "a value is required for '--pid <pid>'"));
    CHECK(contains(fails("-p 1 -r 0 -d 1"),
                   "invalid value '0' for '--rate <rate>'"));
    CHECK(contains(fails("-p 1 -r x -d 1"), "invalid digit"));
    CHECK(contains(fails("-p 1 -r 1 -d 0"),
                   "invalid value '0' for '--duration <seconds>'"));
    CHECK(contains(fails("-p 1 --filter zz"),
                   "invalid value 'zz' for '--filter <hex>'"));
    CHECK(contains(fails("-p 1 --filter 0x"), "--filter"));
    CHECK(contains(fails("-p 1 --filter 0x200"), "too large"));
    CHECK(contains(fails("-p 1 --memory-budget 0"), "--memory-budget"));
    CHECK(contains(fails("-p 1 --memory-budget 5X"), "--memory-budget"));
    CHECK(contains(fails("-p 1 --memory-budget M"), "--memory-budget"));
    CHECK(contains(fails("-p 1 --memory-budget 1.5G"), "--memory-budget"));
    CHECK(contains(fails("-p 1 --memory-budget 99999999999T"), "too large"));
    CHECK(contains(fails("-p 1 --memory-budget="), "empty string"));
}

TEST_MAIN(T(defaults), T(every_flag), T(help_and_version), T(refusals))
