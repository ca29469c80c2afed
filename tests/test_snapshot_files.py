"""Snapshot files made by pyspy-capture, checked with other tools: a
decompressed snapshot is a core file that gdb and eu-stack read, kernel
cores (plain, zstd, on stdin) ingest into snapshots of the same shape, and
broken inputs give one line and exit status 1."""
import glob
import os
import pathlib
import re
import resource
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import find_tool, ready_process

PY = "/usr/bin/python3"
PY_EXE = os.path.realpath(PY)

# Three sleeping threads and a main thread blocked in a read: every thread
# sits in a syscall, so its rip stays put while we look.
SLEEPER = r"""
import os, sys, threading, time
def idle():
    time.sleep(3600)
for i in range(3):
    threading.Thread(target=idle, name=f"idle-{i}", daemon=True).start()
time.sleep(0.2)
print("ready", flush=True)
if len(sys.argv) > 1 and sys.argv[1] == "abort":
    os.abort()
sys.stdin.read()
"""


def need(tool):
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed")


def run(args, **kw):
    kw.setdefault("timeout", 120)
    return subprocess.run([str(a) for a in args], capture_output=True,
                          text=True, **kw)


def one_line_error(r):
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def gdb_threads(exe, core):
    """{lwp: rip} as gdb sees the core."""
    need("gdb")
    r = run(["gdb", "-batch", "-nx", "-ex", "set pagination off",
             "-ex", "thread apply all info registers rip", exe, core])
    out = r.stdout + r.stderr
    threads = {}
    lwp = None
    for line in out.splitlines():
        m = re.search(r"^Thread \d+ \(.*?LWP (\d+)\)", line)
        if m:
            lwp = int(m.group(1))
            continue
        m = re.match(r"rip\s+(0x[0-9a-f]+)", line)
        if m and lwp is not None:
            threads[lwp] = int(m.group(1), 16)
            lwp = None
    return threads, out


def eu_stack(exe, core):
    need("eu-stack")
    r = run(["eu-stack", f"--core={core}", "-e", exe])
    return r.stdout + r.stderr


def decompress(src, dst):
    need("zstd")
    r = run(["zstd", "-q", "-d", "-f", src, "-o", dst])
    assert r.returncode == 0, r.stderr


def pyspy_modules(core_path):
    """{path: (load_bias, {symbol: value})} from the PYSPY module notes of
    an uncompressed snapshot (layout: capture/snapshot/format.h)."""
    data = open(core_path, "rb").read()
    phoff, = struct.unpack_from("<Q", data, 32)
    phnum, = struct.unpack_from("<H", data, 56)
    mods = {}
    for i in range(phnum):
        p_type, _, p_off, _, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + 56 * i)
        if p_type != 4:  # PT_NOTE
            continue
        off, end = p_off, p_off + p_filesz
        while off + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", data, off)
            name = data[off + 12:off + 12 + namesz].rstrip(b"\0")
            desc = off + 12 + (namesz + 3) // 4 * 4
            if name == b"PYSPY" and ntype == 4:
                mods.update([parse_module(data, desc)])
            off = desc + (descsz + 3) // 4 * 4
    return mods


def parse_module(data, at):
    def s(at):
        n, = struct.unpack_from("<I", data, at)
        return data[at + 4:at + 4 + n].decode(), at + 4 + n
    path, at = s(at)
    bias, _start, _end = struct.unpack_from("<QQQ", data, at)
    at += 24 + 1 + 20
    nsyms, = struct.unpack_from("<I", data, at)
    at += 4
    syms = {}
    for _ in range(nsyms):
        value, _size, _type = struct.unpack_from("<QQB", data, at)
        name, at = s(at + 17)
        syms[name] = value
    return path, (bias, syms)


def gdb_address(exe, core, symbol):
    r = run(["gdb", "-batch", "-nx", "-ex", f"p/x &{symbol}", exe, core])
    m = re.search(r"= (0x[0-9a-f]+)", r.stdout)
    return int(m.group(1), 16) if m else None


@pytest.fixture
def capture():
    return find_tool("pyspy-capture")


@pytest.fixture
def sleeper():
    with ready_process([PY, "-c", SLEEPER], stdin=subprocess.PIPE) as p:
        yield p


def blocked_pcs(pid):
    """{tid: pc} from /proc/PID/task/TID/syscall for threads in a syscall."""
    pcs = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/syscall") as f:
                fields = f.read().split()
        except OSError:
            continue
        if len(fields) == 9:
            pcs[int(tid)] = int(fields[8], 16)
    return pcs


def test_live_snapshot_reads_in_gdb_and_eu_stack(capture, sleeper, tmp_path):
    pid = sleeper.pid
    out = tmp_path / "live.core.zst"
    r = run([capture, "--pid", pid, "-o", out])
    if r.returncode != 0 and "not implemented" in r.stderr:
        pytest.skip("pyspy-capture cannot capture live processes yet")
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    pcs = blocked_pcs(pid)
    core = tmp_path / "live.core"
    decompress(out, core)
    threads, gdb_out = gdb_threads(PY_EXE, core)
    assert sorted(threads) == tids, gdb_out
    for tid, pc in pcs.items():
        assert threads[tid] == pc, (tid, hex(threads[tid]), hex(pc))
    stacks = eu_stack(PY_EXE, core)
    for tid in tids:
        assert f"TID {tid}:" in stacks, stacks
    # every thread unwinds past its syscall wrapper into the interpreter
    assert stacks.count("#1 ") >= len(tids), stacks
    assert "_PyEval_EvalFrameDefault" in stacks or "PyEval" in stacks, stacks


def kernel_core(tmp_path, python=PY):
    """Crashes python with os.abort() and returns the kernel's core."""
    with open("/proc/sys/kernel/core_pattern") as f:
        pattern = f.read().strip()
    restore = None
    crash_dir = tmp_path / "crash"
    crash_dir.mkdir()
    if pattern.startswith("|") or pattern.startswith("/"):
        # Only a plain relative pattern lands in the working directory;
        # otherwise point the kernel at our folder for this one crash.
        if not os.access("/proc/sys/kernel/core_pattern", os.W_OK):
            pytest.skip(f"core_pattern is {pattern!r} and not writable")
        restore = pattern
        with open("/proc/sys/kernel/core_pattern", "w") as f:
            f.write(str(crash_dir / "core.%p"))
    try:
        def unlimited():
            resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,
                                                      resource.RLIM_INFINITY))
        p = subprocess.run([python, "-c", SLEEPER, "abort"], cwd=crash_dir,
                           preexec_fn=unlimited, capture_output=True,
                           timeout=60)
        assert p.returncode == -6, p
        cores = []
        for _ in range(100):  # the kernel may still be writing it
            cores = glob.glob(str(crash_dir / "core*"))
            if cores:
                break
            time.sleep(0.1)
    finally:
        if restore is not None:
            with open("/proc/sys/kernel/core_pattern", "w") as f:
                f.write(restore)
    if not cores:
        pytest.skip(f"no core was written (core_pattern {pattern!r})")
    return crash_dir / os.path.basename(cores[0])


@pytest.fixture(scope="module")
def kcore(tmp_path_factory):
    return kernel_core(tmp_path_factory.mktemp("kcore"))


def check_ingested(capture, kcore, snapshot, tmp_path):
    assert stat.S_IMODE(snapshot.stat().st_mode) == 0o600
    assert snapshot.stat().st_size < kcore.stat().st_size
    core = tmp_path / (snapshot.name + ".core")
    decompress(snapshot, core)
    want, _ = gdb_threads(PY_EXE, kcore)
    got, out = gdb_threads(PY_EXE, core)
    assert len(want) == 4, out
    assert got == want, out
    stacks = eu_stack(PY_EXE, core)
    assert "abort" in stacks and "raise" in stacks, stacks
    for tid in want:
        assert f"TID {tid}:" in stacks
    # self-contained: the interpreter's symbols travel in the snapshot and
    # resolve where gdb (reading this host's files) puts them
    mods = pyspy_modules(core)
    runtime = [bias + syms["_PyRuntime"] for bias, syms in mods.values()
               if "_PyRuntime" in syms]
    assert runtime == [gdb_address(PY_EXE, core, "_PyRuntime")], mods.keys()


def test_ingest_kernel_core(capture, kcore, tmp_path):
    out = tmp_path / "k.core.zst"
    r = run([capture, "--core", kcore, "-o", out])
    assert r.returncode == 0, r.stderr
    check_ingested(capture, kcore, out, tmp_path)


def test_ingest_zstd_compressed_kernel_core(capture, kcore, tmp_path):
    need("zstd")
    z = tmp_path / "core.zst"
    assert run(["zstd", "-q", kcore, "-o", z]).returncode == 0
    out = tmp_path / "z.core.zst"
    r = run([capture, "--core", z, "-o", out])
    assert r.returncode == 0, r.stderr
    check_ingested(capture, kcore, out, tmp_path)


def test_ingest_from_stdin_pipe(capture, kcore, tmp_path):
    out = tmp_path / "s.core.zst"
    # a pipe, as behind kernel.core_pattern = |pyspy-capture --core - ...
    with open(kcore, "rb") as f:
        cat = subprocess.Popen(["cat"], stdin=f, stdout=subprocess.PIPE)
        r = subprocess.run([str(capture), "--core", "-", "-o", str(out)],
                           stdin=cat.stdout, capture_output=True, text=True,
                           timeout=120)
        cat.stdout.close()
        cat.wait()
    assert r.returncode == 0, r.stderr
    check_ingested(capture, kcore, out, tmp_path)


def test_snapshot_of_snapshot_is_the_same(capture, kcore, tmp_path):
    a = tmp_path / "a.core.zst"
    b = tmp_path / "b.core.zst"
    assert run([capture, "--core", kcore, "-o", a]).returncode == 0
    r = run([capture, "--core", a, "-o", b])
    assert r.returncode == 0, r.stderr
    da, db = tmp_path / "a.core", tmp_path / "b.core"
    decompress(a, da)
    decompress(b, db)
    assert da.read_bytes() == db.read_bytes()


def test_not_a_core(capture, tmp_path):
    t = tmp_path / "notes.txt"
    t.write_text("just some text\n")
    line = one_line_error(run([capture, "--core", t, "-o",
                               tmp_path / "o.zst"]))
    assert f"{t} is not a core file or snapshot" in line
    assert not (tmp_path / "o.zst").exists()


def test_truncated_and_corrupted_snapshots(capture, kcore, tmp_path):
    good = tmp_path / "good.core.zst"
    assert run([capture, "--core", kcore, "-o", good]).returncode == 0
    data = good.read_bytes()

    cut = tmp_path / "cut.core.zst"
    cut.write_bytes(data[: len(data) * 2 // 3])
    line = one_line_error(run([capture, "--core", cut, "-o",
                               tmp_path / "o1.zst"]))
    assert "cut.core.zst is truncated" in line

    bad = tmp_path / "bad.core.zst"
    mid = len(data) // 2
    bad.write_bytes(data[:mid] + bytes(b ^ 0xA5 for b in data[mid:mid + 64])
                    + data[mid + 64:])
    line = one_line_error(run([capture, "--core", bad, "-o",
                               tmp_path / "o2.zst"]))
    assert "bad.core.zst is corrupted" in line
    leftovers = [p for p in os.listdir(tmp_path) if p.startswith(".o")]
    assert leftovers == []
    assert not (tmp_path / "o1.zst").exists()
    assert not (tmp_path / "o2.zst").exists()


def test_core_pattern_pipe(capture, tmp_path, request):
    """kernel.core_pattern = |pyspy-capture --core - -o DIR/%e-%p.core.zst:
    the kernel pipes a crashing python3's core straight into a snapshot.
    The pattern is set for this one crash and restored right after."""
    cp = "/proc/sys/kernel/core_pattern"
    if not os.access(cp, os.W_OK):
        pytest.skip("core_pattern is not writable here (needs root)")
    # The kernel cuts core_pattern at 127 bytes, so the pattern uses a short
    # directory and a short link to the tool rather than pytest's deep paths.
    short = pathlib.Path(tempfile.mkdtemp(prefix="pyc", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(short, ignore_errors=True))
    tool = short / "cap"
    tool.symlink_to(pathlib.Path(capture).resolve())
    out_dir = short / "o"
    out_dir.mkdir()
    pattern = f"|{tool} --core - -o {out_dir}/%e-%p.core.zst"
    assert len(pattern) < 128, pattern
    with open(cp) as f:
        old = f.read().strip()
    try:
        with open(cp, "w") as f:
            f.write(pattern)
    except OSError as e:
        pytest.skip(f"cannot set core_pattern here: {e}")
    try:
        def unlimited():
            resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,
                                                      resource.RLIM_INFINITY))
        p = subprocess.run([PY, "-c", SLEEPER, "abort"], cwd=tmp_path,
                           preexec_fn=unlimited, capture_output=True,
                           timeout=60)
    finally:
        with open(cp, "w") as f:
            f.write(old)
    assert p.returncode == -6
    # The helper renames its file into place when complete, so the file
    # appearing means it is whole.
    snaps = []
    for _ in range(600):
        snaps = list(out_dir.glob("python3-*.core.zst"))
        if snaps:
            break
        time.sleep(0.1)
    assert len(snaps) == 1, os.listdir(out_dir)
    snap = snaps[0]
    assert stat.S_IMODE(snap.stat().st_mode) == 0o600
    core = tmp_path / "piped.core"
    decompress(snap, core)
    threads, out = gdb_threads(PY_EXE, core)
    assert len(threads) == 4, out
    pid = int(re.search(r"python3-(\d+)\.core\.zst", snap.name).group(1))
    assert pid in threads, out  # the main thread's tid is the pid
    stacks = eu_stack(PY_EXE, core)
    assert "abort" in stacks, stacks


PYENV_311 = os.path.expanduser("~/.pyenv/versions/3.11.7/bin/python3.11")


def test_ingested_kernel_core_analyzes_without_the_files(capture, tmp_path):
    """A kernel core leaves out the file pages a process never wrote
    (libpython's text and rodata); the core reader serves them from this
    host's files when their build-ids match, so the ingested snapshot
    carries them and dumps the same with every interpreter file hidden."""
    if not os.path.exists(PYENV_311):
        pytest.skip(f"{PYENV_311} (an --enable-shared build) is not here")
    pyspy = find_tool("pyspy")
    need("unshare")
    kcore_path = kernel_core(tmp_path, PYENV_311)
    snap = tmp_path / "shared.core.zst"
    r = run([capture, "--core", kcore_path, "-o", snap])
    assert r.returncode == 0, r.stderr
    plain = run([pyspy, "dump", "--core", kcore_path])
    assert plain.returncode == 0, plain.stderr
    assert "idle (<string>:4)" in plain.stdout, plain.stdout
    pyenv_root = os.path.dirname(os.path.dirname(os.path.dirname(PYENV_311)))
    script = f"mount -t tmpfs none {pyenv_root} && exec \"$@\""
    hidden = run(["unshare", "--mount", "--propagation", "private", "sh",
                  "-c", script, "sh", pyspy, "dump", "--core", snap])
    if hidden.returncode != 0 and "mount" in hidden.stderr:
        pytest.skip(f"cannot hide {pyenv_root}: {hidden.stderr.strip()}")
    assert hidden.returncode == 0, hidden.stderr
    assert hidden.stdout.count("idle (<string>:4)") == 3, hidden.stdout
    assert hidden.stdout == plain.stdout
