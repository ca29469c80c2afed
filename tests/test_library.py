"""The public library as a user outside the tree gets it: libpyspy.so
exports exactly the functions include/pyspy.h declares, and a program
built with nothing but `pkg-config --cflags --libs pyspy` (the build
tree's uninstalled pyspy.pc) compiles, starts without LD_LIBRARY_PATH and
reads a snapshot and a live process through the public API: the memory
source itself, and the stacks pyspy_traces_read walks from it."""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import REPO, get_bin_dir

HEADER = REPO / "include" / "pyspy.h"
FIXTURE = REPO / "fixtures" / "3.11.2-static"
PY = "/usr/bin/python3"

PROGRAM = r"""
#include <pyspy.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* prog file PATH | prog pid PID: what the memory source says, one fact a
 * line, for the test to compare with what it knows. */
int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    pyspy_error err = {0};
    pyspy_memsrc *src = NULL;
    int rc = strcmp(argv[1], "pid") == 0
                 ? pyspy_memsrc_open_pid(atoi(argv[2]), PYSPY_NONBLOCKING,
                                         &src, &err)
                 : pyspy_memsrc_open_file(argv[2], &src, &err);
    if (rc != 0) {
        fprintf(stderr, "open: %s\n", err.msg);
        return 1;
    }
    printf("pid %d\n", src->proc.pid);
    for (size_t i = 0; i < src->nthreads; i++)
        printf("thread %d\n", src->threads[i].tid);
    uint64_t size = 0;
    uint64_t rt = pyspy_memsrc_symbol(src, NULL, "_PyRuntime", &size);
    const pyspy_region *r = rt ? pyspy_memsrc_region_at(src, rt) : NULL;
    printf("runtime %s %s\n", r && r->present ? "present" : "absent",
           r && r->path ? r->path : "-");
    uint64_t at = pyspy_memsrc_symbol(src, "python", "Py_Version", NULL);
    uint64_t version = 0;
    if (at && pyspy_memsrc_read(src, at, &version, sizeof version, &err) == 0)
        printf("version %" PRIx64 "\n", version);
    else
        printf("version unreadable: %s\n", err.msg);
    pyspy_error_clear(&err);
    char b[8];
    if (pyspy_memsrc_read(src, 16, b, sizeof b, &err) != 0)
        printf("page zero %d\n", err.code);

    pyspy_trace_opts to = pyspy_trace_opts_default();
    to.locals = 1;
    pyspy_traces ts;
    if (pyspy_traces_read(src, &to, &ts, &err) == 0) {
        printf("python %s\n", ts.python_version);
        for (size_t i = 0; i < ts.ntraces; i++) {
            const pyspy_trace *t = &ts.traces[i];
            printf("trace %" PRIu64 "\t%s\n", t->os_thread_id,
                   t->thread_name ? t->thread_name : "-");
            for (size_t k = 0; k < t->nframes; k++) {
                const pyspy_frame *f = &t->frames[k];
                const char *file =
                    f->short_filename ? f->short_filename : f->filename;
                printf("frame %s\t%s\t%d\n", f->name ? f->name : "-",
                       file ? file : "-", f->line);
                for (size_t j = 0; j < f->nlocals; j++)
                    printf("local %s\t%s\n", f->locals[j].name,
                           f->locals[j].repr ? f->locals[j].repr : "-");
            }
        }
        pyspy_traces_free(&ts);
    } else {
        printf("traces unreadable: %s\n", err.msg);
    }
    pyspy_memsrc_close(src);

    char *args[] = {"pyspy", "dump", "--pid", "42", NULL};
    pyspy_config cfg = pyspy_config_default();
    char *out = NULL;
    if (pyspy_config_from_args(4, args, &cfg, &out, &err) == 0)
        printf("config %d %d\n", cfg.command == PYSPY_CMD_DUMP, cfg.pid);
    free(out);
    pyspy_config_free(&cfg);
    pyspy_format f;
    if (pyspy_file_format_from_str("SpeedScope", &f, &err) == 0)
        printf("format %s\n", pyspy_file_format_name(f));
    return 0;
}
"""


def platform_version():
    return subprocess.run([PY, "-c", "import platform; "
                           "print(platform.python_version())"],
                          capture_output=True, text=True,
                          check=True).stdout.strip()


def lib_dir():
    d = get_bin_dir().parent / "lib"
    if not (d / "libpyspy.so.0").exists():
        pytest.skip(f"libpyspy.so.0 is not built in {d}")
    return d


def declared_functions():
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    return set(re.findall(r"\b(pyspy_\w+)\s*\(", text))


def test_exports_exactly_what_the_header_declares():
    nm = shutil.which("nm")
    if not nm:
        pytest.skip("nm (binutils) is not installed")
    out = subprocess.run([nm, "-D", "--defined-only",
                          str(lib_dir() / "libpyspy.so.0")],
                         capture_output=True, text=True, check=True).stdout
    exported = {line.split()[-1] for line in out.splitlines() if line.strip()}
    declared = declared_functions()
    assert len(declared) > 20, declared
    assert exported == declared, (sorted(exported - declared),
                                  sorted(declared - exported))
    # every declaration carries the export mark
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    marked = set(re.findall(r"PYSPY_API[^;{(]*?\b(pyspy_\w+)\s*\(", text))
    assert marked == declared, sorted(declared - marked)


def test_soname_and_links_in_the_build_tree():
    d = lib_dir()
    dyn = subprocess.run(["readelf", "-d", str(d / "libpyspy.so.0")],
                         capture_output=True, text=True, check=True).stdout
    assert re.search(r"\(SONAME\)\s+Library soname: \[libpyspy\.so\.0\]", dyn)
    assert os.path.realpath(d / "libpyspy.so") == \
        os.path.realpath(d / "libpyspy.so.0")


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    cc = shutil.which("cc")
    pkg = shutil.which("pkg-config")
    if not cc or not pkg:
        pytest.skip("a C compiler and pkg-config are needed")
    d = lib_dir()
    env = dict(os.environ, PKG_CONFIG_PATH=str(d / "pkgconfig"))
    env.pop("PKG_CONFIG_LIBDIR", None)
    env.pop("PKG_CONFIG_DISABLE_UNINSTALLED", None)
    flags = subprocess.run([pkg, "--cflags", "--libs", "pyspy"], env=env,
                           capture_output=True, text=True, check=True
                           ).stdout.split()
    # The flags name this tree, not an installed copy.
    assert f"-I{REPO / 'include'}" in flags, flags
    assert f"-L{d.resolve()}" in flags, flags
    work = tmp_path_factory.mktemp("outoftree")
    src = work / "reader.c"
    src.write_text(PROGRAM)
    exe = work / "reader"
    r = subprocess.run([cc, "-std=c11", "-Wall", "-Werror", str(src), "-o",
                        str(exe)] + flags, cwd=work, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    return exe


def run_program(exe, *args):
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    r = subprocess.run([str(exe)] + [str(a) for a in args], env=env,
                       capture_output=True, text=True, timeout=120,
                       cwd="/")
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout


def stacks(lines):
    """[(os_thread_id, name, [frame lines and local lines])] in order."""
    out = []
    for x in lines:
        kind, _, rest = x.partition(" ")
        if kind == "trace":
            tid, name = rest.split("\t")
            out.append((int(tid), name, []))
        elif kind in ("frame", "local"):
            out[-1][2].append(x)
    return out


def expected_stacks(want):
    out = []
    for t in want:
        body = []
        for f in t["frames"]:
            file = f.get("short_filename") or f["filename"]
            body.append(f"frame {f['name']}\t{file}\t{f['line']}")
            for loc in f.get("locals") or []:
                body.append(f"local {loc['name']}\t{loc['repr'] if loc['repr'] not in (None, '?') else '-'}")
        out.append((t["os_thread_id"], t["thread_name"] or "-", body))
    return out


def facts(out):
    lines = out.splitlines()
    return {
        "stacks": stacks(lines),
        "python": [x for x in lines if x.startswith(("python ", "traces "))],
        "pid": [int(x.split()[1]) for x in lines if x.startswith("pid ")],
        "threads": {int(x.split()[1]) for x in lines
                    if x.startswith("thread ")},
        "runtime": [x for x in lines if x.startswith("runtime ")],
        "version": [x for x in lines if x.startswith("version ")],
        "rest": [x for x in lines if x.split()[0] in
                 ("page", "config", "format")],
    }


COMMON = ["page zero 7", "config 1 42", "format speedscope"]


def test_out_of_tree_program_reads_a_snapshot(program):
    snap = FIXTURE / "scenarios.core.zst"
    if not snap.exists():
        pytest.skip(f"{snap} is not in the tree")
    want = json.loads((FIXTURE / "scenarios.expected.json").read_text())
    f = facts(run_program(program, "file", snap))
    assert f["pid"] == [want[0]["pid"]], f
    # every thread the expected dump shows, by its kernel id
    assert {t["os_thread_id"] for t in want} <= f["threads"], f
    assert f["runtime"] and f["runtime"][0].startswith("runtime present "), f
    assert f["version"] == ["version 30b02f0"], f  # 3.11.2 final
    assert f["rest"] == COMMON, f
    # the walk through the public API is the committed dump, thread by
    # thread, frame by frame, local by local
    assert f["python"] == ["python 3.11.2"], f
    assert f["stacks"] == expected_stacks(want)


def test_out_of_tree_program_reads_a_live_process(program):
    if not os.access(PY, os.X_OK):
        pytest.skip(f"{PY} is not installed")
    p = subprocess.Popen([PY, "-c", "import sys, threading, time\n"
                          "def park(seconds):\n"
                          "    time.sleep(seconds)\n"
                          "print('%x' % sys.hexversion, flush=True)\n"
                          "park(600)\n"],
                         stdout=subprocess.PIPE, text=True)
    try:
        hexversion = p.stdout.readline().strip()
        assert hexversion, "the child printed nothing"
        want = [(p.pid, "MainThread",
                 ["frame park\t<string>\t3", "local seconds\t600",
                  "frame <module>\t<string>\t5"])]
        # after printing it may not have reached park yet
        deadline = time.monotonic() + 60
        while True:
            f = facts(run_program(program, "pid", p.pid))
            if f["stacks"] == want or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert f["stacks"] == want, f
        assert f["python"] == [f"python {platform_version()}"], f
        assert f["pid"] == [p.pid], f
        assert p.pid in f["threads"], f
        assert f["runtime"] and f["runtime"][0].startswith("runtime present "), f
        assert f["version"] == [f"version {hexversion}"], f
        assert f["rest"] == COMMON, f
    finally:
        p.kill()
        p.wait()
