/* pyspy-analyze's command line: defaults, every flag, every refusal. */
#include "testlib.h"
#include <pyspy.h>

#include "analyze/cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Splits line on spaces into argv (argv[0] = "pyspy") and parses it. */
static int run(const char *line, pyspy_config *c, char **out, pyspy_error *e) {
    static char buf[4096];
    static char *argv[128];
    int argc = 0;
    argv[argc++] = "pyspy";
    snprintf(buf, sizeof buf, "%s", line);
    for (char *t = strtok(buf, " "); t && argc < 127; t = strtok(NULL, " "))
        argv[argc++] = t;
    argv[argc] = NULL;
    pyspy_error_clear(e);
    return pyspy_config_from_args(argc, argv, c, out, e);
}

/* Parses a line that must succeed; returns the config (out freed). */
static pyspy_config ok(const char *line) {
    pyspy_config c;
    pyspy_error e = {0};
    char *out = NULL;
    if (run(line, &c, &out, &e) != 0)
        fprintf(stderr, "  '%s' failed: %s\n", line, e.msg);
    CHECK(e.code == 0);
    free(out);
    return c;
}

/* Parses a line that must fail with PYSPY_E_USAGE; returns the message. */
static const char *fails(const char *line) {
    static pyspy_error e;
    pyspy_config c;
    char *out = (char *)1;
    int rc = run(line, &c, &out, &e);
    if (rc == 0)
        fprintf(stderr, "  '%s' unexpectedly parsed\n", line);
    CHECK(rc == -1);
    CHECK(e.code == PYSPY_E_USAGE);
    CHECK(out == NULL);
    /* Nothing half-built is handed back on error. */
    CHECK(c.python_program == NULL && c.inputs == NULL && c.filename == NULL &&
          c.core_filename == NULL && c.command == PYSPY_CMD_NONE);
    CHECK(strchr(e.msg, '\n') == NULL);
    return e.msg;
}

/* A command line the parser accepts and py-spy then refuses (exit 1). */
static const char *refused(const char *line) {
    static pyspy_error e;
    pyspy_config c;
    char *out = NULL;
    CHECK(run(line, &c, &out, &e) == -1);
    CHECK(e.code == PYSPY_E_GENERIC);
    CHECK(out == NULL && c.command == PYSPY_CMD_NONE);
    return e.msg;
}

static bool contains(const char *hay, const char *needle) {
    bool r = hay && strstr(hay, needle) != NULL;
    if (!r)
        fprintf(stderr, "  '%s' does not contain '%s'\n", hay ? hay : "(null)",
                needle);
    return r;
}

TEST(defaults_are_py_spys) {
    pyspy_config c = pyspy_config_default();
    CHECK(c.blocking == PYSPY_LOCK);
    CHECK(!c.native);
    CHECK(c.sampling_rate == 100);
    CHECK(c.format == PYSPY_FORMAT_NONE);
    CHECK(!c.show_line_numbers);
    CHECK(c.duration_unlimited);
    CHECK(!c.include_idle);
    CHECK(!c.include_thread_ids);
    CHECK(!c.subprocesses);
    CHECK(!c.gil_only);
    CHECK(!c.hide_progress);
    CHECK(c.capture_output);
    CHECK(!c.dump_json);
    CHECK(c.dump_locals == 0);
    CHECK(!c.full_filenames);
    CHECK(c.lineno == PYSPY_LINENO_LAST_INSTRUCTION);
    CHECK(c.refresh_seconds == 1.0);
    CHECK(c.core_filename == NULL);
    CHECK(c.command == PYSPY_CMD_NONE);
    CHECK(c.pid == 0);
    CHECK(c.python_program == NULL && c.python_program_count == 0);
    CHECK(c.filename == NULL && c.inputs == NULL && c.ninputs == 0);
    CHECK(c.jobs == 0);
    pyspy_config_free(&c);
}

TEST(file_formats) {
    pyspy_format f = PYSPY_FORMAT_NONE;
    pyspy_error e = {0};
    CHECK(pyspy_file_format_from_str("flamegraph", &f, &e) == 0 &&
          f == PYSPY_FORMAT_FLAMEGRAPH);
    CHECK(pyspy_file_format_from_str("RAW", &f, &e) == 0 &&
          f == PYSPY_FORMAT_RAW);
    CHECK(pyspy_file_format_from_str("SpeedScope", &f, &e) == 0 &&
          f == PYSPY_FORMAT_SPEEDSCOPE);
    CHECK(pyspy_file_format_from_str("chrometrace", &f, &e) == 0 &&
          f == PYSPY_FORMAT_CHROMETRACE);
    CHECK(pyspy_file_format_from_str("PProf", &f, &e) == 0 &&
          f == PYSPY_FORMAT_PPROF);
    CHECK(pyspy_file_format_from_str("Aggregate", &f, &e) == 0 &&
          f == PYSPY_FORMAT_AGGREGATE);
    CHECK(pyspy_file_format_from_str("svg", &f, &e) == -1);
    CHECK_STR(e.msg, "Invalid fileformat: svg");
    CHECK(pyspy_file_format_from_str("", &f, &e) == -1);
    CHECK_STR(e.msg, "Invalid fileformat: ");
    CHECK_STR(pyspy_file_format_name(PYSPY_FORMAT_FLAMEGRAPH), "flamegraph");
    CHECK_STR(pyspy_file_format_name(PYSPY_FORMAT_RAW), "raw");
    CHECK_STR(pyspy_file_format_name(PYSPY_FORMAT_SPEEDSCOPE), "speedscope");
    CHECK_STR(pyspy_file_format_name(PYSPY_FORMAT_CHROMETRACE), "chrometrace");
    CHECK_STR(pyspy_file_format_name(PYSPY_FORMAT_PPROF), "pprof");
    CHECK_STR(pyspy_file_format_name(PYSPY_FORMAT_AGGREGATE), "aggregate");
}

TEST(record_basic_long_and_short) {
    pyspy_config c = ok("record --pid 1234 --output foo");
    CHECK(c.command == PYSPY_CMD_RECORD);
    CHECK(c.pid == 1234);
    CHECK_STR(c.filename, "foo");
    CHECK(c.format == PYSPY_FORMAT_FLAMEGRAPH);
    CHECK(c.sampling_rate == 100);
    CHECK(c.duration_unlimited);
    CHECK(c.show_line_numbers);
    CHECK(c.lineno == PYSPY_LINENO_LAST_INSTRUCTION);
    CHECK(!c.include_idle && !c.gil_only && !c.include_thread_ids);
    /* py-spy: record leaves the program's output alone unless --capture,
     * and then hides its progress bar. */
    CHECK(!c.capture_output);
    CHECK(c.hide_progress);
    CHECK(c.blocking == PYSPY_LOCK && !c.native);
    CHECK(c.python_program == NULL && c.inputs == NULL);
    pyspy_config_free(&c);

    c = ok("r -p 1234 -o foo");
    CHECK(c.command == PYSPY_CMD_RECORD && c.pid == 1234);
    CHECK_STR(c.filename, "foo");
    pyspy_config_free(&c);
}

TEST(record_every_flag) {
    pyspy_config c = ok("record -p 7 -f raw -d 10 -r 250 -s -t -g -i -n "
                        "--full-filenames --hideprogress --capture");
    CHECK(c.format == PYSPY_FORMAT_RAW);
    CHECK(!c.duration_unlimited && c.duration_secs == 10);
    CHECK(c.sampling_rate == 250);
    CHECK(c.subprocesses && c.include_thread_ids && c.gil_only &&
          c.include_idle && c.native && c.full_filenames);
    CHECK(c.capture_output && c.hide_progress);
    pyspy_config_free(&c);

    c = ok("record -p 7 --capture");
    CHECK(c.capture_output && !c.hide_progress);
    pyspy_config_free(&c);

    c = ok("record --pid=0x4d2 --rate=50 --format=SpeedScope --duration=3 "
           "--output=out.json --nonblocking --subprocesses --threads --gil "
           "--idle");
    CHECK(c.pid == 1234 && c.sampling_rate == 50);
    CHECK(c.format == PYSPY_FORMAT_SPEEDSCOPE);
    CHECK(!c.duration_unlimited && c.duration_secs == 3);
    CHECK_STR(c.filename, "out.json");
    CHECK(c.blocking == PYSPY_NONBLOCKING);
    CHECK(c.subprocesses && c.include_thread_ids && c.gil_only &&
          c.include_idle);
    pyspy_config_free(&c);

    c = ok("record -p 0X1F -f CHROMETRACE -d UNLIMITED");
    CHECK(c.pid == 31 && c.format == PYSPY_FORMAT_CHROMETRACE);
    CHECK(c.duration_unlimited);
    pyspy_config_free(&c);

    c = ok("record -r50 -gi -tsn -p7");
    CHECK(c.sampling_rate == 50 && c.gil_only && c.include_idle &&
          c.include_thread_ids && c.subprocesses && c.native && c.pid == 7);
    pyspy_config_free(&c);

    c = ok("record -gip 99");
    CHECK(c.gil_only && c.include_idle && c.pid == 99);
    pyspy_config_free(&c);
}

/* --mode is py-spy's flags by another name (wall = --idle, gil = --gil,
 * cpu = neither); exception keeps idle threads too. */
TEST(record_modes_and_gc) {
    pyspy_config c = ok("record -p 7");
    CHECK(!c.include_idle && !c.gil_only && !c.exception_only && !c.gc_frames);
    pyspy_config_free(&c);
    c = ok("record -p 7 --mode cpu");
    CHECK(!c.include_idle && !c.gil_only && !c.exception_only);
    pyspy_config_free(&c);
    c = ok("record -p 7 --mode wall");
    CHECK(c.include_idle && !c.gil_only && !c.exception_only);
    pyspy_config_free(&c);
    c = ok("record -p 7 --mode=GIL");
    CHECK(!c.include_idle && c.gil_only && !c.exception_only);
    pyspy_config_free(&c);
    c = ok("record -p 7 --mode exception --gc");
    CHECK(c.include_idle && !c.gil_only && c.exception_only && c.gc_frames);
    pyspy_config_free(&c);
    c = ok("record -p 7 --mode gil --idle");
    CHECK(c.include_idle && c.gil_only);
    pyspy_config_free(&c);
    CHECK(contains(fails("record -p 7 --mode idle"),
                   "[possible values: wall, cpu, gil, exception]"));
    CHECK(contains(fails("record -p 7 --mode"), "'--mode <mode>'"));
    CHECK(contains(fails("dump -p 7 --gc"), "'--gc'"));
    CHECK(contains(fails("top -p 7 --mode wall"), "'--mode'"));
    /* The shells that complete values offer the modes after --mode. */
    const char *shells[] = {"bash", "zsh", "fish"};
    const char *want[] = {"compgen -W \"wall cpu gil exception\"",
                          ":mode:(wall cpu gil exception)",
                          "-l mode -x -a 'wall cpu gil exception'"};
    for (int i = 0; i < 3; i++) {
        char *out = NULL;
        pyspy_error e = {0};
        CHECK(pyspy_cli_completions(shells[i], &out, &e) == 0);
        CHECK(out && contains(out, want[i]));
        free(out);
    }
}

TEST(record_line_numbers) {
    pyspy_config c = ok("record -p 1 -F");
    CHECK(c.lineno == PYSPY_LINENO_FIRST && c.show_line_numbers);
    pyspy_config_free(&c);
    c = ok("record -p 1 --function");
    CHECK(c.lineno == PYSPY_LINENO_FIRST);
    pyspy_config_free(&c);
    c = ok("record -p 1 --nolineno");
    CHECK(c.lineno == PYSPY_LINENO_NONE && !c.show_line_numbers);
    pyspy_config_free(&c);
    CHECK_STR(refused("record -p 1 -F --nolineno"),
              "--function & --nolinenos can't be used together");
    /* The parser's own errors come first, as in py-spy. */
    CHECK(contains(fails("record -F --nolineno"), "--pid"));
}

TEST(record_program) {
    pyspy_config c = ok("record -o foo -- python test.py --flag -p 3");
    CHECK(c.pid == 0 && c.inputs == NULL);
    CHECK(c.python_program_count == 5);
    CHECK_STR(c.python_program[0], "python");
    CHECK_STR(c.python_program[2], "--flag");
    CHECK_STR(c.python_program[4], "3");
    CHECK(c.python_program[5] == NULL);
    pyspy_config_free(&c);

    /* Without "--", the program's own flags stay the program's. */
    c = ok("record -r 10 python test.py -o x");
    CHECK(c.sampling_rate == 10 && c.filename == NULL);
    CHECK(c.python_program_count == 4);
    CHECK_STR(c.python_program[2], "-o");
    pyspy_config_free(&c);

    c = ok("top -- python -c pass");
    CHECK(c.command == PYSPY_CMD_TOP && c.python_program_count == 3);
    pyspy_config_free(&c);

    CHECK(contains(fails("record -p 1 -- python x.py"), "--pid"));
    CHECK(contains(fails("record -p 1 python x.py"), "--pid"));
    CHECK(contains(fails("top -p 1 -- python x.py"), "--pid"));
    CHECK(contains(fails("record -o foo"), "--pid <pid>"));
    CHECK(contains(fails("top"), "--pid <pid>"));
}

TEST(record_snapshot_inputs) {
    char dir[] = "/tmp/pyspy-cfg-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char a[128], b[128], plain[128], line[512];
    snprintf(a, sizeof a, "%s/a.core", dir);
    snprintf(b, sizeof b, "%s/pyspy-1-x.core.zst", dir);
    snprintf(plain, sizeof plain, "%s/snap.bin", dir);
    const char *files[] = {a, b, plain};
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(files[i], "w");
        CHECK(f != NULL);
        if (f)
            fclose(f);
    }

    snprintf(line, sizeof line, "record -o out.svg %s %s", a, b);
    pyspy_config c = ok(line);
    CHECK(c.ninputs == 2 && c.python_program == NULL);
    CHECK_STR(c.inputs[0], a);
    CHECK_STR(c.inputs[1], b);
    CHECK(c.inputs[2] == NULL);
    CHECK(c.jobs == 0);
    pyspy_config_free(&c);

    /* -j makes inputs of any name. */
    snprintf(line, sizeof line, "record -j 3 %s %s", plain, a);
    c = ok(line);
    CHECK(c.ninputs == 2 && c.jobs == 3 && c.python_program == NULL);
    pyspy_config_free(&c);

    /* Not a snapshot name: a program. */
    snprintf(line, sizeof line, "record %s", plain);
    c = ok(line);
    CHECK(c.python_program_count == 1 && c.inputs == NULL);
    pyspy_config_free(&c);

    /* "--" forces a program. */
    snprintf(line, sizeof line, "record -- %s", a);
    c = ok(line);
    CHECK(c.python_program_count == 1 && c.inputs == NULL);
    pyspy_config_free(&c);

    /* A missing snapshot after a real one is named. */
    snprintf(line, sizeof line, "record %s %s/missing.core", a, dir);
    CHECK(contains(fails(line), "missing.core"));
    snprintf(line, sizeof line, "record -j 2 %s/nope", dir);
    CHECK(contains(fails(line), "nope"));

    CHECK(contains(fails("record -j 0 x.core"), "--jobs <jobs>"));
    CHECK(contains(fails("record -j many x.core"),
                   "invalid value 'many' for '--jobs <jobs>'"));
    CHECK(contains(fails("record -j 2 -- python x.py"), "--jobs"));
    CHECK(contains(fails("record -j 2 -p 5"), "--jobs"));
    CHECK(contains(fails("top -j 2 -p 5"), "'-j'"));

    CHECK(pyspy_cli_snapshot_name("x/core"));
    CHECK(pyspy_cli_snapshot_name("core.1234"));
    CHECK(pyspy_cli_snapshot_name("a.core"));
    CHECK(pyspy_cli_snapshot_name("a.core.zst"));
    CHECK(!pyspy_cli_snapshot_name("core.py"));
    CHECK(!pyspy_cli_snapshot_name("python3"));
    CHECK(!pyspy_cli_snapshot_name(".core"));

    for (int i = 0; i < 3; i++)
        unlink(files[i]);
    rmdir(dir);
}

TEST(record_value_errors) {
    CHECK_STR(fails("record -p 1 --rate abc"),
              "invalid value 'abc' for '--rate <rate>': invalid digit found "
              "in string");
    CHECK_STR(fails("record -p 1 -r abc"),
              "invalid value 'abc' for '--rate <rate>': invalid digit found "
              "in string");
    CHECK(contains(fails("record -p 1 -r 0"),
                   "invalid value '0' for '--rate <rate>'"));
    CHECK(
        contains(fails("record -p 1 -r 99999999999999999999999"), "too large"));
    CHECK_STR(fails("record -p 1 --rate"),
              "a value is required for '--rate <rate>' but none was supplied");
    CHECK_STR(fails("record -p 1 --rate -5"),
              "a value is required for '--rate <rate>' but none was supplied");
    CHECK(contains(fails("record -p 1 -d abc"),
                   "invalid value 'abc' for '--duration <duration>'"));
    CHECK(contains(fails("record -p 1 -d 1.5"), "--duration"));
    CHECK(contains(fails("record -p 1 -f svg"),
                   "invalid value 'svg' for '--format <format>': Invalid "
                   "fileformat: svg"));
    CHECK(contains(fails("record -p abc"),
                   "invalid value 'abc' for '--pid <pid>'"));
    CHECK(contains(fails("record -p 0"), "invalid value '0' for '--pid"));
    CHECK(contains(fails("record -p 0x"), "'--pid <pid>'"));
    CHECK(contains(fails("record -p 0xzz"), "invalid digit"));
    CHECK(contains(fails("record -p 99999999999"), "too large"));
    CHECK(contains(fails("record -p -5"), "a value is required for '--pid"));
}

TEST(unknown_and_repeated_arguments) {
    CHECK_STR(fails("record --foo"), "unexpected argument '--foo' found");
    CHECK_STR(fails("record -p 1 -x"), "unexpected argument '-x' found");
    CHECK_STR(fails("record -p 1 -gx"), "unexpected argument '-x' found");
    CHECK_STR(fails("record --foo=bar"), "unexpected argument '--foo' found");
    CHECK(contains(fails("record -p 1 --idle=yes"),
                   "unexpected value 'yes' for '--idle'"));
    CHECK(contains(fails("record -p 1 -p 2"), "cannot be used multiple"));
    CHECK(contains(fails("record -p 1 -g --gil"), "'--gil'"));
    CHECK_STR(fails("--foo"), "unexpected argument '--foo' found");
    CHECK(contains(fails("--"), "'--'"));
    CHECK(contains(fails(""), "requires a subcommand"));
    CHECK(contains(fails("dude"), "unrecognized subcommand 'dude'"));
    /* Per-subcommand flag sets. */
    CHECK(contains(fails("top -p 1 -F"), "'-F'"));
    CHECK(contains(fails("top -p 1 --nolineno"), "'--nolineno'"));
    CHECK(contains(fails("top -p 1 -o x"), "'-o'"));
    CHECK(contains(fails("dump -p 1 --rate 5"), "'--rate'"));
    CHECK(contains(fails("dump -p 1 --gil"), "'--gil'"));
    CHECK(contains(fails("dump -p 1 -i"), "'-i'"));
    CHECK(contains(fails("record -p 1 --delay 2"), "'--delay'"));
    CHECK(contains(fails("record -p 1 -c x"), "'-c'"));
    CHECK(contains(fails("record -p 1 --json"), "'--json'"));
}

TEST(native_nonblocking_conflict) {
    const char *m = "Can't get native stack traces with the --nonblocking "
                    "option.";
    CHECK_STR(refused("record -p 1 --native --nonblocking"), m);
    CHECK_STR(refused("top -p 1 -n --nonblocking"), m);
    CHECK_STR(refused("dump -p 1 --nonblocking -n"), m);
    CHECK(contains(fails("record --native --nonblocking"), "--pid"));
}

TEST(dump_takes_no_program) {
    CHECK_STR(fails("dump -- python3 x.py"),
              "unexpected argument 'python3' found");
    CHECK_STR(fails("dump -p 1 -- python3"),
              "unexpected argument 'python3' found");
}

TEST(completions_shells) {
    const char *shells[] = {"bash", "elvish", "fish", "powershell", "zsh"};
    for (size_t i = 0; i < 5; i++) {
        char line[64];
        snprintf(line, sizeof line, "completions %s", shells[i]);
        pyspy_config c;
        pyspy_error e = {0};
        char *out = NULL;
        CHECK(run(line, &c, &out, &e) == 0);
        CHECK(out && strstr(out, "pyspy-analyze"));
        free(out);
        pyspy_config_free(&c);
    }
    CHECK(contains(fails("completions tcsh"),
                   "[possible values: bash, elvish, fish, powershell, zsh]"));
}

TEST(top_flags) {
    pyspy_config c = ok("top --pid 1234");
    CHECK(c.command == PYSPY_CMD_TOP && c.pid == 1234);
    CHECK(c.sampling_rate == 100 && c.refresh_seconds == 1.0);
    CHECK(c.capture_output && !c.hide_progress);
    CHECK(c.format == PYSPY_FORMAT_NONE);
    CHECK(c.lineno == PYSPY_LINENO_LAST_INSTRUCTION);
    pyspy_config_free(&c);

    c = ok("t -p 1 -r 10 --delay 0.5 -s -g -i -n --full-filenames");
    CHECK(c.sampling_rate == 10 && c.refresh_seconds == 0.5);
    CHECK(c.subprocesses && c.gil_only && c.include_idle && c.native &&
          c.full_filenames);
    pyspy_config_free(&c);

    c = ok("top -p 1 --delay=2 --nonblocking");
    CHECK(c.refresh_seconds == 2.0 && c.blocking == PYSPY_NONBLOCKING);
    pyspy_config_free(&c);

    CHECK(contains(fails("top -p 1 --delay 0"),
                   "invalid value '0' for '--delay <seconds>'"));
    CHECK(contains(fails("top -p 1 --delay abc"),
                   "invalid value 'abc' for '--delay <seconds>'"));
    CHECK(contains(fails("top -p 1 --delay inf"), "--delay"));
    CHECK(contains(fails("top -p 1 --delay nan"), "--delay"));
    CHECK(contains(fails("top -p 1 --delay -1"), "--delay"));
    CHECK(contains(fails("top -p 1 -r 0"), "--rate"));
}

TEST(dump_flags) {
    pyspy_config c = ok("dump --pid 1234");
    CHECK(c.command == PYSPY_CMD_DUMP && c.pid == 1234);
    CHECK(!c.dump_json && c.dump_locals == 0 && c.core_filename == NULL);
    CHECK(c.capture_output);
    pyspy_config_free(&c);

    c = ok("du -p 1234");
    CHECK(c.command == PYSPY_CMD_DUMP && c.pid == 1234);
    pyspy_config_free(&c);
    /* dump and diff share their first letter. */
    CHECK(contains(fails("d -p 1234"), "more than one subcommand"));

    c = ok("dump -c core.99 --full-filenames -s -n --json");
    CHECK_STR(c.core_filename, "core.99");
    CHECK(c.pid == 0 && c.full_filenames && c.subprocesses && c.native &&
          c.dump_json);
    pyspy_config_free(&c);

    c = ok("dump --core=x.core.zst");
    CHECK_STR(c.core_filename, "x.core.zst");
    pyspy_config_free(&c);

    c = ok("dump -ll -p 5");
    CHECK(c.dump_locals == 2);
    pyspy_config_free(&c);
    c = ok("dump --locals --locals -l -p 5");
    CHECK(c.dump_locals == 3);
    pyspy_config_free(&c);
    c = ok("dump -lljp 5");
    CHECK(c.dump_locals == 2 && c.dump_json && c.pid == 5);
    pyspy_config_free(&c);

    /* Positional snapshots, options before or after them; after "--" a
     * file whose name starts with '-' (only files: py-spy's dump takes
     * no program there). */
    char dir[] = "/tmp/test_config.XXXXXX", cwd[4096];
    CHECK(mkdtemp(dir) != NULL && getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(dir) == 0);
    FILE *odd = fopen("-odd-name", "w");
    CHECK(odd != NULL);
    if (odd)
        fclose(odd);
    c = ok("dump a.core --json b.core.zst -- -odd-name");
    CHECK(c.ninputs == 3 && c.dump_json && c.pid == 0);
    CHECK_STR(c.inputs[0], "a.core");
    CHECK_STR(c.inputs[1], "b.core.zst");
    CHECK_STR(c.inputs[2], "-odd-name");
    pyspy_config_free(&c);
    CHECK(unlink("-odd-name") == 0 && chdir(cwd) == 0 && rmdir(dir) == 0);

    CHECK(contains(fails("dump"), "--pid <pid>"));
    CHECK(contains(fails("dump -p 1 -c x"), "--core"));
    CHECK(contains(fails("dump -p 1 a.core"), "--pid"));
    CHECK(contains(fails("dump -c x a.core"), "--core"));
    CHECK(contains(fails("dump -c"), "a value is required for '--core"));
}

TEST(help_and_version_everywhere) {
    const char *lines[] = {"--help",
                           "-h",
                           "record --help",
                           "rec -h",
                           "top --help",
                           "dump -h",
                           "completions --help",
                           "help",
                           "help record",
                           "help du",
                           "h top",
                           "record -p 1 --help --foo"};
    const char *expect[] = {"SUBCOMMANDS:", "SUBCOMMANDS:", "--nolineno",
                            "--nolineno",   "--delay",      "--locals",
                            "<shell>",      "SUBCOMMANDS:", "--nolineno",
                            "--locals",     "--delay",      "--function"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        pyspy_config c;
        pyspy_error e = {0};
        char *out = NULL;
        CHECK(run(lines[i], &c, &out, &e) == 0);
        CHECK(c.command == PYSPY_CMD_HELP);
        CHECK(contains(out, "USAGE:"));
        CHECK(contains(out, expect[i]));
        free(out);
        pyspy_config_free(&c);
    }
    const char *vlines[] = {"--version",     "-V",      "record -V",
                            "top --version", "dump -V", "completions -V"};
    for (size_t i = 0; i < sizeof vlines / sizeof vlines[0]; i++) {
        pyspy_config c;
        pyspy_error e = {0};
        char *out = NULL;
        CHECK(run(vlines[i], &c, &out, &e) == 0);
        CHECK(c.command == PYSPY_CMD_VERSION);
        CHECK_STR(out, "pyspy " PYSPY_VERSION "\n");
        free(out);
        pyspy_config_free(&c);
    }
    /* An error before --help wins, as in clap. */
    CHECK(contains(fails("record --foo --help"), "--foo"));
    CHECK(contains(fails("help nothing"), "nothing"));
    CHECK(contains(fails("help record top"), "top"));

    /* The defaults shown in help are the real ones. */
    char *h = pyspy_cli_help(&pyspy_cli_commands[0]);
    CHECK(contains(h, "[default: flamegraph]"));
    CHECK(contains(h, "[default: unlimited]"));
    CHECK(contains(h, "[default: 100]"));
    CHECK(contains(h, "pyspy-record " PYSPY_VERSION));
    free(h);
    h = pyspy_cli_help(&pyspy_cli_commands[1]);
    CHECK(contains(h, "[default: 1.0]"));
    free(h);
}

TEST(subcommand_prefixes) {
    pyspy_config c = ok("rec -p 1");
    CHECK(c.command == PYSPY_CMD_RECORD);
    pyspy_config_free(&c);
    c = ok("du -p 1");
    CHECK(c.command == PYSPY_CMD_DUMP);
    pyspy_config_free(&c);
    c = ok("to -p 1");
    CHECK(c.command == PYSPY_CMD_TOP);
    pyspy_config_free(&c);
    c = ok("comp bash");
    CHECK(c.command == PYSPY_CMD_COMPLETIONS);
    pyspy_config_free(&c);
    /* merge: its inputs, -o and -f; 'm' names it alone. */
    c = ok("m a.pyagg b.txt -o out.txt -f raw --hideprogress");
    CHECK(c.command == PYSPY_CMD_MERGE && c.ninputs == 2 &&
          c.format == PYSPY_FORMAT_RAW && c.hide_progress);
    CHECK_STR(c.inputs[1], "b.txt");
    CHECK_STR(c.filename, "out.txt");
    pyspy_config_free(&c);
    c = ok("merge a.pyagg");
    CHECK(c.format == PYSPY_FORMAT_FLAMEGRAPH && !c.hide_progress);
    pyspy_config_free(&c);
    CHECK(contains(fails("merge"), "<input>"));
    CHECK(contains(fails("merge -p 1 a"), "unexpected argument"));
    CHECK(contains(fails("recordx -p 1"), "recordx"));
    CHECK(contains(fails("x"), "unrecognized subcommand"));
    /* The empty prefix names every command; the first two letters name
     * each current one alone (dump and diff share the first). */
    pyspy_error e = {0};
    CHECK(pyspy_cli_find("", &e) == NULL && e.code == PYSPY_E_USAGE);
    for (size_t i = 0; i < pyspy_cli_ncommands; i++) {
        char two[3] = {pyspy_cli_commands[i].name[0],
                       pyspy_cli_commands[i].name[1], 0};
        CHECK(pyspy_cli_find(two, &e) == &pyspy_cli_commands[i]);
    }
}

TEST(completions) {
    const char *shells[] = {"bash", "zsh", "fish", "BASH"};
    const char *marks[] = {"complete -F _pyspy", "#compdef pyspy",
                           "complete -c $__pyspy_cmd", "complete -F _pyspy"};
    for (int i = 0; i < 4; i++) {
        char line[64];
        snprintf(line, sizeof line, "completions %s", shells[i]);
        pyspy_config c;
        pyspy_error e = {0};
        char *out = NULL;
        CHECK(run(line, &c, &out, &e) == 0);
        CHECK(c.command == PYSPY_CMD_COMPLETIONS);
        CHECK(contains(out, marks[i]));
        CHECK(contains(out, "nolineno"));
        CHECK(contains(out, "chrometrace"));
        free(out);
        pyspy_config_free(&c);
    }
    CHECK(contains(fails("completions"), "<shell>"));
    CHECK(contains(fails("completions tcsh"),
                   "invalid value 'tcsh' for '<shell>'"));
    CHECK(contains(fails("completions bash zsh"),
                   "unexpected argument 'zsh' found"));
}

TEST(validate_hand_built_configs) {
    pyspy_error e = {0};
    pyspy_config c = pyspy_config_default();
    c.command = PYSPY_CMD_RECORD;
    CHECK(pyspy_config_validate(&c, &e) == -1 && e.code == PYSPY_E_USAGE);
    c.pid = 10;
    CHECK(pyspy_config_validate(&c, &e) == 0);
    c.sampling_rate = 0;
    CHECK(pyspy_config_validate(&c, &e) == -1 && contains(e.msg, "--rate"));
    c.sampling_rate = 100;
    c.pid = -4;
    CHECK(pyspy_config_validate(&c, &e) == -1 && contains(e.msg, "--pid"));
    c.pid = 10;
    c.native = true;
    c.blocking = PYSPY_NONBLOCKING;
    CHECK(pyspy_config_validate(&c, &e) == -1 &&
          contains(e.msg, "--nonblocking"));
    c.native = false;
    c.jobs = 4;
    CHECK(pyspy_config_validate(&c, &e) == -1 && contains(e.msg, "--jobs"));
    c.jobs = 0;
    c.command = PYSPY_CMD_TOP;
    c.refresh_seconds = 0;
    CHECK(pyspy_config_validate(&c, &e) == -1 && contains(e.msg, "--delay"));
    c.refresh_seconds = 1.0;
    CHECK(pyspy_config_validate(&c, &e) == 0);
    c.command = PYSPY_CMD_DUMP;
    c.pid = 0;
    CHECK(pyspy_config_validate(&c, &e) == -1 && contains(e.msg, "--core"));
    CHECK(pyspy_config_validate(NULL, &e) == -1);
    pyspy_config_free(&c);
    pyspy_config_free(NULL);
}

TEST_MAIN(T(defaults_are_py_spys), T(file_formats),
          T(record_basic_long_and_short), T(record_every_flag),
          T(record_modes_and_gc), T(record_line_numbers), T(record_program),
          T(record_snapshot_inputs), T(record_value_errors),
          T(unknown_and_repeated_arguments), T(native_nonblocking_conflict),
          T(dump_takes_no_program), T(completions_shells), T(top_flags),
          T(dump_flags), T(help_and_version_everywhere), T(subcommand_prefixes),
          T(completions), T(validate_hand_built_configs))
