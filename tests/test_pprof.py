"""record -f pprof read back by the real client, Debian's `go tool pprof`:
the totals and the top function it reports are the ones our raw output
gives for the same samples, and each sample carries its thread's id and
name and the pid."""
import os
import re
import shutil
import subprocess
from collections import Counter

import pytest

from conftest import find_tool

SYSTEM_PYTHON = os.environ.get("PYSPY_TEST_PYTHON", "/usr/bin/python3")

# Two threads always in hot(), one always in napper(): with --idle every
# snapshot gives hot two samples and napper one, so the top function is
# never a tie.
PROGRAM = """\
import sys, threading, time
def hot():
    x = 0
    while True:
        x += 1
def napper():
    while True:
        time.sleep(10)
threading.Thread(target=hot, name="cruncher", daemon=True).start()
threading.Thread(target=napper, name="napper", daemon=True).start()
time.sleep(0.2)
sys.stdout.write("ready\\n"); sys.stdout.flush()
hot()
"""

GO = shutil.which("go")
pytestmark = pytest.mark.skipif(
    GO is None, reason="go (Debian's golang-go, tools/ensure-deps) is not "
    "installed: there is no pprof client to read the file with")


@pytest.fixture
def target(tmp_path):
    path = tmp_path / "prog.py"
    path.write_text(PROGRAM)
    proc = subprocess.Popen([SYSTEM_PYTHON, str(path)],
                            stdout=subprocess.PIPE, cwd=str(tmp_path))
    try:
        assert proc.stdout.readline().strip() == b"ready"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()


def go_pprof(tmp_path, *args):
    """go tool pprof offline: a private HOME and GOCACHE, no network."""
    home = tmp_path / "gohome"
    home.mkdir(exist_ok=True)
    env = dict(os.environ, HOME=str(home), GOCACHE=str(home / "cache"),
               GOPROXY="off", GOTOOLCHAIN="local", PPROF_TMPDIR=str(home))
    res = subprocess.run([GO, "tool", "pprof", *args], capture_output=True,
                         text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr
    return res.stdout


def parse_pprof_raw(text):
    """[(values, labels)] from -raw's Samples section."""
    samples = []
    lines = text.splitlines()
    i = lines.index("Samples:") + 2  # after the value-type line
    while i < len(lines) and lines[i].strip() and \
            not lines[i].startswith("Locations"):
        m = re.match(r"^\s+(\d+)\s+(\d+):", lines[i])
        assert m, lines[i]
        labels = {}
        i += 1
        while i < len(lines) and not re.match(r"^\s+\d+\s+\d+:", lines[i]) \
                and lines[i].startswith("      ") and \
                not lines[i].startswith("Locations"):
            for k, v in re.findall(r"(\w+):\[([^\]]*)\]", lines[i]):
                labels[k] = v
            i += 1
        samples.append(((int(m.group(1)), int(m.group(2))), labels))
    return samples


def parse_top(text):
    """(total, [(flat, function)]) from -top."""
    total = int(re.search(r"of (\d+)(?:ns)? total", text).group(1))
    rows = []
    body = text.split("flat%", 1)[1].splitlines()[1:]
    for line in body:
        parts = line.split()
        if len(parts) >= 6:
            rows.append((int(parts[0].rstrip("ns")), " ".join(parts[5:])))
    return total, rows


def raw_counts(path):
    total, leaves = 0, Counter()
    for line in path.read_text().splitlines():
        stack, count = line.rsplit(" ", 1)
        leaf = stack.split(";")[-1]
        leaves[leaf.split(" (")[0]] += int(count)
        total += int(count)
    return total, leaves


def run(*cmd):
    res = subprocess.run([str(c) for c in cmd], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr + res.stdout
    return res


def test_pprof_of_snapshots_matches_raw(target, tmp_path):
    # One set of snapshots recorded twice, to raw and to pprof: the same
    # samples in both files. Taken one by one: a --rate series skips the
    # snapshots a loaded machine makes late.
    snaps = []
    for i in range(4):
        snaps.append(tmp_path / f"snap{i}.core.zst")
        run(find_tool("pyspy-capture"), "--pid", target.pid, "-o", snaps[-1],
            "--hideprogress")
    raw, prof = tmp_path / "out.txt", tmp_path / "out.pb.gz"
    run(find_tool("pyspy"), "record", "--idle", "-f", "raw", "-o", raw,
        *snaps)
    res = run(find_tool("pyspy"), "record", "--idle", "-f", "pprof", "-o",
              prof, *snaps)
    assert "Wrote pprof profile to" in res.stdout
    assert prof.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    raw_total, leaves = raw_counts(raw)
    assert raw_total == 3 * len(snaps), raw.read_text()
    want_top, want_flat = leaves.most_common(1)[0]
    assert want_top == "hot" and want_flat == 2 * len(snaps), leaves

    total, rows = parse_top(go_pprof(tmp_path, "-top", "-sample_index=samples",
                                     str(prof)))
    assert total == raw_total
    assert rows[0] == (want_flat, want_top), rows
    # The wall time of a snapshot is one tick of 1/rate (100 Hz default).
    wall, _ = parse_top(go_pprof(tmp_path, "-top", "-unit=ns",
                                 "-sample_index=wall", str(prof)))
    assert wall == raw_total * 10_000_000

    samples = parse_pprof_raw(go_pprof(tmp_path, "-raw", str(prof)))
    assert sum(v[0] for v, _ in samples) == raw_total
    assert all(v[1] == v[0] * 10_000_000 for v, _ in samples)
    names = Counter()
    for (count, _), labels in samples:
        assert labels["pid"] == str(target.pid), labels
        assert int(labels["thread_id"]) > 0, labels
        names[labels.get("thread_name")] += count
    assert names == {"MainThread": len(snaps), "cruncher": len(snaps),
                     "napper": len(snaps)}, names


def test_pprof_live_recording(target, tmp_path):
    prof = tmp_path / "live.pb.gz"
    res = run(find_tool("pyspy"), "record", "--pid", target.pid, "--idle",
              "-r", "50", "-d", "1", "-f", "pprof", "-o", prof,
              "--hideprogress")
    samples = int(re.search(r"Samples: (\d+)", res.stdout).group(1))
    assert samples > 0
    total, rows = parse_top(go_pprof(tmp_path, "-top",
                                     "-sample_index=samples", str(prof)))
    assert total == samples
    assert rows[0][1] == "hot", rows
    text = go_pprof(tmp_path, "-raw", str(prof))
    assert "PeriodType: wall nanoseconds" in text
    assert "Period: 20000000" in text
    got = parse_pprof_raw(text)
    assert {l.get("thread_name") for _, l in got} == \
        {"MainThread", "cruncher", "napper"}
    # Each sample's wall time covers at least its own ticks.
    assert all(v[1] >= v[0] * 20_000_000 for v, _ in got)
