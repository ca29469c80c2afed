"""py-spy 0.4.2's tests/integration_test.rs makes its assertions on
PythonSpy::get_stack_traces, which is what `py-spy dump --json` prints;
here they are made on `pyspy dump --json` (and the text dump) with our own
programs: a sleeper's frames and flags, a busy loop active with the GIL,
eleven named threads, the samples of a recursion, local variables (names
in order, arguments, reprs), a comprehension whose line table steps
backwards, a parent with threads and a child (each process shown once),
a zombie child, and the JSON's fields and types as py-spy's serde derive
writes them."""
import json
import os
import re
import subprocess
import time

import pytest

from conftest import find_tool

PYTHON = os.environ.get("PYSPY_TEST_PYTHON", "/usr/bin/python3")

# Every program calls ready() once its frames are in place: the file
# appears whole (rename), so the test never reads half of it.
READY = """\
import os, sys
def ready(extra=""):
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(extra)
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
"""

SLEEPER = READY + """\
import time
def dozing():
    ready()
    time.sleep(100000)  # NAP
dozing()  # CALL
"""

SPINNER = READY + """\
def spinning():
    ready()
    while True:
        pass
spinning()
"""

NAMED = READY + """\
import threading, time
def main():
    for i in range(10):
        t = threading.Thread(target=lambda: time.sleep(100000))
        t.name = "Worker-%d" % i  # renamed after construction
        t.start()
    ready()
    time.sleep(100000)
main()
"""

RECURSIVE = READY + """\
def descend(n):
    if n == 0:
        return
    descend(n - 1)
ready()
while True:  # LOOP
    descend(15)  # DESCEND
"""

# Argument defaults and locals of every kind the repr writer decodes.
LOCALS = READY + """\
import time
def lookup(word="spam", nothing=None, flag=True):
    pair = [-42, 7000]
    letters = ("x", "y", "z")
    large = 987654321987654321
    ratio = 2.71828
    mapping = {"k": False, "t": (4, 5, 6)}
    nested = ("=" * 120, {"in": {"in": {"in": "deep"}}})
    wide = "\\u4e2d\\u6587\\u5b57" * 400
    blank = ""
    zero = 0
    minus = -7
    off = False
    nolist = []
    nodict = {}
    thing = ready
    ready(str(id(thing)))
    time.sleep(100000)
lookup()
"""

# A comprehension over several lines: its line table steps back to the
# loop's head each round (py-spy's negative line number increments).
COMPREHENSION = READY + """\
import time
def build():
    return [
        time.sleep(100000) or v
        for v in range(
            3
        )
        if ready() is None
    ]
build()  # BUILD
"""

PARENT = READY + """\
import subprocess, sys, threading, time
def worker():
    while True:
        time.sleep(0.05)
for _ in range(4):
    threading.Thread(target=worker, daemon=True).start()
# The child ends once its parent is gone: the test kills only the
# parent, the pid Popen gave it, and nothing may outlive the test.
child = subprocess.Popen([sys.executable, "-c",
                          "import os, time\\np = os.getppid()\\n"
                          "while os.getppid() == p: time.sleep(0.05)"])
ready(str(child.pid))
child.wait()
"""

ZOMBIE = READY + """\
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "pass"])
# Never waited for (poll() would reap it): a zombie once it exits.
while True:
    with open("/proc/%d/stat" % child.pid) as f:
        if f.read().rsplit(")", 1)[-1].split()[0] == "Z":
            break
    time.sleep(0.01)
ready(str(child.pid))
time.sleep(100000)
"""


def line_of(program, marker):
    for i, text in enumerate(program.splitlines(), 1):
        if marker in text:
            return i
    raise AssertionError(marker)


@pytest.fixture
def start(tmp_path):
    """Runs a program, waits (with a deadline) for its ready file and
    returns (Popen, the file's text); kills each by the pid it got."""
    procs = []

    def run(program, name="prog.py"):
        if not os.access(PYTHON, os.X_OK):
            pytest.skip(f"{PYTHON} is not installed")
        path = tmp_path / name
        path.write_text(program, encoding="utf-8")
        flag = tmp_path / f"ready{len(procs)}"
        p = subprocess.Popen([PYTHON, str(path), str(flag)],
                             stdout=subprocess.DEVNULL)
        procs.append(p)
        deadline = time.monotonic() + 60
        while not flag.exists():
            assert p.poll() is None, f"program exited {p.returncode}"
            assert time.monotonic() < deadline, "program never got ready"
            time.sleep(0.02)
        return p, flag.read_text()

    yield run
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def pyspy(*args, ok=(0,)):
    r = subprocess.run([str(find_tool("pyspy")), *map(str, args)],
                       capture_output=True, timeout=120)
    assert r.returncode in ok, r.stderr.decode("utf-8", "replace")[-3000:]
    return r.stdout.decode("utf-8")


def dump_json(pid, *flags):
    return json.loads(pyspy("dump", "--pid", pid, "--json", *flags))


def dump_until(pid, settled, *flags):
    """Dumps until settled(doc) holds: a program that wrote its ready
    file may not have reached its last call yet on a loaded machine."""
    deadline = time.monotonic() + 60
    while True:
        doc = dump_json(pid, *flags)
        if settled(doc) or time.monotonic() > deadline:
            return doc
        time.sleep(0.05)


def frame_names(trace):
    return [f["name"] for f in trace["frames"]]


def test_long_sleep(start):
    """py-spy's test_long_sleep: one thread, its two frames with short
    file names and lines, not holding the GIL; and (pyspy reads the
    thread's kernel state) idle."""
    p, _ = start(SLEEPER)
    doc = dump_until(p.pid, lambda d: frame_names(d[0])[0] == "dozing")
    assert len(doc) == 1
    (trace,) = doc
    f0, f1 = trace["frames"]
    assert (f0["name"], f0["short_filename"], f0["line"]) == \
        ("dozing", "prog.py", line_of(SLEEPER, "# NAP"))
    assert (f1["name"], f1["short_filename"], f1["line"]) == \
        ("<module>", "prog.py", line_of(SLEEPER, "# CALL"))
    assert trace["owns_gil"] is False
    assert trace["active"] is False


def test_busy_loop(start):
    """py-spy's test_busy_loop: the spinning thread is active (and, the
    only thread, holds the GIL)."""
    p, _ = start(SPINNER)
    doc = dump_until(p.pid, lambda d: frame_names(d[0])[0] == "spinning")
    (trace,) = doc
    assert trace["active"] is True
    assert trace["owns_gil"] is True


def test_thread_names(start):
    """py-spy's test_thread_names: eleven threads, each with the name the
    program gave it, in JSON and in the text dump."""
    p, _ = start(NAMED)
    want = {"MainThread"} | {f"Worker-{i}" for i in range(10)}
    doc = dump_until(p.pid, lambda d: all(
        frame_names(t)[0] != "ready" for t in d))
    assert len(doc) == 11
    assert {t["thread_name"] for t in doc} == want
    text = pyspy("dump", "--pid", p.pid)
    got = set(re.findall(r'^Thread \d+ \(idle\): "(.*)"$', text, re.M))
    assert got == want, text


def test_recursive(start, tmp_path):
    """py-spy's test_recursive: every sample's outermost frame is the
    module, at the loop or the call, and no stack is deeper than the
    recursion (16 descend frames and the module). Recorded as raw, so
    each sample is one of the lines."""
    p, _ = start(RECURSIVE)
    out = tmp_path / "rec.txt"
    pyspy("record", "--pid", p.pid, "-d", 2, "-r", 50, "-f", "raw", "-o",
          out, "--hideprogress")
    lines = out.read_text().splitlines()
    assert lines
    module_lines = {line_of(RECURSIVE, "# LOOP"),
                    line_of(RECURSIVE, "# DESCEND")}
    total = 0
    for line in lines:
        # a loaded machine may still find the program leaving ready()
        if "ready (prog.py:" in line:
            continue
        stack, count = line.rsplit(" ", 1)
        total += int(count)
        frames = stack.split(";")
        assert len(frames) <= 17, line
        m = re.match(r"^<module> \(prog\.py:(\d+)\)$", frames[0])
        assert m and int(m.group(1)) in module_lines, line
        assert all(f.startswith("descend (prog.py:") for f in frames[1:]), \
            line
    assert total > 0


def test_local_vars(start):
    """py-spy's test_local_vars on our own function: the locals in the
    code object's order, the three arguments marked, each repr as py-spy
    writes it (strings in double quotes, None, True/False, ints, floats,
    lists, tuples, dicts; a long string cut, not dropped; an empty string
    kept; an object it cannot show as <type at 0xADDR>)."""
    p, thing = start(LOCALS)
    doc = dump_until(p.pid, lambda d: frame_names(d[0])[0] == "lookup",
                     "-l")
    (trace,) = doc
    frame = trace["frames"][0]
    assert frame["name"] == "lookup" and len(trace["frames"]) == 2
    locals_ = frame["locals"]
    names = [v["name"] for v in locals_]
    assert names == ["word", "nothing", "flag", "pair", "letters", "large",
                     "ratio", "mapping", "nested", "wide", "blank", "zero",
                     "minus", "off", "nolist", "nodict", "thing"]
    assert [v["arg"] for v in locals_] == [True] * 3 + [False] * 14
    repr_of = {v["name"]: v["repr"] for v in locals_}
    want = {
        "word": '"spam"', "nothing": "None", "flag": "True",
        "pair": "[-42, 7000]", "letters": '("x", "y", "z")',
        "large": "987654321987654321", "ratio": "2.71828",
        "mapping": '{"k": False, "t": (4, 5, 6)}', "blank": '""',
        "zero": "0", "minus": "-7", "off": "False", "nolist": "[]",
        "nodict": "{}", "thing": "<function at 0x%x>" % int(thing),
    }
    assert {k: repr_of[k] for k in want} == want
    for v in locals_:
        assert isinstance(v["addr"], int) and v["addr"] > 0, v
    assert locals_[-1]["addr"] == int(thing)
    # Cut at 128 characters a -l (py-spy counts characters, not bytes).
    assert repr_of["wide"].startswith('"\u4e2d\u6587\u5b57\u4e2d')
    assert repr_of["wide"].endswith('..."') and len(repr_of["wide"]) <= 131
    assert repr_of["nested"].startswith('("=====')
    assert len(repr_of["nested"]) <= 131
    # The text dump: the same reprs under Arguments: and Locals:.
    text = pyspy("dump", "--pid", p.pid, "-l")
    block = text[text.index("    lookup (prog.py:"):]
    assert block.splitlines()[1:5] == [
        "        Arguments:", '            word: "spam"',
        "            nothing: None", "            flag: True"]
    assert block.splitlines()[5] == "        Locals:"
    assert "            mapping: " + want["mapping"] + "\n" in block


def test_negative_line_number_increment(start):
    """py-spy's test_negative_linenumber_increment: inside a comprehension
    spread over several lines; 3.12+ inline it into the function (PEP
    709), before it is a frame of its own."""
    p, _ = start(COMPREHENSION)
    doc = dump_until(p.pid, lambda d: frame_names(d[0])[0] != "ready")
    (trace,) = doc
    names = frame_names(trace)
    version = subprocess.run(
        [PYTHON, "-c", "import sys; print(sys.version_info[:2] >= (3, 12))"],
        capture_output=True, text=True).stdout.strip()
    want = ["build", "<module>"] if version == "True" else \
        ["<listcomp>", "build", "<module>"]
    assert names == want, names
    first = line_of(COMPREHENSION, "return [")
    for f in trace["frames"][:-1]:
        assert first <= f["line"] <= first + 6, f
    assert trace["frames"][-1]["line"] == line_of(COMPREHENSION, "# BUILD")


def test_dump_subprocesses_no_duplication(start):
    """py-spy's test_dump_subprocesses_no_duplication: a parent with four
    threads and a child; with --subprocesses each process's header is
    printed once (not once per thread). And --json is one document
    holding both processes' threads."""
    p, child = start(PARENT)
    child = int(child)

    def both(d):
        return {t["pid"] for t in d} == {p.pid, child}
    doc = dump_until(p.pid, both, "--subprocesses")
    assert both(doc), doc
    assert sum(t["pid"] == p.pid for t in doc) == 5
    for t in doc:
        assert t["process_info"]["pid"] == t["pid"]
        parent = t["process_info"]["parent"]
        assert (parent or {}).get("pid") == (p.pid if t["pid"] == child
                                             else None)
    text = pyspy("dump", "--pid", p.pid, "--subprocesses")
    lines = text.splitlines()
    assert sum(l.startswith(f"Process {p.pid}:") for l in lines) == 1, text
    assert sum(l.startswith(f"Process {child}:") for l in lines) == 1, text
    assert sum(l.startswith(f"Parent Process {p.pid}:")
               for l in lines) == 1, text


def test_zombie_child(start, tmp_path):
    """py-spy's test_subprocesses_zombiechild: a child that exited and was
    not waited for does not stop --subprocesses (dump and record)."""
    p, child = start(ZOMBIE)
    with open(f"/proc/{child}/stat") as f:
        assert f.read().rsplit(")", 1)[-1].split()[0] == "Z"
    doc = dump_json(p.pid, "--subprocesses")
    assert {t["pid"] for t in doc} == {p.pid}
    out = tmp_path / "z.txt"
    pyspy("record", "--pid", p.pid, "--subprocesses", "--idle", "-d", 1,
          "-f", "raw", "-o", out, "--hideprogress")
    assert out.read_text().strip()


# py-spy's StackTrace, Frame and LocalVariable, in the order serde writes
# their fields, with the JSON types each may take.
TRACE_KEYS = [("pid", int), ("thread_id", int),
              ("thread_name", (str, type(None))),
              ("os_thread_id", (int, type(None))), ("active", bool),
              ("owns_gil", bool), ("frames", list),
              ("process_info", (dict, type(None)))]
FRAME_KEYS = [("name", str), ("filename", str),
              ("module", (str, type(None))),
              ("short_filename", (str, type(None))), ("line", int),
              ("locals", (list, type(None))), ("is_entry", bool),
              ("is_shim_entry", bool)]
LOCAL_KEYS = [("name", str), ("addr", int), ("arg", bool),
              ("repr", (str, type(None)))]


def keys_match(obj, spec):
    """py-spy's keys first, in py-spy's order and types; pyspy may only
    add keys after them."""
    got = list(obj)
    assert got[:len(spec)] == [k for k, _ in spec], got
    for k, types in spec:
        assert isinstance(obj[k], types), (k, obj[k])
        # JSON true/false are bools; an int field must not be one
        if types is int:
            assert not isinstance(obj[k], bool), (k, obj[k])


def test_json_shape(start):
    """dump --json field by field as py-spy writes it: a list of traces,
    each with py-spy's keys in its order and types, pretty-printed with
    two spaces as serde_json::to_string_pretty does."""
    p, _ = start(LOCALS)
    raw = pyspy("dump", "--pid", p.pid, "--json", "-l")
    assert raw.startswith("[\n  {\n    \"pid\": ") and raw.endswith("]\n")
    doc = json.loads(raw)
    assert isinstance(doc, list) and doc
    for t in doc:
        keys_match(t, TRACE_KEYS)
        assert t["pid"] == p.pid and t["os_thread_id"] == p.pid
        for f in t["frames"]:
            keys_match(f, FRAME_KEYS)
            # Python frames: no module (py-spy's is the native library)
            assert f["module"] is None
            for v in f["locals"]:
                keys_match(v, LOCAL_KEYS)
    # Without -l there are no locals, as null.
    for t in dump_json(p.pid):
        assert all(f["locals"] is None for f in t["frames"])
