"""pyspy-capture on live processes: a target is never left stopped,
whatever happens to the tool (SIGKILL, SIGINT, errors), and what it writes
is a core that gdb and eu-stack read with every thread."""
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest

from conftest import find_tool

PY = "/usr/bin/python3"

BUSY = r"""
import sys, threading, time
blob = [str(i) * 3 for i in range(int(sys.argv[1]))]
def spin():
    while True:
        sum(range(2000))
def churn():
    # threads come and go, so some are born while the tool attaches
    while True:
        t = threading.Thread(target=time.sleep, args=(0.002,))
        t.start()
        t.join()
for _ in range(3):
    threading.Thread(target=spin, daemon=True).start()
threading.Thread(target=churn, daemon=True).start()
for _ in range(2):
    threading.Thread(target=time.sleep, args=(1000,), daemon=True).start()
print("ready", flush=True)
time.sleep(1000)
"""


@pytest.fixture(scope="module")
def capture():
    return find_tool("pyspy-capture")


def start_busy(objects=20000):
    p = subprocess.Popen([PY, "-c", BUSY, str(objects)],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


@pytest.fixture
def busy():
    p = start_busy()
    yield p
    p.kill()
    p.wait()


def states(pid):
    """{tid: state letter} of every thread."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                s = f.read()
        except OSError:
            continue  # exited meanwhile
        out[int(tid)] = s[s.rindex(")") + 2]
    return out


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def stopped_threads(pid):
    return {t: s for t, s in states(pid).items() if s in "tT"}


def run(*args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True,
                          text=True, timeout=120, **kw)


def one_error_line(r):
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("Error: "), r.stderr
    return lines[0]


def test_never_left_stopped_when_killed(capture, tmp_path):
    """50 captures killed with SIGKILL or SIGINT at varied points; half of
    them exactly while the target is stopped."""
    target = start_busy(200000)
    try:
        in_stop = 0
        for i in range(50):
            out = tmp_path / f"k{i}.core.zst"
            sig = signal.SIGKILL if i % 2 == 0 else signal.SIGINT
            c = subprocess.Popen([str(capture), "-p", str(target.pid), "-o",
                                  str(out), "--hideprogress"],
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            if i % 4 < 2:
                # wait for the stop itself (or for the tool to end)
                while c.poll() is None and not stopped_threads(target.pid):
                    pass
                if c.poll() is None:
                    in_stop += 1
            else:
                time.sleep((i % 10) * 0.05)
            c.send_signal(sig)
            c.wait()
            left = stopped_threads(target.pid)
            assert not left, (i, sig, left)
            if sig == signal.SIGINT:
                # (after SIGKILL nothing can remove it)
                partial = [p.name for p in tmp_path.iterdir()
                           if p.name.startswith(f".{out.name}.")]
                assert partial == [], partial
        assert target.poll() is None, "the target died"
        # the window is wide (a 200k-object copy); most waits hit it
        assert in_stop > 0
        # and it really runs: its spinning threads still get CPU time
        before = cpu_ticks(target.pid)
        deadline = time.monotonic() + 30
        while cpu_ticks(target.pid) == before:
            assert time.monotonic() < deadline, "the target makes no progress"
            time.sleep(0.05)
    finally:
        target.kill()
        target.wait()


def test_snapshot_in_gdb_and_eu_stack(capture, busy, tmp_path):
    gdb, eu = shutil.which("gdb"), shutil.which("eu-stack")
    if not gdb or not eu or not shutil.which("zstd"):
        pytest.skip("gdb, eu-stack and zstd are needed")
    # the churn thread makes the count move: take it from the file itself
    # and from /proc while stopped, via --already-locked
    os.kill(busy.pid, signal.SIGSTOP)
    try:
        while len(stopped_threads(busy.pid)) < len(states(busy.pid)):
            time.sleep(0.01)
        tids = sorted(states(busy.pid))
        out = tmp_path / "s.core.zst"
        r = run(capture, "-p", busy.pid, "--already-locked", "-o", out)
        assert r.returncode == 0, r.stderr
    finally:
        os.kill(busy.pid, signal.SIGCONT)
    core = tmp_path / "s.core"
    subprocess.run(["zstd", "-q", "-d", str(out), "-o", str(core)], check=True)
    g = run(gdb, "-batch", "-ex", "info threads", PY, core)
    lwps = sorted(int(x) for x in re.findall(r"\(LWP (\d+)\)\)? ", g.stdout))
    assert sorted(set(lwps)) == tids, g.stdout + g.stderr
    e = run(eu, "--core", core, "-e", PY)
    for tid in tids:
        assert f"TID {tid}:" in e.stdout, e.stdout
    assert "_PyEval_EvalFrameDefault" in e.stdout, e.stdout


def test_lock_mode_snapshot_matches_task_list(capture, tmp_path):
    """Without churn: the threads in the file are the threads in /proc."""
    if not shutil.which("gdb") or not shutil.which("zstd"):
        pytest.skip("gdb and zstd are needed")
    script = ("import threading, time\n"
              "def spin():\n"
              "    while True: sum(range(1000))\n"
              "for _ in range(3): threading.Thread(target=spin,"
              " daemon=True).start()\n"
              "print('ready', flush=True)\n"
              "time.sleep(1000)\n")
    p = subprocess.Popen([PY, "-c", script], stdout=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        out = tmp_path / "l.core.zst"
        r = run(capture, "-p", p.pid, "-o", out)
        assert r.returncode == 0, r.stderr
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        # pid, threads, memory, file size, ratio, pause
        m = re.match(rf"pid {p.pid}: (\d+) threads, .* of memory -> .* "
                     r"\((\d+\.\d)x smaller\), paused (\d+\.\d) ms", r.stdout)
        assert m, r.stdout
        assert int(m.group(1)) == 4
        assert not stopped_threads(p.pid)
        core = tmp_path / "l.core"
        subprocess.run(["zstd", "-q", "-d", str(out), "-o", str(core)],
                       check=True)
        g = run("gdb", "-batch", "-ex", "info threads", PY, core)
        lwps = set(int(x) for x in re.findall(r"LWP (\d+)", g.stdout))
        assert lwps == set(states(p.pid)), g.stdout
    finally:
        p.kill()
        p.wait()


def test_already_locked_leaves_it_stopped(capture, busy, tmp_path):
    os.kill(busy.pid, signal.SIGSTOP)
    try:
        while len(stopped_threads(busy.pid)) < len(states(busy.pid)):
            time.sleep(0.01)
        out = tmp_path / "a.core.zst"
        r = run(capture, "-p", busy.pid, "--already-locked", "-o", out)
        assert r.returncode == 0, r.stderr
        assert out.stat().st_size > 0
        time.sleep(0.2)  # give a wrongly resumed thread time to show
        st = states(busy.pid)
        assert all(s == "T" for s in st.values()), st
    finally:
        os.kill(busy.pid, signal.SIGCONT)


def test_lock_mode_keeps_a_sigstopped_process_stopped(capture, busy,
                                                      tmp_path):
    os.kill(busy.pid, signal.SIGSTOP)
    try:
        while len(stopped_threads(busy.pid)) < len(states(busy.pid)):
            time.sleep(0.01)
        r = run(capture, "-p", busy.pid, "-o", tmp_path / "b.core.zst")
        assert r.returncode == 0, r.stderr
        time.sleep(0.2)
        st = states(busy.pid)
        assert all(s == "T" for s in st.values()), st
    finally:
        os.kill(busy.pid, signal.SIGCONT)


def test_nonexistent_pid(capture, tmp_path):
    p = subprocess.Popen(["true"])
    p.wait()  # a pid that existed and is gone
    r = run(capture, "-p", p.pid, cwd=tmp_path)
    line = one_error_line(r)
    assert str(p.pid) in line and "not found" in line
    assert list(tmp_path.iterdir()) == []


def test_unprivileged_user_gets_owner_advice(capture, busy, tmp_path):
    """Root may trace anything, so the "may not trace" case is a
    non-root user against root's process. (A process in another pid
    namespace is traceable by root in the parent namespace, so unshare
    does not make one.)"""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to drop privileges")
    d = tmp_path / "nobody"
    d.mkdir()
    os.chmod(d, 0o777)
    os.chmod(tmp_path, 0o755)
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534",
                        "--clear-groups", str(capture), "-p", str(busy.pid),
                        "-o", str(d / "x.core.zst")],
                       capture_output=True, text=True, timeout=60)
    line = one_error_line(r)
    # The advice names what stops this trace: the owner, not Yama (and
    # Yama not at all on a kernel without it).
    assert "sudo" in line and "another user" in line, line
    assert "uid 65534" in line, line
    if not os.path.exists("/proc/sys/kernel/yama"):
        assert "ptrace_scope" not in line and "Yama" not in line, line
    assert list(d.iterdir()) == []
    assert not stopped_threads(busy.pid)


def test_target_traced_by_someone_else(capture, tmp_path):
    """A debugger already attached: the tool says who, and leaves both."""
    p = subprocess.Popen([PY, "-c", "import time; print('ready', flush=True);"
                          " time.sleep(1000)"], stdout=subprocess.PIPE,
                         text=True)
    tracer = None
    try:
        assert p.stdout.readline().strip() == "ready"
        # a tracer that seizes the process and then just waits
        tracer = subprocess.Popen(
            [sys.executable, "-c",
             "import ctypes, sys, time\n"
             "libc = ctypes.CDLL(None, use_errno=True)\n"
             "PTRACE_SEIZE = 0x4206\n"
             "assert libc.ptrace(PTRACE_SEIZE, int(sys.argv[1]), 0, 0) == 0\n"
             "print('ok', flush=True)\n"
             "time.sleep(1000)\n", str(p.pid)],
            stdout=subprocess.PIPE, text=True)
        assert tracer.stdout.readline().strip() == "ok"
        r = run(capture, "-p", p.pid, "-o", tmp_path / "t.core.zst")
        line = one_error_line(r)
        assert f"traced by process {tracer.pid}" in line, line
        assert list(tmp_path.iterdir()) == []
        assert not stopped_threads(p.pid)
    finally:
        if tracer:
            tracer.kill()
            tracer.wait()
        p.kill()
        p.wait()


def mount_tmpfs(path, opts):
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs",
                        str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")


@pytest.mark.parametrize("opts, why", [("ro,size=64k", "Read-only"),
                                       ("size=64k", "No space")])
def test_unwritable_or_full_output(capture, busy, tmp_path, opts, why):
    d = tmp_path / "mnt"
    d.mkdir()
    mount_tmpfs(d, opts)
    try:
        r = run(capture, "-p", busy.pid, "-o", d / "x.core.zst",
                "--hideprogress")
        line = one_error_line(r)
        assert why.lower() in line.lower(), line
        assert list(d.iterdir()) == [], "no partial file"
        assert busy.poll() is None
        assert not stopped_threads(busy.pid)
    finally:
        subprocess.run(["umount", str(d)], check=True)


def test_target_killed_during_capture(capture, tmp_path):
    """The target dies while stopped: a clear error, no file."""
    hit = False
    for attempt in range(3):
        target = start_busy(300000)
        out = tmp_path / f"d{attempt}.core.zst"
        c = subprocess.Popen([str(capture), "-p", str(target.pid), "-o",
                              str(out), "--hideprogress"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        while c.poll() is None and not stopped_threads(target.pid):
            pass
        target.kill()
        target.wait()
        so, se = c.communicate(timeout=120)
        if c.returncode == 0:
            continue  # the copy was already done: a valid snapshot
        lines = se.strip().splitlines()
        assert c.returncode == 1 and len(lines) == 1, se
        assert lines[0].startswith("Error: ") and str(target.pid) in lines[0]
        assert "exited" in lines[0], lines[0]
        assert not out.exists()
        hit = True
        break
    assert hit, "the target was never killed inside the capture"


def test_memory_budget_streams_while_stopped(capture, busy, tmp_path):
    out = tmp_path / "m.core.zst"
    r = run(capture, "-p", busy.pid, "-o", out, "--memory-budget", "1M")
    assert r.returncode == 0, r.stderr
    assert "memory budget" in r.stderr
    assert "(written while stopped)" in r.stdout
    assert out.stat().st_size > 0
    assert not stopped_threads(busy.pid)


def test_default_name_in_cwd(capture, busy, tmp_path):
    r = run(capture, "-p", busy.pid, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    names = [p.name for p in tmp_path.iterdir()]
    assert len(names) == 1, names
    assert re.fullmatch(rf"pyspy-{busy.pid}-\d{{8}}T\d{{6}}Z\.core\.zst",
                        names[0]), names
    assert stat.S_IMODE((tmp_path / names[0]).stat().st_mode) == 0o600


def test_subprocesses_one_file_each(capture, tmp_path):
    script = ("import subprocess, sys, time\n"
              "kids = [subprocess.Popen([sys.executable, '-c',"
              " 'import time; time.sleep(1000)']) for _ in range(2)]\n"
              "print(' '.join(str(k.pid) for k in kids), flush=True)\n"
              "time.sleep(1000)\n")
    # Its own process group, so the children are killed through the pid
    # Popen gave (p is not reaped before, so the group id is still ours).
    p = subprocess.Popen([PY, "-c", script], stdout=subprocess.PIPE,
                         text=True, start_new_session=True)
    try:
        kids = [int(x) for x in p.stdout.readline().split()]
        r = run(capture, "-p", p.pid, "--subprocesses", "-o",
                tmp_path / "tree.core.zst")
        assert r.returncode == 0, r.stderr
        names = sorted(x.name for x in tmp_path.iterdir())
        assert names == sorted(f"tree-{pid}.core.zst"
                               for pid in [p.pid] + kids), names
        assert len(r.stdout.strip().splitlines()) == 3
        for pid in [p.pid] + kids:
            assert not stopped_threads(pid)
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def test_series_into_directory(capture, busy, tmp_path):
    d = tmp_path / "series"
    r = run(capture, "-p", busy.pid, "--rate", "4", "--duration", "1", "-o",
            d, "--hideprogress")
    assert r.returncode == 0, r.stderr
    names = sorted(x.name for x in d.iterdir())
    # one per tick unless a capture outlasted its tick (then skipped)
    assert 1 <= len(names) <= 4, names
    for n in names:
        assert re.fullmatch(rf"pyspy-{busy.pid}-\d{{8}}T\d{{6}}Z-\d{{6}}"
                            r"\.core\.zst", n), n
    assert len(r.stdout.strip().splitlines()) == len(names)
    assert not stopped_threads(busy.pid)


def test_nonblocking_never_stops_it(capture, busy, tmp_path):
    out = tmp_path / "n.core.zst"
    c = subprocess.Popen([str(capture), "-p", str(busy.pid), "--nonblocking",
                          "-o", str(out), "--hideprogress"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    seen = set()
    while c.poll() is None:
        seen.update(stopped_threads(busy.pid).values())
    so, se = c.communicate()
    assert c.returncode == 0, se
    assert seen == set(), seen
    assert "paused 0.0 ms" in so, so
    assert out.stat().st_size > 0
