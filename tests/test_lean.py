"""Lean snapshots (`pyspy dump --snapshot FILE`): the pages the dump read,
the threads and the modules, and nothing else. Taken at the same stop as
a full snapshot of the same process (one SIGSTOP), each dumps exactly as
the full one does, with --locals and --native too; gdb opens it; and it
is a fraction of the full one's size."""
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from conftest import find_tool, ready_process  # noqa: E402

PYENV = pathlib.Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")) / "versions"
INTERPRETERS = ["/usr/bin/python3"] + [
    str(PYENV / v / "bin" / "python")
    for v in ("2.7.18", "3.8.18", "3.12.1", "3.13.0")
] + [os.path.join(os.environ.get("PYSPY_SID_PYTHONS",
                                 "/var/cache/pyspy-pythons/sid"), "python3.14")]

PROGRAM = r'''
import sys, threading
running = threading.Event()
def crunch():
    x = 0
    running.set()
    while True:
        x += 1
def inner(a, b):
    d = {"k": [1, 2, 3], "s": "hello"}
    # ready once both threads stand where the test looks for them
    while not running.wait(1):
        pass
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        a += 1
def outer():
    inner(1, "two")
t = threading.Thread(target=crunch, name="cruncher")
t.daemon = True
t.start()
outer()
'''

VARIANTS = {"plain": [], "locals": ["--locals"], "native": ["--native"]}


def run(*args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True,
                          text=True, timeout=300, **kw)


def task_states(pid):
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                out[int(t)] = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            pass
    return out


@pytest.fixture(params=INTERPRETERS)
def target(request, tmp_path):
    python = request.param
    if not os.path.exists(python):
        pytest.skip(f"{python} is not installed on this machine")
    prog = tmp_path / "prog.py"
    prog.write_text(PROGRAM)
    with ready_process([python, prog]) as p:
        yield p


def stop(pid):
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 60
    while not all(s == "T" for s in task_states(pid).values()):
        assert time.monotonic() < deadline, "the target did not stop"
        time.sleep(0.01)


def test_lean_dumps_as_full_at_the_same_stop(target, tmp_path):
    pyspy, capture = find_tool("pyspy"), find_tool("pyspy-capture")
    full = tmp_path / "full.core.zst"
    live, lean = {}, {}
    stop(target.pid)
    try:
        r = run(capture, "-p", target.pid, "--already-locked", "-o", full)
        assert r.returncode == 0, r.stderr
        for name, flags in VARIANTS.items():
            lean[name] = tmp_path / f"lean-{name}.core.zst"
            r = run(pyspy, "dump", "--pid", target.pid, *flags, "--snapshot",
                    lean[name])
            assert r.returncode == 0, r.stderr
            assert "lean snapshot" in r.stderr, r.stderr
            live[name] = r.stdout
    finally:
        os.kill(target.pid, signal.SIGCONT)
    for name, flags in VARIANTS.items():
        f = run(pyspy, "dump", full, *flags)
        g = run(pyspy, "dump", lean[name], *flags)
        assert f.returncode == 0, f.stderr
        assert g.returncode == 0, g.stderr
        assert "inner (" in g.stdout and "crunch (" in g.stdout, g.stdout
        assert g.stdout == f.stdout, name
        assert "lacks memory" not in g.stderr, g.stderr
        assert g.stdout == live[name], name
        # only what the walk read: a small part of the full snapshot
        assert lean[name].stat().st_size * 4 < full.stat().st_size
    assert '"hello"' in run(pyspy, "dump", lean["locals"],
                            "--locals").stdout
    # what a lean snapshot lacks is said, not passed off as complete
    w = run(pyspy, "dump", lean["plain"], "--locals")
    assert "pages a lean snapshot left out" in w.stderr, w.stderr
    assert "--executable" not in w.stderr, w.stderr


def test_lean_of_a_snapshot_dumps_as_it(target, tmp_path):
    """A lean snapshot made from a full one (archives slimmed later)."""
    pyspy, capture = find_tool("pyspy"), find_tool("pyspy-capture")
    full, lean = tmp_path / "full.core.zst", tmp_path / "lean.core.zst"
    r = run(capture, "-p", target.pid, "-o", full)
    assert r.returncode == 0, r.stderr
    a = run(pyspy, "dump", "--locals", full, "--snapshot", lean)
    assert a.returncode == 0, a.stderr
    b = run(pyspy, "dump", "--locals", lean)
    assert b.returncode == 0, b.stderr
    assert a.stdout == b.stdout
    # a lean snapshot of a lean one keeps the same pages
    again = tmp_path / "again.core.zst"
    c = run(pyspy, "dump", "--locals", lean, "--snapshot", again)
    assert c.returncode == 0 and c.stdout == a.stdout, c.stderr
    pages = [re.search(r"(\d+) pages", x.stderr).group(1) for x in (a, c)]
    assert pages[0] == pages[1]


def test_gdb_opens_a_lean_snapshot(tmp_path):
    if not shutil.which("gdb") or not shutil.which("zstd"):
        pytest.skip("gdb and zstd are needed")
    pyspy = find_tool("pyspy")
    prog = tmp_path / "prog.py"
    prog.write_text(PROGRAM)
    p = subprocess.Popen(["/usr/bin/python3", str(prog)],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        lean = tmp_path / "lean.core.zst"
        r = run(pyspy, "dump", "--pid", p.pid, "--native", "--snapshot", lean)
        assert r.returncode == 0, r.stderr
        tids = set(task_states(p.pid))
    finally:
        p.kill()
        p.wait()
    core = tmp_path / "lean.core"
    subprocess.run(["zstd", "-q", "-d", str(lean), "-o", str(core)],
                   check=True)
    g = run("gdb", "-batch", "-ex", "info threads", "-ex", "bt",
            "/usr/bin/python3", core)
    assert g.returncode == 0, g.stderr
    lwps = set(int(x) for x in re.findall(r"LWP (\d+)", g.stdout))
    assert lwps == tids, g.stdout + g.stderr
    # the stack of the thread gdb shows was kept: bt gets past frame 0
    assert re.search(r"^#1 ", g.stdout, re.M), g.stdout


def test_snapshot_option_takes_one_source(tmp_path):
    pyspy = find_tool("pyspy")
    r = run(pyspy, "dump", "a.core.zst", "b.core.zst", "--snapshot",
            tmp_path / "x.core.zst")
    assert r.returncode == 2
    assert "--snapshot <file>" in r.stderr
