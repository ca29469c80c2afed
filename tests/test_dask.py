"""fleet/pyspy_dask on a real Dask cluster: a dask-scheduler and two
dask-worker processes on 127.0.0.1, started and stopped here by their
pids. The cluster's profile of a real program's snapshot series is the
one a local pyspy record of the same files gives, byte for byte; when a
worker is killed while it records a partition, its partitions run again
on the other and the result is still complete and identical; without
--scheduler a LocalCluster does the same."""
import json
import os
import pathlib
import signal
import subprocess
import time

import pytest

from conftest import (REPO, SERIES_PROGRAM, capture_series, find_tool,
                      get_bin_dir)

SYSTEM_PYTHON = os.environ.get("PYSPY_TEST_PYTHON", "/usr/bin/python3")
# The cluster runs on the Python that has Debian's python3-distributed.
DASK_PYTHON = "/usr/bin/python3"
DEADLINE = 300

try:
    subprocess.run([DASK_PYTHON, "-c", "import distributed"], check=True,
                   capture_output=True, timeout=120)
except (OSError, subprocess.CalledProcessError):
    pytest.skip("Dask is not importable by /usr/bin/python3 (Debian's "
                "python3-distributed, tools/ensure-deps installs it)",
                allow_module_level=True)

PROGRAM = SERIES_PROGRAM

MIN_SNAPSHOTS = 6


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dask")
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
    return files


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Cluster:
    """A scheduler on a free port (it picks one and says so in its
    scheduler file) and two single-threaded workers without nannies, so
    each worker's pid is the one Popen gave."""

    def __init__(self, tmp):
        self.tmp, self.procs, self.workers = tmp, [], []
        tmp.mkdir()
        try:
            self._start_all(tmp)
        except BaseException:
            self.close()
            raise

    def _start_all(self, tmp):
        sched_file = tmp / "scheduler.json"
        self.scheduler = self._start(
            "scheduler", "distributed.cli.dask_scheduler", "--host",
            "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file",
            sched_file)
        self.address = self._poll_address(sched_file)
        for i in range(2):
            (tmp / f"w{i}").mkdir()
            self.workers.append(self._start(
                f"worker{i}", "distributed.cli.dask_worker",
                "--scheduler-file", sched_file, "--nthreads", "1",
                "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
                "--local-directory", tmp / f"w{i}", "--name", f"w{i}"))
        self._wait_for_workers(2)

    def _start(self, name, module, *args):
        log = open(self.tmp / f"{name}.log", "w")
        proc = subprocess.Popen([DASK_PYTHON, "-m", module, *map(str, args)],
                                stdout=log, stderr=subprocess.STDOUT,
                                cwd=str(self.tmp))
        log.close()
        self.procs.append(proc)
        return proc

    def logs(self):
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}"
                         for p in sorted(self.tmp.glob("*.log")))

    def _poll_address(self, sched_file):
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            assert self.scheduler.poll() is None, self.logs()
            try:
                return json.loads(sched_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        raise AssertionError("the scheduler never said its address\n" +
                             self.logs())

    def _wait_for_workers(self, n):
        script = ("import sys\nfrom distributed import Client\n"
                  f"c = Client({self.address!r}, timeout='{DEADLINE}s')\n"
                  f"c.wait_for_workers({n}, timeout={DEADLINE})\n"
                  "print(len(c.scheduler_info()['workers']))\nc.close()\n")
        res = subprocess.run([DASK_PYTHON, "-c", script], capture_output=True,
                             text=True, timeout=DEADLINE + 60)
        assert res.returncode == 0 and res.stdout.split()[-1] == str(n), \
            res.stderr[-3000:] + self.logs()

    def close(self):
        for proc in reversed(self.procs):
            stop(proc)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path / "cluster")
    yield c
    c.close()


def driver(*args, pyspy=None, wait=True):
    env = dict(os.environ, PYTHONPATH=str(REPO / "fleet"),
               PYSPY_ANALYZE=str(pyspy or get_bin_dir() / "pyspy-analyze"))
    proc = subprocess.Popen([DASK_PYTHON, "-m", "pyspy_dask",
                             *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    if not wait:
        return proc
    try:
        out, err = proc.communicate(timeout=DEADLINE * 2)
    finally:
        stop(proc)
    return proc.returncode, out, err


def local_record(files, fmt, out):
    res = subprocess.run([str(find_tool("pyspy")), "record", "--hideprogress",
                          "-f", fmt, "-o", str(out), *map(str, files)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return out.read_bytes()


def counts(data):
    got = {}
    for line in data.decode().splitlines():
        stack, n = line.rsplit(" ", 1)
        got[stack] = int(n)
    return got


def test_cluster_profile_equals_local_record(cluster, snapshots, tmp_path):
    find_tool("pyspy-analyze")
    want_raw = local_record(snapshots, "raw", tmp_path / "local.txt")
    want_agg = local_record(snapshots, "aggregate", tmp_path / "local.pyagg")
    out = tmp_path / "cluster.txt"
    rc, stdout, err = driver("--scheduler", cluster.address, "-f", "raw",
                             "-o", out, "--partitions", 3, *snapshots)
    assert rc == 0, err + cluster.logs()
    assert counts(out.read_bytes()) == counts(want_raw)
    assert out.read_bytes() == want_raw
    assert f"{len(snapshots)} files in 3 partitions on 2 workers" in stdout
    assert sum(counts(want_raw).values()) >= len(snapshots)
    # The aggregate (threads, names, time line) is the same too, and so
    # is a glob of the series' folders.
    out = tmp_path / "cluster.pyagg"
    folders = sorted({str(p.parent) for p in snapshots})
    rc, _, err = driver("--scheduler", cluster.address, "-f", "aggregate",
                        "-o", out, *[f + "/*.core.zst" for f in folders])
    assert rc == 0, err
    assert out.read_bytes() == want_agg


def test_failed_partition_is_one_error_line(cluster, snapshots, tmp_path):
    failing = tmp_path / "failing-pyspy"
    failing.write_text("#!/bin/sh\necho 'Error: no such luck' >&2\nexit 1\n")
    failing.chmod(0o755)
    # the workers' pyspy fails, so no partition is ever recorded
    rc, _, err = driver("--scheduler", cluster.address, "-o",
                        tmp_path / "x.svg", "--retries", 1, *snapshots[:2],
                        pyspy=failing)
    assert rc == 1, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("pyspy_dask: error: "), err
    assert "no such luck" in lines[-1], err
    assert not (tmp_path / "x.svg").exists()


# Stands in for pyspy-analyze on the workers: says which worker (its
# parent) started it, then waits for the test's go-ahead before it runs
# the real binary, so the test can kill a worker while it is recording.
# It gives up when its worker is gone.
SLOW_PYSPY = """\
#!{python}
import os, sys, time
ppid = os.getppid()
open(os.path.join({marks!r}, "started-%d-%d" % (ppid, os.getpid())),
     "w").close()
deadline = time.monotonic() + {deadline}
while not os.path.exists({go!r}):
    if os.getppid() != ppid or time.monotonic() > deadline:
        sys.exit(3)
    time.sleep(0.05)
os.execv({real!r}, [{real!r}] + sys.argv[1:])
"""


def started_by(marks):
    """{parent pid: [wrapper pids]} of the wrappers started so far."""
    got = {}
    for p in marks.iterdir():
        _, ppid, pid = p.name.split("-")
        got.setdefault(int(ppid), []).append(int(pid))
    return got


def gone(pid):
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_killed_worker_partitions_are_retried(cluster, snapshots, tmp_path):
    real = find_tool("pyspy-analyze")
    want = local_record(snapshots, "raw", tmp_path / "local.txt")
    marks, go = tmp_path / "marks", tmp_path / "go"
    marks.mkdir()
    slow = tmp_path / "slow-pyspy"
    slow.write_text(SLOW_PYSPY.format(python=DASK_PYTHON, marks=str(marks),
                                      go=str(go), real=str(real),
                                      deadline=DEADLINE))
    slow.chmod(0o755)
    out = tmp_path / "cluster.txt"
    proc = driver("--scheduler", cluster.address, "-f", "raw", "-o", out,
                  "--partitions", 4, *snapshots, pyspy=slow, wait=False)
    try:
        victim, survivor = cluster.workers
        # Both workers are in a partition, blocked: killing one now is
        # killing it mid-run.
        deadline = time.monotonic() + DEADLINE
        while not {victim.pid, survivor.pid} <= started_by(marks).keys():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, (started_by(marks),
                                                 cluster.logs())
            time.sleep(0.1)
        orphans = started_by(marks)[victim.pid]
        victim.kill()
        victim.wait()
        go.touch()
        stdout, err = proc.communicate(timeout=DEADLINE * 2)
    finally:
        go.touch()
        stop(proc)
    assert proc.returncode == 0, err + cluster.logs()
    assert out.read_bytes() == want
    assert "4 partitions" in stdout
    # The victim finished none (its wrappers waited for the go-ahead), so
    # every partition, its own too, ran on the survivor.
    assert len(started_by(marks)[survivor.pid]) >= 4, started_by(marks)
    deadline = time.monotonic() + DEADLINE
    while not all(gone(pid) for pid in orphans):
        assert time.monotonic() < deadline, orphans
        time.sleep(0.1)


def test_local_cluster_without_scheduler(snapshots, tmp_path):
    find_tool("pyspy-analyze")
    want = local_record(snapshots, "aggregate", tmp_path / "local.pyagg")
    out = tmp_path / "local-cluster.pyagg"
    rc, stdout, err = driver("-f", "aggregate", "-o", out, "--workers", 2,
                             *snapshots)
    assert rc == 0, err
    assert out.read_bytes() == want
    assert "on 2 workers" in stdout
