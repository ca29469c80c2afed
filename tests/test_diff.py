"""pyspy diff: differential flamegraphs of two real recordings of programs
whose hot function changes (raw files, snapshot sets, and one of each):
the SVG names the frames, each title carries both counts and shares, and
the colours' signs are right (red grew, blue shrank)."""
import os
import re
import subprocess
import xml.etree.ElementTree as ET

import pytest

from conftest import find_tool

SYSTEM_PYTHON = os.environ.get("PYSPY_TEST_PYTHON", "/usr/bin/python3")

# WEIGHT tenths of each round in alpha, the rest in beta: 8 before, 2
# after, so alpha's share shrinks and beta's grows whatever the load.
PROGRAM = """\
import sys
WEIGHT = int(sys.argv[1])
def alpha():
    x = 0
    for i in range(WEIGHT * 2000):
        x += i
def beta():
    x = 0
    for i in range((10 - WEIGHT) * 2000):
        x += i
def main():
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    while True:
        alpha()
        beta()
main()
"""

SVG = "{http://www.w3.org/2000/svg}"
TITLE = re.compile(r"^(.*) \(base (\d+) samples?, ([\d.]+)%; new (\d+) "
                   r"samples?, ([\d.]+)%; ([+-][\d.]+) points\)$")


@pytest.fixture
def programs(tmp_path):
    path = tmp_path / "prog.py"
    path.write_text(PROGRAM)
    procs = []

    def start(weight):
        p = subprocess.Popen([SYSTEM_PYTHON, str(path), str(weight)],
                             stdout=subprocess.PIPE, cwd=str(tmp_path))
        procs.append(p)
        assert p.stdout.readline().strip() == b"ready"
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()
        p.stdout.close()


def run(*cmd, check=True):
    res = subprocess.run([str(c) for c in cmd], capture_output=True,
                         text=True, timeout=300)
    if check:
        assert res.returncode == 0, res.stderr + res.stdout
    return res


def record_raw(pid, out):
    run(find_tool("pyspy"), "record", "--pid", pid, "-d", "2", "-r", "50",
        "--nolineno", "-f", "raw", "-o", out, "--hideprogress")
    stacks = []
    for line in out.read_text().splitlines():
        stack, count = line.rsplit(" ", 1)
        stacks.append((stack.split(";"), int(count)))
    return stacks


def under(stacks, prefix):
    """Samples whose stack starts with prefix."""
    return sum(c for frames, c in stacks if frames[:len(prefix)] == prefix)


def boxes(svg_path):
    """{label: [(base, base%, new, new%, change, fill, prefix-depth)]}."""
    root = ET.parse(svg_path).getroot()
    out = {}
    for g in root.iter(SVG + "g"):
        if g.get("class") != "f":
            continue
        title = g.find(SVG + "title").text
        m = TITLE.match(title)
        assert m, title
        assert m.group(1) == g.get("data-l")
        fill = g.find(SVG + "rect").get("fill")
        hue, sat, light = map(int, re.match(
            r"hsl\((\d+),(\d+)%,(\d+)%\)", fill).groups())
        out.setdefault(g.get("data-l"), []).append(dict(
            base=int(m.group(2)), base_pct=float(m.group(3)),
            new=int(m.group(4)), new_pct=float(m.group(5)),
            change=float(m.group(6)), hue=hue, sat=sat, light=light,
            y=float(g.find(SVG + "rect").get("y"))))
    return out, root


def label_of(stacks, name):
    for frames, _ in stacks:
        for i, f in enumerate(frames):
            if f.startswith(name + " ("):
                return frames[:i + 1]
    raise AssertionError(f"no {name} in {stacks}")


def test_diff_of_two_raw_recordings(programs, tmp_path):
    before, after = programs(8), programs(2)
    base = record_raw(before.pid, tmp_path / "base.txt")
    new = record_raw(after.pid, tmp_path / "new.txt")
    out = tmp_path / "diff.svg"
    res = run(find_tool("pyspy"), "diff", tmp_path / "base.txt",
              tmp_path / "new.txt", "-o", out)
    btotal, ntotal = sum(c for _, c in base), sum(c for _, c in new)
    assert f"Base samples: {btotal} New samples: {ntotal}" in res.stdout
    got, root = boxes(out)
    assert got["all"][0]["base"] == btotal and got["all"][0]["new"] == ntotal
    for name, grew in (("alpha", False), ("beta", True)):
        path = label_of(new, name)
        assert under(base, path) and under(new, path), (base, new)
        (box,) = got[path[-1]]
        # Both counts, and both shares of their own totals.
        assert box["base"] == under(base, path)
        assert box["new"] == under(new, path)
        assert box["base_pct"] == pytest.approx(
            100 * box["base"] / btotal, abs=0.006)
        assert box["new_pct"] == pytest.approx(
            100 * box["new"] / ntotal, abs=0.006)
        assert box["change"] == pytest.approx(
            box["new_pct"] - box["base_pct"], abs=0.011)
        # 80 % -> 20 % and back: tens of points, coloured by sign.
        if grew:
            assert box["change"] > 20 and box["hue"] == 0, box
        else:
            assert box["change"] < -20 and box["hue"] == 220, box
        assert box["sat"] > 0 and box["light"] < 90, box
    # The legend names both totals and shows both ends of the scale.
    legend = root.find(f".//{SVG}g[@id='legend']")
    text = " ".join(t.text or "" for t in legend.iter(SVG + "text"))
    assert f"base {btotal} samples, new {ntotal} samples" in text
    assert "(shrank)" in text and "(grew)" in text
    fills = {r.get("fill") for r in legend.iter(SVG + "rect")}
    assert any(f.startswith("hsl(0,85%") for f in fills)
    assert any(f.startswith("hsl(220,85%") for f in fills)
    # The same two files the other way round swap the colours.
    back = tmp_path / "back.svg"
    run(find_tool("pyspy"), "diff", tmp_path / "new.txt",
        tmp_path / "base.txt", "-o", back)
    rev, _ = boxes(back)
    assert rev[label_of(base, "alpha")[-1]][0]["hue"] == 0
    assert rev[label_of(base, "beta")[-1]][0]["hue"] == 220


def capture_series(pid, out):
    run(find_tool("pyspy-capture"), "--pid", pid, "--rate", "4",
        "--duration", "1", "-o", out, "--hideprogress")
    snaps = sorted(out.iterdir())
    assert snaps, "the series is empty"
    return snaps


def test_diff_of_snapshot_sets(programs, tmp_path):
    before, after = programs(8), programs(2)
    base_dir, new_dir = tmp_path / "before", tmp_path / "after"
    nb = len(capture_series(before.pid, base_dir))
    nn = len(capture_series(after.pid, new_dir))
    out = tmp_path / "diff.svg"
    res = run(find_tool("pyspy"), "diff", "--idle", "--nolineno", base_dir,
              new_dir, "-o", out)
    # One sample per snapshot: the program has one thread.
    assert f"Base samples: {nb} New samples: {nn}" in res.stdout
    got, _ = boxes(out)
    assert got["all"][0]["base"] == nb and got["all"][0]["new"] == nn
    # main's frame is in every sample of both sides, so it is matched.
    (m,) = got["main (prog.py)"]
    assert (m["base"], m["new"]) == (nb, nn)
    assert m["change"] == 0 and m["sat"] == 0

    # A raw recording against a set of snapshots: the same labels.
    raw = tmp_path / "before.txt"
    base = record_raw(before.pid, raw)
    mixed = tmp_path / "mixed.svg"
    run(find_tool("pyspy"), "diff", "--nolineno", raw, new_dir, "-o", mixed)
    got, _ = boxes(mixed)
    (m,) = got["main (prog.py)"]
    assert m["base"] == sum(c for _, c in base) and m["new"] == nn
    # One snapshot file as a side.
    one = tmp_path / "one.svg"
    run(find_tool("pyspy"), "diff", "--idle", sorted(base_dir.iterdir())[0],
        new_dir, "-o", one)
    assert boxes(one)[0]["all"][0]["base"] == 1


def test_diff_bad_inputs(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("main (x.py:1);f (x.py:2) 3\n")
    bad = tmp_path / "bad.txt"
    bad.write_text("this is not a stack\n")
    out = tmp_path / "diff.svg"
    res = run(find_tool("pyspy"), "diff", good, bad, "-o", out, check=False)
    assert res.returncode == 1
    assert res.stderr.startswith("Error: new: ") and "bad.txt:1:" in \
        res.stderr, res.stderr
    assert not out.exists()
    res = run(find_tool("pyspy"), "diff", good, tmp_path / "missing",
              check=False)
    assert res.returncode == 1 and "missing" in res.stderr
    res = run(find_tool("pyspy"), "diff", good, check=False)
    assert res.returncode == 2 and "<new>" in res.stderr
    res = run(find_tool("pyspy"), "diff", good, good, good, check=False)
    assert res.returncode == 2 and "unexpected argument" in res.stderr
    help_text = run(find_tool("pyspy"), "diff", "--help").stdout
    assert "<base>" in help_text and "directory" in help_text
    assert "red grew" in help_text
