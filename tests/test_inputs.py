"""Inputs that are not plain files (issue 14, item 2): a FIFO never hangs
dump, record or pyspy-capture --core; a stream (a pipe as "-" or
/dev/stdin) is read as one; a stream that does not start as a core is
refused before anything is spooled; --max-size bounds what is; and every
refusal says what the input is (another class or architecture, not a core,
compressed otherwise, permission)."""
import os
import pathlib
import shutil
import struct
import subprocess
import threading
import time

import pytest

from conftest import REPO, find_tool

FIXTURE = REPO / "fixtures" / "3.11.7-shared" / "scenarios.core.zst"
DEADLINE = 120  # seconds: only to end a hang, never a measure of speed


@pytest.fixture(scope="module")
def pyspy():
    return find_tool("pyspy")


@pytest.fixture(scope="module")
def capture():
    return find_tool("pyspy-capture")


@pytest.fixture(scope="module")
def ref(pyspy):
    r = subprocess.run([str(pyspy), "dump", str(FIXTURE)],
                       capture_output=True, timeout=DEADLINE)
    assert r.returncode == 0, r.stderr
    return r.stdout


def finish(p, stdin_data=None):
    """Waits for p with a deadline; a hang is killed by its pid and
    fails the test."""
    try:
        out, err = p.communicate(stdin_data, timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        pytest.fail(f"{p.args} still running after {DEADLINE} s")
    return p.returncode, out, err


def start(args, **kw):
    return subprocess.Popen([str(a) for a in args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kw)


def one_error(rc, err):
    assert rc == 1, (rc, err)
    lines = err.decode().strip().splitlines()
    assert len(lines) >= 1 and lines[-1].startswith("Error: "), err
    return lines[-1]


@pytest.mark.parametrize("tool", ["dump", "record", "capture"])
def test_fifo_without_writer_does_not_hang(pyspy, capture, tool, tmp_path):
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    args = {"dump": [pyspy, "dump", fifo],
            "record": [pyspy, "record", "-f", "raw", "-o", tmp_path / "r.txt",
                       fifo],
            "capture": [capture, "--core", fifo, "-o", tmp_path / "o.zst"]}
    rc, out, err = finish(start(args[tool], stdin=subprocess.DEVNULL))
    one_error(rc, err)
    # record names each input it could not read on a line of its own
    assert f"{fifo} is a FIFO that nothing writes to" in err.decode(), err
    assert not (tmp_path / "r.txt").exists()
    assert not (tmp_path / "o.zst").exists()


def feed(path, data):
    """Writes data into the FIFO at path from a thread (opening it blocks
    until the reader is there)."""
    def write():
        with open(path, "wb") as f:
            f.write(data)
    t = threading.Thread(target=write, daemon=True)
    t.start()
    return t


def test_fifo_with_writer_is_read_as_a_stream(pyspy, capture, ref, tmp_path):
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    p = start([pyspy, "dump", fifo])
    t = feed(fifo, FIXTURE.read_bytes())
    rc, out, err = finish(p)
    t.join(DEADLINE)
    assert rc == 0, err
    assert out == ref

    snap = tmp_path / "s.core.zst"
    p = start([capture, "--core", fifo, "-o", snap])
    t = feed(fifo, FIXTURE.read_bytes())
    rc, out, err = finish(p)
    t.join(DEADLINE)
    assert rc == 0, err
    r = subprocess.run([str(pyspy), "dump", str(snap)], capture_output=True,
                       timeout=DEADLINE)
    assert r.returncode == 0 and r.stdout == ref


@pytest.mark.parametrize("name", ["/dev/stdin", "-"])
def test_pipe_on_stdin_dumps(pyspy, ref, name):
    """Before: 'cat snap | pyspy dump /dev/stdin' said 'is not a core file
    or snapshot'."""
    cat = subprocess.Popen(["cat", str(FIXTURE)], stdout=subprocess.PIPE)
    try:
        p = start([pyspy, "dump", name], stdin=cat.stdout)
        cat.stdout.close()
        rc, out, err = finish(p)
    finally:
        cat.wait(DEADLINE)
    assert rc == 0, err
    assert out == ref


def test_dev_zero_refused_without_spooling(capture, tmp_path):
    """Before: 1.3 GB spooled into /tmp after 4 s, still going at 30 s."""
    p = start([capture, "--core", "-", "-o", tmp_path / "o.zst"],
              stdin=open("/dev/zero", "rb"))
    line = one_error(*finish(p)[::2])
    assert "stdin is not a core file or snapshot" in line, line

    # through a pipe, counting what it took: its first bytes only
    p = start([capture, "--core", "-", "-o", tmp_path / "o.zst"],
              stdin=subprocess.PIPE)
    taken = 0
    chunk = bytes(1 << 16)
    try:
        while taken < (1 << 30):
            p.stdin.write(chunk)
            p.stdin.flush()
            taken += len(chunk)
    except BrokenPipeError:
        pass
    p.stdin.close()
    p.stdin = None
    rc, _, err = finish(p)
    one_error(rc, err)
    # the head it judged the stream by, and what the pipe buffers
    assert taken <= 4 << 20, taken
    assert not (tmp_path / "o.zst").exists()


def elf_core_header(bits, machine):
    ident = b"\x7fELF" + bytes([1 if bits == 32 else 2, 1, 1, 0]) + bytes(8)
    if bits == 32:
        rest = struct.pack("<HHIIIIIHHHHHH", 4, machine, 1, 0, 52, 0, 0, 52,
                           32, 0, 0, 0, 0)
    else:
        rest = struct.pack("<HHIQQQIHHHHHH", 4, machine, 1, 0, 64, 0, 0, 64,
                           56, 0, 0, 0, 0)
    return ident + rest + bytes(64)


def test_foreign_cores_are_named(pyspy, capture, tmp_path):
    """Before: 'is not a core file or snapshot' for all of these."""
    i386 = tmp_path / "i386.core"
    i386.write_bytes(elf_core_header(32, 3))
    arm = tmp_path / "arm.core"
    arm.write_bytes(elf_core_header(64, 183))
    for path, what in ((i386, "is a 32-bit i386 core"),
                       (arm, "is a 64-bit AArch64 core")):
        for args in ([pyspy, "dump", path],
                     [capture, "--core", path, "-o", tmp_path / "o.zst"]):
            rc, _, err = finish(start(args))
            line = one_error(rc, err)
            assert f"{path} {what}; pyspy reads x86_64 cores" in line, line
    rc, _, err = finish(start([capture, "--core", "-", "-o",
                               tmp_path / "o.zst"], stdin=subprocess.PIPE),
                        i386.read_bytes())
    assert "stdin is a 32-bit i386 core" in one_error(rc, err)
    assert not (tmp_path / "o.zst").exists()


def test_other_files_are_named(pyspy, tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    text = tmp_path / "notes.txt"
    text.write_text("just some text\n")
    cases = [(empty, "is empty"),
             (text, "is not a core file or snapshot"),
             (pathlib.Path(os.path.realpath("/bin/true")),
              "is a 64-bit x86_64 ELF shared object or executable, not a "
              "core file or snapshot"),
             (tmp_path, "is a directory, not a core file or snapshot")]
    if shutil.which("xz"):
        xz = tmp_path / "core.xz"
        xz.write_bytes(subprocess.run(["xz", "-c"], input=b"x" * 100,
                                      capture_output=True).stdout)
        cases.append((xz, "is xz-compressed; decompress it first (xz -d)"))
    for path, what in cases:
        rc, _, err = finish(start([pyspy, "dump", path]))
        line = one_error(rc, err)
        assert f"{path} {what}" in line, line


def test_max_size(capture, pyspy, ref, tmp_path):
    out = tmp_path / "o.zst"
    data = FIXTURE.read_bytes()
    rc, _, err = finish(start([capture, "--core", "-", "--max-size", "1M",
                               "-o", out], stdin=subprocess.PIPE), data)
    line = one_error(rc, err)
    assert "stdin holds more than the 1048576 bytes --max-size allows" in line
    assert not out.exists()
    rc, _, err = finish(start([capture, "--core", "-", "--max-size", "64M",
                               "-o", out], stdin=subprocess.PIPE), data)
    assert rc == 0, err
    r = subprocess.run([str(pyspy), "dump", str(out)], capture_output=True,
                       timeout=DEADLINE)
    assert r.returncode == 0 and r.stdout == ref
    # a file is not a stream: no limit applies
    rc, _, err = finish(start([capture, "--core", FIXTURE, "--max-size", "1M",
                               "-o", tmp_path / "f.zst"]))
    assert rc == 0, err
    rc, _, err = finish(start([capture, "-p", "1", "--max-size", "1M"]))
    assert rc == 2 and b"requires '--core <core>'" in err, err


def test_analyze_max_size(pyspy, ref, tmp_path):
    """dump and record spool a stream input too, with pyspy-capture's
    limit, default and message; a file has no limit."""
    data = FIXTURE.read_bytes()
    assert len(data) > 1 << 20
    for path, name in (("-", "stdin"), ("/dev/stdin", "/dev/stdin")):
        rc, out, err = finish(start([pyspy, "dump", path, "--max-size", "1M"],
                                    stdin=subprocess.PIPE), data)
        line = one_error(rc, err)
        assert line == f"Error: {name} holds more than the 1048576 bytes " \
            "--max-size allows", err
        assert out == b""
        rc, out, err = finish(start([pyspy, "dump", path, "--max-size",
                                     "64MiB"], stdin=subprocess.PIPE), data)
        assert rc == 0 and out == ref, err
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    raw = tmp_path / "r.txt"
    p = start([pyspy, "record", "--hideprogress", "-f", "raw", "-o", raw,
               "--max-size", "100K", fifo], stdin=subprocess.DEVNULL)

    def write():
        try:
            with open(fifo, "wb") as f:
                f.write(data)
        except BrokenPipeError:
            pass  # the reader gave up at its limit, as it should
    t = threading.Thread(target=write, daemon=True)
    t.start()
    rc, _, err = finish(p)
    t.join(DEADLINE)
    one_error(rc, err)
    assert f"{fifo} holds more than the 102400 bytes --max-size allows" in \
        err.decode(), err
    assert not raw.exists()
    r = subprocess.run([str(pyspy), "dump", "--max-size", "1K", str(FIXTURE)],
                       capture_output=True, timeout=DEADLINE)
    assert r.returncode == 0 and r.stdout == ref, r.stderr
    for bad, why in (("0", "at least 1 byte"), ("1Q", "optional K, M, G")):
        r = subprocess.run([str(pyspy), "dump", "--max-size", bad,
                            str(FIXTURE)], capture_output=True,
                           timeout=DEADLINE)
        assert r.returncode == 2 and why.encode() in r.stderr, r.stderr
    r = subprocess.run([str(pyspy), "dump", "-p", "1", "--max-size", "1M"],
                       capture_output=True, timeout=DEADLINE)
    assert r.returncode == 2 and b"not a live process" in r.stderr, r.stderr
    for cmd in ("dump", "record", "merge", "diff"):
        r = subprocess.run([str(pyspy), cmd, "--help"], capture_output=True,
                           text=True, timeout=DEADLINE)
        assert "--max-size <bytes>" in r.stdout and "[default: 64G]" in \
            r.stdout, cmd


def test_permission_names_the_owner(pyspy, tmp_path):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to drop privileges")
    target = subprocess.Popen(["/usr/bin/python3", "-c",
                               "import time; time.sleep(600)"])
    try:
        rc, _, err = finish(start(["setpriv", "--reuid=65534",
                                   "--regid=65534", "--clear-groups",
                                   pyspy, "dump", "--pid", target.pid]))
    finally:
        target.kill()
        target.wait()
    line = one_error(rc, err)
    assert f"permission denied to read the memory map of process " \
        f"{target.pid}: it belongs to another user (uid 0, pyspy runs as " \
        f"uid 65534)" in line, line
    if not os.path.exists("/proc/sys/kernel/yama"):
        assert "ptrace_scope" not in line and "Yama" not in line, line
