"""Shared pytest helpers. The binaries under test come from $PYSPY_BIN_DIR
(default: build/asan/bin in this repository)."""
import contextlib
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent


def get_bin_dir() -> pathlib.Path:
    env = os.environ.get("PYSPY_BIN_DIR")
    return pathlib.Path(env) if env else REPO / "build" / "asan" / "bin"


def find_tool(name: str) -> pathlib.Path:
    """Path of a built tool; skips the calling test when it was not built."""
    path = get_bin_dir() / name
    if not path.exists():
        pytest.skip(f"{name} is not built in {get_bin_dir()}")
    return path


@pytest.fixture(scope="session")
def bin_dir() -> pathlib.Path:
    return get_bin_dir()


# The target of the snapshot-series tests (merge, Dask): a named busy
# thread and a main thread that alternates two functions, so a series has
# two threads, several stacks and stack changes.
SERIES_PROGRAM = """\
import sys, threading
def crunch():
    x = 0
    while True:
        x += 1
def alpha():
    return sum(range(30000))
def beta():
    return sum(range(10000))
threading.Thread(target=crunch, name="cruncher", daemon=True).start()
sys.stdout.write("ready\\n"); sys.stdout.flush()
while True:
    alpha()
    beta()
"""


def capture_series(out_base: pathlib.Path, pid: int, min_files: int,
                   rate: int = 5, duration: int = 1, tries: int = 20):
    """Snapshot files of process pid in time order, taken as series by
    pyspy-capture --rate into out_base/sNN; a loaded machine skips
    snapshots of a series, so series are taken (each one pyspy-capture
    run) until there are min_files, or tries runs were made."""
    import subprocess
    files = []
    for i in range(tries):
        out = out_base / f"s{i:02d}"
        res = subprocess.run([str(find_tool("pyspy-capture")), "--pid",
                              str(pid), "--rate", str(rate), "--duration",
                              str(duration), "-o", str(out)],
                             capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr
        files += sorted(out.iterdir())
        if len(files) >= min_files:
            break
    assert len(files) >= min_files, files
    return files


@contextlib.contextmanager
def ready_process(argv, **popen_kw):
    """A program that prints "ready" once it is set up; killed and reaped at
    the end through the pid Popen gave."""
    p = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE,
                         text=True, **popen_kw)
    try:
        assert p.stdout.readline().strip() == "ready"
        yield p
    finally:
        p.kill()
        p.wait()


def collapsed(path):
    """{stack: count} of a raw (collapsed) file, a stack's lines added up."""
    got = {}
    for line in path.read_text().splitlines():
        stack, count = line.rsplit(" ", 1)
        got[stack] = got.get(stack, 0) + int(count)
    return got
