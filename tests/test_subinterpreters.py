"""Sub-interpreters (3.12+): each OS thread is one thread in dump (text,
JSON, live, --nonblocking, a snapshot) and in record, its stack the frames
of every interpreter running on it, innermost first, each run labelled
with its interpreter's id.

The program makes three sub-interpreters on the main thread. The main
thread enters the newer one, which enters the older one (so the order
cannot come from the interpreters' age: the inner one is the older); a
worker thread enters the third (which on 3.12 runs on the main thread's
first thread state of that interpreter, gh-109860, so its recorded
thread ids are the main thread's); a plain thread parks in the main
interpreter and is the baseline of one sample per tick. Every thread
writes its native id and interpreter id to a file when it parks."""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import find_tool

PYENV = os.environ.get("PYENV_ROOT", "/root/.pyenv")
SID = os.environ.get("PYSPY_SID_PYTHONS", "/var/cache/pyspy-pythons/sid")
INTERPRETERS = [
    pytest.param(os.path.join(PYENV, "versions", "3.12.1", "bin", "python3"),
                 id="3.12.1"),
    pytest.param(os.path.join(PYENV, "versions", "3.13.0", "bin", "python3"),
                 id="3.13.0"),
    pytest.param(os.path.join(SID, "python3.14"), id="sid-3.14"),
    pytest.param(os.path.join(SID, "python3.15"), id="sid-3.15"),
]
TIMEOUT = 120
RATE = 50
DURATION = 2

# Run in every interpreter: where this one parks, as "native_id interp_id".
NOTE = """\
import os, threading
try:
    import _interpreters as _subi
except ImportError:
    import _xxsubinterpreters as _subi
def note(name):
    cur = _subi.get_current()
    interp = cur[0] if isinstance(cur, tuple) else int(cur)
    tmp = os.path.join(OUT, name + ".tmp")
    with open(tmp, "w") as f:
        f.write("%d %d" % (threading.get_native_id(), interp))
    os.replace(tmp, os.path.join(OUT, name))
"""

OLDER = """\
import time
def older_park():
    note("older")
    while True:
        time.sleep(0.05)  # OLDER_SLEEP
older_park()
"""

NEWER = """\
def newer_enter():
    _subi.run_string(OLDER_ID, OLDER_CODE)  # NEWER_RUN
newer_enter()
"""

THIRD = """\
import time
def third_park():
    note("third")
    while True:
        time.sleep(0.05)  # THIRD_SLEEP
third_park()
"""

PROGRAM = """\
import sys, threading, time
OUT = sys.argv[1]
exec(NOTE)
older = _subi.create()
newer = _subi.create()
third = _subi.create()
def prelude(code):
    return "OUT = %r\\n" % OUT + NOTE + code
def plain_park():
    note("plain")
    while True:
        time.sleep(0.05)  # PLAIN_SLEEP
def worker():
    _subi.run_string(third, prelude(THIRD))  # WORKER_RUN
threading.Thread(target=plain_park, name="plain", daemon=True).start()
threading.Thread(target=worker, name="subi-worker", daemon=True).start()
def main_enter():
    note("main")
    code = ("OLDER_ID = %d\\nOLDER_CODE = %r\\n" % (int(older), prelude(OLDER))
            + NEWER)
    _subi.run_string(newer, prelude(code))  # MAIN_RUN
main_enter()
"""

NAMES = ("main", "plain", "older", "third")


def need(python):
    if not os.path.exists(python):
        pytest.skip(f"{python} is not installed")


def run(args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True,
                          text=True, timeout=TIMEOUT, **kw)


class Target:
    def __init__(self, python, tmp_path):
        self.dir = tmp_path / "notes"
        self.dir.mkdir()
        self.path = tmp_path / "subi.py"
        self.path.write_text(
            "NOTE = %r\nOLDER = %r\nNEWER = %r\nTHIRD = %r\n"
            % (NOTE, OLDER, NEWER, THIRD) + PROGRAM, encoding="utf-8")
        self.proc = subprocess.Popen([python, str(self.path), str(self.dir)],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, cwd=tmp_path)
        self.notes = {}
        deadline = time.monotonic() + 60
        while len(self.notes) < len(NAMES):
            for name in NAMES:
                p = self.dir / name
                if name not in self.notes and p.exists():
                    tid, interp = p.read_text().split()
                    self.notes[name] = (int(tid), int(interp))
            if self.proc.poll() is not None:
                raise AssertionError("target exited: " +
                                     self.proc.stderr.read().decode())
            assert time.monotonic() < deadline, f"notes: {self.notes}"
            time.sleep(0.02)

    @property
    def pid(self):
        return self.proc.pid

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stderr.close()


@pytest.fixture
def target(tmp_path):
    made = []

    def make(python):
        need(python)
        t = Target(python, tmp_path)
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()


def dump_json(*args):
    r = run([find_tool("pyspy"), "dump", "--json", *args])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def parked(traces):
    """Every thread sits in its sleep call (the notes are written just
    before)."""
    inner = {t["frames"][0]["name"] for t in traces if t["frames"]}
    return {"older_park", "third_park", "plain_park"} <= inner and all(
        t["frames"][0]["name"] != "note" for t in traces if t["frames"])


def wait_parked(pid, *args):
    deadline = time.monotonic() + 30
    while True:
        traces = dump_json("--pid", pid, *args)
        if parked(traces):
            return traces
        assert time.monotonic() < deadline, traces
        time.sleep(0.05)


def names_and_ids(trace):
    return [(f["name"], f.get("interpreter_id", 0)) for f in trace["frames"]]


def check_traces(t, traces):
    main_tid = t.notes["main"][0]
    older, newer_tid = t.notes["older"], t.notes["main"][0]
    third = t.notes["third"]
    assert older[0] == newer_tid  # the main thread runs the nested pair
    ids = [tr["os_thread_id"] for tr in traces]
    assert len(ids) == len(set(ids)), ids
    by_tid = {tr["os_thread_id"]: tr for tr in traces}
    assert set(by_tid) == {main_tid, t.notes["plain"][0], third[0]}
    main = by_tid[main_tid]
    assert main["thread_name"] == "MainThread"
    frames = names_and_ids(main)
    names = [n for n, _ in frames]
    i_older = names.index("older_park")
    i_newer = names.index("newer_enter")
    i_main = names.index("main_enter")
    assert i_older < i_newer < i_main, names
    run_ids = [i for _, i in frames]
    # Innermost first: the older interpreter, the newer one that entered
    # it, then the main interpreter that entered the newer.
    newer_id = run_ids[i_newer]
    assert run_ids[:i_newer] == [older[1]] * i_newer
    assert newer_id not in (0, older[1], third[1])
    assert set(run_ids[i_newer:i_main]) == {newer_id}
    assert set(run_ids[i_main:]) == {0}
    assert all("interpreter_id" in f for f in main["frames"])
    worker = by_tid[third[0]]
    assert worker["thread_name"] == "subi-worker"
    wnames = names_and_ids(worker)
    assert wnames[0] == ("third_park", third[1])
    assert ("worker", 0) in wnames and wnames[-1][1] == 0
    plain = by_tid[t.notes["plain"][0]]
    assert plain["thread_name"] == "plain"
    # A thread wholly in the main interpreter keeps py-spy's shape.
    assert all("interpreter_id" not in f for f in plain["frames"])


@pytest.mark.parametrize("python", INTERPRETERS)
def test_dump_json_one_thread_per_os_thread(python, target):
    t = target(python)
    check_traces(t, wait_parked(t.pid))
    # Without ptrace there are no registers: the stack mapping of the
    # entry frame still names the thread.
    check_traces(t, wait_parked(t.pid, "--nonblocking"))


def text_threads(text):
    """{os tid: [frame lines]} from dump's text."""
    out, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"Thread (\d+) \(", line)
        if m:
            cur = int(m.group(1))
            assert cur not in out, text
            out[cur] = []
        elif cur is not None and line.startswith("    "):
            out[cur].append(line.strip())
    return out


def check_text(t, text):
    threads = text_threads(text)
    assert set(threads) == {t.notes[n][0] for n in ("main", "plain", "third")}
    main = threads[t.notes["main"][0]]
    older_id = t.notes["older"][1]
    notes = [(i, re.search(r"\(interpreter (\d+)\)$", line))
             for i, line in enumerate(main)]
    labelled = [(i, int(m.group(1))) for i, m in notes if m]
    # One note per run: older, newer, main (0).
    assert [i for i, _ in labelled][0] == 0, main
    assert len(labelled) == 3, main
    assert labelled[0][1] == older_id and labelled[2][1] == 0, main
    assert main[0].startswith("older_park ")
    assert main[labelled[1][0]].startswith("newer_enter ")
    assert main[labelled[2][0]].startswith("main_enter (subi.py:")
    third = threads[t.notes["third"][0]]
    assert third[0].startswith("third_park ") and third[0].endswith(
        "(interpreter %d)" % t.notes["third"][1]), third
    assert sum("(interpreter 0)" in line for line in third) == 1, third
    plain = threads[t.notes["plain"][0]]
    assert not any("(interpreter" in line for line in plain), plain


@pytest.mark.parametrize("python", INTERPRETERS)
def test_dump_text_and_snapshot(python, target, tmp_path):
    t = target(python)
    wait_parked(t.pid)
    r = run([find_tool("pyspy"), "dump", "--pid", t.pid])
    assert r.returncode == 0, r.stderr
    check_text(t, r.stdout)
    snap = tmp_path / "x.core.zst"
    c = run([find_tool("pyspy-capture"), "--pid", t.pid, "-o", snap])
    assert c.returncode == 0, c.stderr
    s = run([find_tool("pyspy"), "dump", snap])
    assert s.returncode == 0, s.stderr
    check_text(t, s.stdout)
    # The same frames, thread by thread (parked: the lines do not move).
    assert text_threads(s.stdout) == text_threads(r.stdout)
    check_traces(t, dump_json(snap))


def raw_per_thread(path):
    """{thread label: samples} from record -f raw --threads."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            stack, count = line.rstrip("\n").rsplit(" ", 1)
            label = stack.split(";", 1)[0]
            out[label] = out.get(label, 0) + int(count)
    return out


@pytest.mark.parametrize("python", INTERPRETERS)
def test_record_one_sample_per_os_thread_per_tick(python, target, tmp_path):
    t = target(python)
    wait_parked(t.pid)
    out = tmp_path / "raw.txt"
    r = run([find_tool("pyspy"), "record", "--pid", t.pid, "-r", RATE,
             "-d", DURATION, "-f", "raw", "-o", out, "--idle", "--threads",
             "--hideprogress"])
    assert r.returncode == 0, r.stderr + r.stdout
    m = re.search(r"Samples: (\d+)", r.stdout)
    assert m, r.stdout
    per = raw_per_thread(out)
    # Thread labels carry the thread name: three OS threads, three labels.
    assert len(per) == 3, per
    label = {n: [k for k in per if k.endswith(": " + n)]
             for n in ("MainThread", "plain", "subi-worker")}
    assert all(len(v) == 1 for v in label.values()), per
    plain = per[label["plain"][0]]
    # The plain thread is the baseline: one sample per tick.
    assert 0 < plain <= RATE * DURATION + 2, per
    assert per[label["MainThread"][0]] == plain, per
    assert per[label["subi-worker"][0]] == plain, per
    assert int(m.group(1)) == 3 * plain, (r.stdout, per)
    # Each sample of the main thread holds all three interpreters' frames.
    with open(out, encoding="utf-8") as f:
        for line in f:
            if line.startswith(label["MainThread"][0] + ";"):
                assert "main_enter" in line and "newer_enter" in line
                assert "older_park" in line


@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed")
@pytest.mark.parametrize("python", INTERPRETERS)
def test_top_counts_os_threads(python, target):
    t = target(python)
    wait_parked(t.pid)
    name = f"pyspy-subi-top-{os.getpid()}-{time.monotonic_ns()}"
    script = (f"{find_tool('pyspy')} top --pid {t.pid} --idle --delay 0.5; "
              "sleep 60")
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "160",
                    "-y", "40", "sh", "-c", script], check=True,
                   timeout=TIMEOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", name],
                                    capture_output=True, text=True,
                                    timeout=TIMEOUT).stdout
            rows = {m.group(2): float(m.group(1)) for m in re.finditer(
                r"^\s*\S+%\s+\S+%\s+(\S+)s\s+\S+s\s+(\w+) \(", screen, re.M)}
            if "Threads:" in screen and rows.get("plain_park", 0) >= 0.5:
                break
            assert time.monotonic() < deadline, screen
            time.sleep(0.2)
        # Three OS threads (five thread states), one sample each per tick.
        assert re.search(r"Threads: 3\b", screen), screen
        assert rows["older_park"] == rows["plain_park"], screen
        assert rows["third_park"] == rows["plain_park"], screen
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], timeout=TIMEOUT)


@pytest.mark.parametrize("python", INTERPRETERS)
def test_record_formats_one_thread_per_os_thread(python, target, tmp_path):
    """speedscope: one profile per OS thread, each weighing what the plain
    thread weighs; chrometrace: one track per OS thread."""
    t = target(python)
    wait_parked(t.pid)
    tids = {t.notes[n][0] for n in ("main", "plain", "third")}
    outs = {}
    for fmt in ("speedscope", "chrometrace"):
        outs[fmt] = tmp_path / f"{fmt}.json"
        r = run([find_tool("pyspy"), "record", "--pid", t.pid, "-r", RATE,
                 "-d", 1, "-f", fmt, "-o", outs[fmt], "--idle",
                 "--hideprogress"])
        assert r.returncode == 0, r.stderr + r.stdout
    doc = json.loads(outs["speedscope"].read_text())
    weights = {p["name"]: sum(p["weights"]) for p in doc["profiles"]}
    assert len(weights) == 3, weights
    plain = [w for name, w in weights.items() if name.endswith('"plain"')]
    assert len(plain) == 1 and plain[0] > 0, weights
    assert set(weights.values()) == {plain[0]}, weights
    main = [p for p in doc["profiles"] if p["name"].endswith('"MainThread"')]
    frames = doc["shared"]["frames"]
    names = {frames[i]["name"] for s in main[0]["samples"] for i in s}
    assert {"older_park", "newer_enter", "main_enter"} <= names, names
    events = json.loads(outs["chrometrace"].read_text())
    if isinstance(events, dict):
        events = events["traceEvents"]
    # py-spy's tid is the pthread id; the track's label names the OS
    # thread as py-spy's --threads frame does.
    tracks = {e["tid"]: e["args"]["name"] for e in events
              if e.get("ph") == "M" and e.get("name") == "thread_name"}
    assert len(tracks) == 3, tracks
    labelled = {int(re.match(r"thread \((\d+)\)", n).group(1))
                for n in tracks.values()}
    assert labelled == tids, tracks
    assert all(e["tid"] in tracks for e in events), tracks
