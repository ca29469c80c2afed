"""Offline record over a batch of snapshots (issue 15 item 3): a set of
N snapshot files of a real program, given as a directory or as a list of
files, records to the same collapsed stacks with -j1 and -j2, and those
are the sum of recording each file alone; no progress text reaches a
stderr that is not a terminal, while a terminal gets the bar; a damaged
file among them is named, fails the run, and with --allow-damaged the
rest is still recorded."""
import os
import select
import subprocess
import time

import pytest

from conftest import SERIES_PROGRAM, collapsed, find_tool

SYSTEM_PYTHON = os.environ.get("PYSPY_TEST_PYTHON", "/usr/bin/python3")

N = 200  # inputs of the batch
DISTINCT = 4  # real snapshots among them, each named N / DISTINCT times
# Anonymous private memory only (coredump_filter bit 0): the interpreter's
# file-backed pages are read from its file, so the snapshots are small
# and quick to take and read.
FILTER = "1"
SKIPPABLE_MAGIC = 0x184D2A5E


def run(*cmd, timeout=600, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True,
                          text=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """(directory of N inputs, the distinct snapshots, how many times each
    is named). The inputs are hard links to DISTINCT snapshots of one
    process: reading a link costs what reading a copy does."""
    tmp = tmp_path_factory.mktemp("batch")
    prog = tmp / "prog.py"
    prog.write_text(SERIES_PROGRAM)
    proc = subprocess.Popen([SYSTEM_PYTHON, str(prog)],
                            stdout=subprocess.PIPE, cwd=str(tmp))
    snaps = []
    try:
        assert proc.stdout.readline().strip() == b"ready"
        for i in range(DISTINCT):
            out = tmp / f"snap-{i}.core.zst"
            res = run(find_tool("pyspy-capture"), "--pid", proc.pid,
                      "--filter", FILTER, "-o", out)
            assert res.returncode == 0, res.stderr
            snaps.append(out)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    inputs = tmp / "inputs"
    inputs.mkdir()
    uses = {s: 0 for s in snaps}
    for i in range(N):
        s = snaps[i % DISTINCT]
        os.link(s, inputs / f"s-{i:04d}.core.zst")
        uses[s] += 1
    return inputs, snaps, uses


def record(tmp_path, name, *args):
    out = tmp_path / name
    res = run(find_tool("pyspy"), "record", "-f", "raw", "-o", out, *args)
    return res, out


def no_progress_text(stderr):
    assert "\r" not in stderr and "%)" not in stderr, stderr[:300]


def test_batch_jobs_agree_and_add_up(batch, tmp_path):
    inputs, snaps, uses = batch
    files = sorted(str(p) for p in inputs.iterdir())
    assert len(files) == N
    want = {}
    for s in snaps:
        res, out = record(tmp_path, s.name + ".txt", "-j", "1", s)
        assert res.returncode == 0, res.stderr
        for stack, count in collapsed(out).items():
            want[stack] = want.get(stack, 0) + count * uses[s]
    assert sum(want.values()) >= N  # each snapshot holds a sample at least

    runs = {"j1-dir": ["-j", "1", inputs],
            "j2-dir": ["-j", "2", inputs],
            "j2-files": ["-j", "2", *files]}
    texts = {}
    for name, args in runs.items():
        res, out = record(tmp_path, name + ".txt", *args)
        assert res.returncode == 0, (name, res.stderr)
        assert f"Samples: {sum(want.values())} Errors: 0" in res.stdout, (
            name, res.stdout)
        # stderr is a pipe here: no progress bar, no carriage returns
        no_progress_text(res.stderr)
        texts[name] = out.read_text()
        assert collapsed(out) == want, name
    assert texts["j1-dir"] == texts["j2-dir"] == texts["j2-files"]


def test_progress_bar_on_a_terminal_only(batch, tmp_path):
    inputs, _, _ = batch
    master, slave = os.openpty()
    out = tmp_path / "tty.txt"
    proc = subprocess.Popen([str(find_tool("pyspy")), "record", "-j", "2",
                             "-f", "raw", "-o", str(out), str(inputs)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=slave)
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 1.0)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the last writer closed it
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        os.close(master)
    assert rc == 0, seen[-500:]
    text = seen.decode(errors="replace")
    # the last update draws the whole bar, then the line is cleared
    assert f"{N}/{N} (100%)" in text, text[-500:]
    assert "[" + "=" * 24 + "]" in text, text[-500:]
    assert text.endswith("\r\x1b[K"), text[-100:]
    # --hideprogress keeps a terminal clean too
    res, _ = record(tmp_path, "hidden.txt", "--hideprogress", inputs)
    assert res.returncode == 0, res.stderr
    no_progress_text(res.stderr)


def first_frame_flipped(data):
    """data with one bit flipped in the middle of its first zstd frame,
    which holds the ELF header every open reads."""
    n = int.from_bytes(data[-9:-5], "little")
    table = len(data) - 9 - 8 * n
    assert int.from_bytes(data[table - 8:table - 4], "little") == \
        SKIPPABLE_MAGIC
    csize = int.from_bytes(data[table:table + 4], "little")
    d = bytearray(data)
    d[csize // 2] ^= 0x10
    return bytes(d)


def test_damaged_input_named(batch, tmp_path):
    inputs, snaps, uses = batch
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    names = sorted(inputs.iterdir())
    for p in names:
        os.link(p, mixed / p.name)
    bad = mixed / "s-0100x.core.zst"
    bad.write_bytes(first_frame_flipped(snaps[0].read_bytes()))

    res, out = record(tmp_path, "strict.txt", "-j", "2", mixed)
    assert res.returncode == 1, res.stderr
    assert str(bad) in res.stderr, res.stderr
    assert "corrupted" in res.stderr or "damaged" in res.stderr, res.stderr
    assert "--allow-damaged" in res.stderr, res.stderr
    assert not out.exists()

    # best effort: the rest of the batch is all there, the file named
    res, out = record(tmp_path, "lenient.txt", "-j", "2", "--allow-damaged",
                      mixed)
    assert res.returncode == 0, res.stderr
    assert str(bad) in res.stderr, res.stderr
    good, _ = record(tmp_path, "good.txt", "-j", "2", inputs)
    assert good.returncode == 0, good.stderr
    got, want = collapsed(out), collapsed(tmp_path / "good.txt")
    for stack, count in want.items():
        assert got.get(stack, 0) >= count, stack
