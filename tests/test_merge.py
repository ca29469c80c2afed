"""pyspy merge: a snapshot series of a real program, cut in two, recorded
half by half and merged, gives exactly what one offline record of the
whole series gives, in every format (aggregate, raw, speedscope,
chrometrace, pprof); inputs of the wrong kind or shape, and damaged
aggregate files, are refused with one line."""
import os
import subprocess

import pytest

from conftest import SERIES_PROGRAM, capture_series, collapsed, find_tool

SYSTEM_PYTHON = os.environ.get("PYSPY_TEST_PYTHON", "/usr/bin/python3")

PROGRAM = SERIES_PROGRAM

MIN_SNAPSHOTS = 4


def run(*cmd, check=True):
    res = subprocess.run([str(c) for c in cmd], capture_output=True,
                         text=True, timeout=600)
    if check:
        assert res.returncode == 0, res.stderr + res.stdout
    return res


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """Snapshot files of one process in time order, taken as series by
    pyspy-capture --rate; a loaded machine skips snapshots, so series are
    taken until there are enough (each is one pyspy-capture run)."""
    tmp = tmp_path_factory.mktemp("merge")
    path = tmp / "prog.py"
    path.write_text(PROGRAM)
    proc = subprocess.Popen([SYSTEM_PYTHON, str(path)],
                            stdout=subprocess.PIPE, cwd=str(tmp))
    try:
        assert proc.stdout.readline().strip() == b"ready"
        files = capture_series(tmp, proc.pid, MIN_SNAPSHOTS)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    return tmp, files


def halves(tmp, files):
    """The series cut in two, each half a directory of its own whose
    names sort in time order: the files' own names do not when the
    series met within one second (their names are the second, then the
    series' own sequence number)."""
    half = len(files) // 2
    dirs = []
    for name, part in (("A", files[:half]), ("B", files[half:])):
        d = tmp / name
        if not d.exists():
            d.mkdir()
            for i, f in enumerate(part):
                os.link(f, d / f"{i:04d}-{f.name}")
        dirs.append(d)
    return dirs


def record(files, fmt, out, *opts):
    res = run(find_tool("pyspy"), "record", "--hideprogress", *opts, "-f",
              fmt, "-o", out, *files)
    return res.stdout


def merged_halves_equal_one_run(tmp, files, tmp_path, opts):
    a_dir, b_dir = halves(tmp, files)
    a, b = tmp_path / "a.pyagg", tmp_path / "b.pyagg"
    record(sorted(a_dir.iterdir()), "aggregate", a, *opts)
    record(sorted(b_dir.iterdir()), "aggregate", b, *opts)
    for fmt in ("aggregate", "raw", "speedscope", "chrometrace", "pprof"):
        one = tmp_path / f"one.{fmt}"
        merged = tmp_path / f"merged.{fmt}"
        said = record(files, fmt, one, *opts)
        res = run(find_tool("pyspy"), "merge", "--hideprogress", "-f", fmt,
                  "-o", merged, a, b)
        assert one.read_bytes() == merged.read_bytes(), fmt
        # the same samples are announced
        assert said.splitlines()[0].split("Samples:")[1] == \
            res.stdout.splitlines()[0].split("Samples:")[1]
    counts = collapsed(tmp_path / "one.raw")
    assert sum(counts.values()) >= len(files), counts
    assert any("crunch" in s for s in counts), counts
    if opts:
        # --threads roots every stack in its thread, named
        assert any(s.startswith("thread (") and ": cruncher;" in s
                   for s in counts), counts


@pytest.mark.parametrize("opts", [[], ["--idle", "--threads"]],
                         ids=["default", "idle-threads"])
def test_merged_halves_equal_one_run(series, tmp_path, opts):
    tmp, files = series
    merged_halves_equal_one_run(tmp, files, tmp_path, opts)


def test_merged_halves_of_series_that_met_in_one_second(series, tmp_path):
    """A loaded machine needs more than one pyspy-capture series for
    enough snapshots, and a series that starts in the second the last one
    ended names its first file (time in seconds, then its own sequence
    number) before the other's last: the halves must keep the time order,
    not the order of names."""
    tmp, files = series
    tmp = tmp_path / "met"
    early, late = tmp / "s00", tmp / "s01"
    early.mkdir(parents=True)
    late.mkdir()
    # the first half holds the meeting: the later series' first file
    cut = max(1, len(files) // 2 - 1)
    order = []
    for i, f in enumerate(files):
        where, seq = (early, i + 5) if i < cut else (late, i - cut)
        link = where / f"pyspy-1-20260101T000000Z-{seq:06d}.core.zst"
        os.link(f, link)
        order.append(link)
    first = order[:len(order) // 2]
    assert sorted(first, key=lambda f: f.name) != first
    merged_halves_equal_one_run(tmp, order, tmp_path, [])


def test_merge_of_other_kinds(series, tmp_path):
    """Directories of snapshots and raw files merge too; a raw file's
    stacks are labels only, so the counts are what one run's are."""
    tmp, files = series
    a_dir, b_dir = halves(tmp, files)
    one = tmp_path / "one.txt"
    record(files, "raw", one)
    from_dirs = tmp_path / "dirs.txt"
    run(find_tool("pyspy"), "merge", "--hideprogress", "-f", "raw", "-o",
        from_dirs, a_dir, b_dir)
    assert from_dirs.read_bytes() == one.read_bytes()
    a_raw, b_agg = tmp_path / "a.txt", tmp_path / "b.pyagg"
    record(sorted(a_dir.iterdir()), "raw", a_raw)
    record(sorted(b_dir.iterdir()), "aggregate", b_agg)
    mixed = tmp_path / "mixed.txt"
    run(find_tool("pyspy"), "merge", "--hideprogress", "-f", "raw", "-o",
        mixed, a_raw, b_agg)
    assert collapsed(mixed) == collapsed(one)
    svg = tmp_path / "mixed.svg"
    run(find_tool("pyspy"), "merge", "--hideprogress", "-o", svg, a_raw,
        b_agg)
    assert "crunch" in svg.read_text()


def test_merge_refuses_what_does_not_add_up(series, tmp_path):
    tmp, files = series
    a_dir, b_dir = halves(tmp, files)
    pyspy = find_tool("pyspy")
    plain, idle = tmp_path / "plain.pyagg", tmp_path / "idle.pyagg"
    raw = tmp_path / "a.txt"
    record(sorted(a_dir.iterdir()), "aggregate", plain)
    record(sorted(b_dir.iterdir()), "aggregate", idle, "--idle")
    record(sorted(a_dir.iterdir()), "raw", raw)
    out = tmp_path / "out"

    def refused(*args, code=1):
        res = run(pyspy, "merge", "--hideprogress", "-o", out, *args,
                  check=False)
        assert res.returncode == code, res.stderr + res.stdout
        lines = res.stderr.splitlines()
        assert len(lines) == 1 or code == 2, res.stderr
        return res.stderr

    assert "--idle" in refused(plain, idle)
    assert "raw file" in refused("-f", "speedscope", raw, plain)
    data = bytearray(plain.read_bytes())
    data[-1] ^= 0x40
    damaged = tmp_path / "damaged.pyagg"
    damaged.write_bytes(bytes(data))
    assert "checksum" in refused(plain, damaged)
    truncated = tmp_path / "truncated.pyagg"
    truncated.write_bytes(plain.read_bytes()[:-3])
    assert "truncated" in refused(truncated)
    assert "missing" in refused(tmp_path / "missing")
    assert "<input>" in refused(code=2)
    assert not out.exists()


def test_merge_help_and_summary(series, tmp_path):
    tmp, files = series
    res = run(find_tool("pyspy"), "merge", "--help")
    assert res.stdout.startswith("pyspy-merge ")
    for flag in ("--output", "--format", "--idle", "--threads", "--jobs",
                 "aggregate"):
        assert flag in res.stdout, flag
    agg = tmp_path / "all.pyagg"
    said = record(files, "aggregate", agg)
    assert said.startswith(f"Wrote aggregate profile to '{agg}'. Samples: ")
    assert agg.read_bytes()[:8] == b"PYSPYAGG"
