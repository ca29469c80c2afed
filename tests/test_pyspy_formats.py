"""py-spy 0.4.2's own assertions on record's files, made on pyspy with our
programs: its integration test reads speedscope files with
Frame(**frame) on a (file, name, line, col) tuple and counts samples, one
per tick, for sleeping, busy and named-thread programs. Also speedscope's
Time Order view: samples in time order, weights adding up to the time
recorded."""
import json
import os
import re
import subprocess
import time
from collections import defaultdict, namedtuple

import pytest

from conftest import find_tool

SYSTEM_PYTHON = os.environ.get("PYSPY_TEST_PYTHON", "/usr/bin/python3")

# The shape py-spy's tests/integration_test.py gives a speedscope frame:
# a file without exactly these keys fails there at Frame(**frame).
Frame = namedtuple("Frame", ["file", "name", "line", "col"])

SLEEPING = """\
import sys, time
def napping():
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    while True:
        time.sleep(30)  # NAP
napping()  # CALL
"""

SPINNING = """\
import sys
sys.stdout.write("ready\\n"); sys.stdout.flush()
n = 0
while True:
    n += 1
"""

NAMED_THREADS = """\
import sys, threading
go = threading.Event()
for i in range(10):
    threading.Thread(target=go.wait, name="Named-%d" % i,
                     daemon=True).start()
sys.stdout.write("ready\\n"); sys.stdout.flush()
go.wait()
"""

# Two phases taking turns every PHASE seconds of the program's own clock:
# a file that merged identical stacks shows each phase once.
PHASE = 0.5
PHASES = """\
import sys, time
def phase_one(until):
    while time.monotonic() < until:
        pass
def phase_two(until):
    while time.monotonic() < until:
        pass
sys.stdout.write("ready\\n"); sys.stdout.flush()
t = time.monotonic()
while True:
    t += %r
    phase_one(t)
    t += %r
    phase_two(t)
""" % (PHASE, PHASE)


def line_of(program, marker):
    for i, text in enumerate(program.splitlines(), 1):
        if marker in text:
            return i
    raise AssertionError(marker)


@pytest.fixture
def start(tmp_path):
    procs = []

    def run(program):
        if not os.path.exists(SYSTEM_PYTHON):
            pytest.skip(f"{SYSTEM_PYTHON} is not installed")
        path = tmp_path / f"prog{len(procs)}.py"
        path.write_text(program)
        p = subprocess.Popen([SYSTEM_PYTHON, str(path)],
                             stdout=subprocess.PIPE)
        procs.append(p)
        assert p.stdout.readline().strip() == b"ready"
        return p

    yield run
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()
        p.stdout.close()


def record(pid, tmp_path, *flags, rate=100, duration=2):
    out = tmp_path / f"profile-{time.monotonic_ns()}.json"
    res = subprocess.run(
        [str(find_tool("pyspy")), "record", "-o", str(out), "--format",
         "speedscope", "-d", str(duration), "-r", str(rate), "--pid",
         str(pid), "--hideprogress", *flags],
        capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr + res.stdout
    with open(out) as f:
        return json.load(f), res


def samples_of(doc, include_profile_name=False):
    """py-spy's _sample_process: {stack of Frames: number of samples}."""
    frames = doc["shared"]["frames"]
    samples = defaultdict(int)
    for p in doc["profiles"]:
        for sample in p["samples"]:
            key = tuple(Frame(**frames[i]) for i in sample)
            if include_profile_name:
                key = (p["name"],) + key
            samples[key] += 1
    return samples


def most_frequent(samples):
    frames, count = max(samples.items(), key=lambda x: x[1])
    return frames, int(100 * count / sum(samples.values()))


def ticks_possible(res, rate, duration):
    """Ticks a run could take: pyspy skips a tick whose slot went by and
    says so, with the rate achieved, when it falls a tenth short."""
    m = re.search(r"Cannot keep up with \d+ samples a second: (\d+) a "
                  r"second achieved", res.stdout)
    return duration * (int(m.group(1)) if m else rate)


def test_file_is_py_spys_shape(start, tmp_path):
    p = start(SLEEPING)
    doc, _ = record(p.pid, tmp_path, "--idle", "--threads")
    assert list(doc) == ["$schema", "profiles", "shared",
                         "activeProfileIndex", "exporter", "name"]
    assert doc["$schema"] == \
        "https://www.speedscope.app/file-format-schema.json"
    assert doc["activeProfileIndex"] is None
    assert doc["name"] == "py-spy profile"
    assert re.match(r"^pyspy@\d+\.\d+\.\d+$", doc["exporter"])
    (prof,) = doc["profiles"]
    assert list(prof) == ["type", "name", "unit", "startValue", "endValue",
                          "samples", "weights"]
    assert prof["type"] == "sampled" and prof["unit"] == "seconds"
    # py-spy's format_threadid on Linux: the OS thread id; no threading
    # module, no name.
    assert prof["name"] == f'Thread {p.pid} ""'
    assert prof["startValue"] == 0
    assert len(prof["samples"]) == len(prof["weights"]) > 0
    # 1/rate each; a sample after ticks the sampler had to skip (late,
    # on a loaded machine) weighs those too.
    assert all(round(w / 0.01) >= 1 and abs(w / 0.01 - round(w / 0.01))
               < 1e-9 for w in prof["weights"]), prof["weights"][:20]
    assert prof["weights"].count(0.01) > len(prof["weights"]) / 2
    assert prof["endValue"] == pytest.approx(sum(prof["weights"]))
    for f in doc["shared"]["frames"]:
        assert list(f) == ["name", "file", "line", "col"]
        assert f["col"] is None
    # The --threads frame as py-spy pushes it: no file, line 0.
    roots = {Frame(**doc["shared"]["frames"][s[0]])
             for s in prof["samples"]}
    assert roots == {Frame(file="", name=f"thread ({p.pid})", line=0,
                           col=None)}, roots


def test_longsleep(start, tmp_path):
    p = start(SLEEPING)
    # With --gil, a sleeper gives (almost) no samples.
    doc, _ = record(p.pid, tmp_path, "--gil")
    assert sum(samples_of(doc).values()) <= 10
    # With --idle, > 95 % of samples are in the sleep call.
    doc, _ = record(p.pid, tmp_path, "--idle")
    sample, percent = most_frequent(samples_of(doc))
    assert percent >= 95
    assert len(sample) == 2
    assert sample[0].name == "<module>"
    assert sample[0].line == line_of(SLEEPING, "# CALL")
    assert sample[1].name == "napping"
    assert sample[1].line == line_of(SLEEPING, "# NAP")
    assert sample[1].file.endswith("prog0.py")


def test_busyloop(start, tmp_path):
    p = start(SPINNING)
    doc, res = record(p.pid, tmp_path, "--gil")
    # py-spy: >= 95 of the 200 ticks of -d 2 at 100 Hz hold the GIL,
    # counted one sample per tick.
    n = sum(samples_of(doc).values())
    assert n >= 95 * ticks_possible(res, 100, 2) / 200, (n, res.stdout)


def test_thread_names(start, tmp_path):
    p = start(NAMED_THREADS)
    doc, _ = record(p.pid, tmp_path, "--threads", "--idle")
    profile = samples_of(doc, include_profile_name=True)
    name_re = re.compile(r"\"(.*)\"")
    names = {name_re.search(k[0]).groups()[0] for k in profile}
    assert names == {"MainThread"} | {f"Named-{i}" for i in range(10)}
    tasks = {int(t) for t in os.listdir(f"/proc/{p.pid}/task")}
    for key in profile:
        m = re.match(r'^Thread (\d+) "(.*)"$', key[0])
        assert m and int(m.group(1)) in tasks, key[0]
        # The --threads root names the same thread the same way.
        assert key[1] == Frame(file="", line=0, col=None,
                               name=f"thread ({m.group(1)}): {m.group(2)}")


# One thread spinning, three waiting for ever, the main thread waiting.
MIXED = """\
import sys, threading
go = threading.Event()
def spin():
    while not go.is_set():
        pass
threading.Thread(target=spin, name="spinner", daemon=True).start()
for i in range(3):
    threading.Thread(target=go.wait, name="waiter-%d" % i,
                     daemon=True).start()
sys.stdout.write("ready\\n"); sys.stdout.flush()
go.wait()
"""


def test_idle_program_gives_few_samples(start, tmp_path):
    """py-spy's sample counts, without --gil: a program that only sleeps
    gives (almost) no samples unless --idle is given."""
    p = start(SLEEPING)
    doc, _ = record(p.pid, tmp_path)
    assert sum(samples_of(doc).values()) <= 10


def test_which_threads_are_idle(start, tmp_path):
    """Without --idle only the spinning thread has samples, nearly one a
    tick; with --idle every thread has one a tick, the waiters in their
    wait."""
    p = start(MIXED)
    doc, res = record(p.pid, tmp_path, "--threads")
    by_thread = defaultdict(int)
    for key, n in samples_of(doc, include_profile_name=True).items():
        by_thread[re.search(r'"(.*)"$', key[0]).group(1)] += n
    assert set(by_thread) == {"spinner"}, dict(by_thread)
    assert by_thread["spinner"] >= 0.9 * ticks_possible(res, 100, 2), \
        (dict(by_thread), res.stdout)
    doc, res = record(p.pid, tmp_path, "--threads", "--idle")
    by_thread = defaultdict(int)
    for key, n in samples_of(doc, include_profile_name=True).items():
        by_thread[re.search(r'"(.*)"$', key[0]).group(1)] += n
        if "waiter" in key[0]:
            assert key[-1].name == "wait", key
    assert set(by_thread) == {"MainThread", "spinner", "waiter-0",
                              "waiter-1", "waiter-2"}, dict(by_thread)
    # Every tick samples every thread (a tick whose read failed for one
    # thread may be missing).
    counts = by_thread.values()
    assert max(counts) - min(counts) <= 0.02 * max(counts) + 1, \
        dict(by_thread)
    assert by_thread["spinner"] >= 0.9 * ticks_possible(res, 100, 2)


def test_shell_completions():
    subprocess.check_output([str(find_tool("pyspy")), "completions", "bash"])


def test_time_order(start, tmp_path):
    """Speedscope's Time Order view draws the samples in file order, each
    as wide as its weight: the phases must alternate as the program ran
    them, and the weights add up to the time recorded (-d), within one
    sampling period."""
    rate, duration = 10, 4
    p = start(PHASES)
    doc, res = record(p.pid, tmp_path, "--idle", rate=rate,
                      duration=duration)
    (prof,) = doc["profiles"]
    frames = doc["shared"]["frames"]
    phases = []
    for s in prof["samples"]:
        names = {frames[i]["name"] for i in s}
        phases.append("one" if "phase_one" in names else
                      "two" if "phase_two" in names else "other")
    runs = [ph for i, ph in enumerate(phases) if i == 0 or phases[i - 1] != ph]
    # 4 s of 0.5 s phases: 8 runs; the first and last may be cut short.
    assert "other" not in runs and len(runs) >= 6, phases
    total = sum(prof["weights"])
    assert abs(total - duration) <= 1 / rate + 1e-9, (total, res.stdout)
    assert prof["endValue"] == pytest.approx(total)


CHILDREN = """\
import subprocess, sys, time
code = ("import os\\nppid = os.getppid()\\n"
        "while os.getppid() == ppid:\\n    x = sum(range(1000))\\n")
kids = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(3)]
sys.stdout.write("ready\\n"); sys.stdout.flush()
while True:
    time.sleep(1)
"""


def test_subprocesses(start, tmp_path):
    """py-spy's test_subprocesses: at least three processes, told apart;
    in speedscope each thread's profile names its process, and each
    sample starts with the process frames, outermost parent first, as
    py-spy pushes them (no file, line 0)."""
    p = start(CHILDREN)
    doc, _ = record(p.pid, tmp_path, "--subprocesses", "--idle",
                    duration=3)
    frames = doc["shared"]["frames"]
    pids = set()
    for prof in doc["profiles"]:
        m = re.match(r'^Process (\d+) Thread (\d+) "(.*)"$', prof["name"])
        assert m, prof["name"]
        pid = int(m.group(1))
        pids.add(pid)
        for s in prof["samples"]:
            chain = []
            for i in s:
                f = Frame(**frames[i])
                pm = re.match(r'^process (\d+):"(.*)"$', f.name)
                if not pm:
                    break
                assert f.file == "" and f.line == 0 and f.col is None, f
                chain.append(int(pm.group(1)))
            assert chain and chain[0] == p.pid and chain[-1] == pid, \
                (prof["name"], chain)
    assert len(pids - {p.pid}) >= 3, pids
