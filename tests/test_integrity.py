"""Damaged snapshots are never read as sound (issue 14, item 1): every bit
flip in a fixture snapshot gives either the very same dump or exit 1 with
one line naming the file and the damaged byte or memory range; hostile seek
tables are refused; --allow-damaged prints what it can and marks every
frame, local and thread read from damage. The damaged files are made here,
from a committed fixture."""
import json
import pathlib
import random
import re
import subprocess

import pytest

from conftest import REPO, find_tool

FIXTURE = REPO / "fixtures" / "3.11.7-shared" / "scenarios.core.zst"
SKIPPABLE_MAGIC = 0x184D2A5E
FOOTER = 9  # frame count, descriptor, magic


@pytest.fixture(scope="module")
def pyspy():
    return find_tool("pyspy")


@pytest.fixture(scope="module")
def capture():
    return find_tool("pyspy-capture")


@pytest.fixture(scope="module")
def data():
    return FIXTURE.read_bytes()


def run(args, timeout=300):
    return subprocess.run([str(a) for a in args], capture_output=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def ref(pyspy):
    r = run([pyspy, "dump", "-ll", FIXTURE])
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def ref_json(pyspy):
    r = run([pyspy, "dump", "--json", "-l", FIXTURE])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def seek_table(data):
    """(frame count, offset of the first entry, offset of the skippable
    frame holding the table) of a seekable zstd file."""
    n = int.from_bytes(data[-FOOTER:-FOOTER + 4], "little")
    assert data[-5] == 0  # descriptor: 8-byte entries
    start = len(data) - FOOTER - 8 * n - 8
    assert int.from_bytes(data[start:start + 4], "little") == SKIPPABLE_MAGIC
    return n, start + 8, start


def entries(data):
    n, at, _ = seek_table(data)
    return [(int.from_bytes(data[at + 8 * i:at + 8 * i + 4], "little"),
             int.from_bytes(data[at + 8 * i + 4:at + 8 * i + 8], "little"))
            for i in range(n)]


def damage_line(r, path):
    """The one error line a damaged file gets: exit 1, nothing on stdout,
    the file named with a byte or address range."""
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stdout == b"", r.stdout[:200]
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1, r.stderr
    line = lines[0]
    assert line.startswith(f"Error: {path} is "), line
    assert "corrupted" in line or "truncated" in line, line
    assert re.search(r"0x[0-9a-f]+", line), line
    return line


def flips(data, count, seed):
    """Seeded bit flips: most anywhere in the file, some in the seek table
    and the frame headers, where a flip moves bytes rather than garbles
    them."""
    rnd = random.Random(seed)
    _, at, start = seek_table(data)
    out = [(rnd.randrange(len(data)), rnd.randrange(8))
           for _ in range(count - 8)]
    out += [(rnd.randrange(start, len(data)), rnd.randrange(8))
            for _ in range(5)]
    coff = 0
    for csize, _ in entries(data)[:3]:
        out.append((coff + rnd.randrange(4, 10), rnd.randrange(8)))
        coff += csize
    return out


def flipped(data, pos, bit, path):
    d = bytearray(data)
    d[pos] ^= 1 << bit
    path.write_bytes(bytes(d))
    return path


def test_every_bit_flip_is_caught_or_harmless(pyspy, data, ref, tmp_path):
    """Before the integrity checks 23 of 40 such flips printed a different
    dump with exit 0."""
    errors = 0
    for pos, bit in flips(data, 48, seed=14):
        p = flipped(data, pos, bit, tmp_path / "flip.core.zst")
        r = run([pyspy, "dump", "-ll", p])
        if r.returncode == 0 and r.stdout == ref:
            continue
        damage_line(r, p)
        errors += 1
    assert errors > 0


def test_allow_damaged_marks_what_it_read(pyspy, data, ref, ref_json,
                                          tmp_path):
    sound = set(ref.decode().splitlines())
    marked_runs = 0
    for pos, bit in flips(data, 16, seed=15):
        p = flipped(data, pos, bit, tmp_path / "flip.core.zst")
        r = run([pyspy, "dump", "-ll", "--allow-damaged", p])
        if r.returncode == 1:
            damage_line(r, p)  # nothing could be read: still named
            continue
        assert r.returncode in (0, 3), r.stderr
        out = r.stdout.decode().splitlines()
        unmarked = [l for l in out if l not in sound and "damaged" not in l]
        assert unmarked == [], (pos, bit, unmarked[:5])
        if r.stdout != ref:
            marked_runs += 1
            warn = r.stderr.decode()
            assert f"Warning: {p} is corrupted" in warn, warn
            assert r.returncode == 3, warn
            check_json_marks(pyspy, p, ref_json)
    assert marked_runs > 0


def frame_key(f):
    return (f.get("name"), f.get("filename"), f.get("line"))


def check_json_marks(pyspy, path, ref_json):
    r = run([pyspy, "dump", "--json", "-l", "--allow-damaged", path])
    assert r.returncode in (0, 3), r.stderr
    sound_frames = {frame_key(f) for t in ref_json for f in t["frames"]}
    sound_locals = {(l["name"], l["repr"]) for t in ref_json
                    for f in t["frames"] for l in f.get("locals") or []}
    marks = 0
    for t in json.loads(r.stdout):
        for f in t["frames"]:
            if frame_key(f) not in sound_frames:
                assert f.get("damaged") is True, f
            for l in f.get("locals") or []:
                if (l["name"], l["repr"]) not in sound_locals:
                    assert l.get("damaged") is True, l
            marks += f.get("damaged", False)
        if any(f.get("damaged") for f in t["frames"]):
            assert t.get("damaged") is True, t["thread_id"]
    assert marks > 0


def test_damage_named_by_capture_and_record(pyspy, capture, data, tmp_path):
    # the same flip for every reader: one in the middle of frame 2
    coff = sum(csize for csize, _ in entries(data)[:2])
    p = flipped(data, coff + entries(data)[2][0] // 2, 3,
                tmp_path / "bad.core.zst")
    line = damage_line(run([pyspy, "dump", p]), p)

    out = tmp_path / "out.core.zst"
    r = run([capture, "--core", p, "-o", out])
    assert r.returncode == 1 and f"{p} is corrupted" in r.stderr.decode()
    assert not out.exists()

    raw = tmp_path / "r.txt"
    r = run([pyspy, "record", "-f", "raw", "-o", raw, p])
    assert r.returncode == 1, r.stderr
    assert f"{p} is corrupted" in r.stderr.decode()
    assert "--allow-damaged" in r.stderr.decode()
    assert not raw.exists()
    r = run([pyspy, "record", "--idle", "-f", "raw", "-o", raw,
             "--allow-damaged", p])
    assert r.returncode == 0, r.stderr
    assert f"{p} is damaged" in r.stderr.decode()
    # the frame the damage made unreadable, marked in its label
    assert "<unreadable code object> [damaged]" in raw.read_text(), line


@pytest.mark.parametrize("how", ["swap", "count0", "countmax", "zero",
                                 "zero-entries"])
def test_hostile_seek_tables_refused(pyspy, data, ref, tmp_path, how):
    """Before: a swapped pair dumped 13 threads without frames, the others
    the clean output, all with exit 0."""
    n, at, start = seek_table(data)
    d = bytearray(data)
    if how == "swap":
        es = entries(data)
        i = next(i for i in range(n - 1) if es[i][0] != es[i + 1][0])
        d[at + 8 * i:at + 8 * i + 16] = (data[at + 8 * i + 8:at + 8 * i + 16]
                                         + data[at + 8 * i:at + 8 * i + 8])
    elif how == "count0":
        d[-FOOTER:-FOOTER + 4] = (0).to_bytes(4, "little")
    elif how == "countmax":
        d[-FOOTER:-FOOTER + 4] = (0xffffffff).to_bytes(4, "little")
    elif how == "zero":
        d[start:] = bytes(len(d) - start)
    else:
        d[at:at + 8 * n] = bytes(8 * n)
    p = tmp_path / f"{how}.core.zst"
    p.write_bytes(bytes(d))
    line = damage_line(run([pyspy, "dump", p]), p)
    if how != "zero":  # a zeroed table is no table: the frames are named
        assert "seek table" in line and "file byte" in line, line
    # best-effort: the frames are still there, read as one stream
    r = run([pyspy, "dump", "-ll", "--allow-damaged", p])
    if how == "zero":
        assert r.returncode == 1
    else:
        assert r.returncode in (0, 3), r.stderr
        assert r.stdout == ref
        assert "seek table" in r.stderr.decode()


def test_whole_stream_zstd_core_checksums(pyspy, tmp_path):
    """A systemd-coredump core is one zstd stream: its frame checksums are
    what it carries."""
    src = REPO / "fixtures" / "3.13.0-shared" / "crash-abort-systemd.core.zst"
    d = bytearray(src.read_bytes())
    d[len(d) // 2] ^= 4
    p = tmp_path / "core.zst"
    p.write_bytes(bytes(d))
    line = damage_line(run([pyspy, "dump", p]), p)
    assert "zstd frame at file byte 0x0" in line and "checksum" in line, line
    r = run([pyspy, "dump", "--allow-damaged", p])
    assert r.returncode == 3, r.stderr
    assert "in a zstd frame whose checksum fails" in r.stderr.decode()
    assert b"[damaged]" in r.stdout
