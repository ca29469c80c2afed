"""The client side: inputs to partitions, partitions to tasks, partial
profiles to one output with pyspy merge."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

from pyspy_dask import tasks

# A partition's paths go on one pyspy-analyze command line: well under
# Linux's limit for all arguments (ARG_MAX, 2 MiB by default).
MAX_ARGV_BYTES = 1 << 20
FORMATS = ("flamegraph", "raw", "speedscope", "chrometrace", "pprof",
           "aggregate")


class FleetError(RuntimeError):
    """What the driver reports in its one error line."""


def expand_inputs(args):
    """Absolute paths in the order given: a glob's matches sorted by
    name, a directory's files (and its folders', a host's series each)
    sorted by name (a series' names sort in time)."""
    files = []
    for arg in args:
        if any(c in arg for c in "*?["):
            hits = sorted(p for p in glob.glob(arg) if os.path.isfile(p))
            if not hits:
                raise FleetError(f"no file matches '{arg}'")
            files += hits
        elif os.path.isdir(arg):
            hits = []
            for root, dirs, names in os.walk(arg):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                hits += [os.path.join(root, n) for n in sorted(names)
                         if not n.startswith(".")
                         and os.path.isfile(os.path.join(root, n))]
            if not hits:
                raise FleetError(f"'{arg}' holds no files")
            files += hits
        elif os.path.isfile(arg):
            files.append(arg)
        else:
            raise FleetError(f"'{arg}': no such file or directory")
    return [os.path.abspath(f) for f in files]


def partition(files, n):
    """n runs of consecutive files (fewer when there are fewer files, more
    when a run's paths would not fit on one command line), so each
    partition's samples come after the previous one's and the merge is the
    same as one run over all of them."""
    size = sum(len(f) + 1 for f in files)
    n = max(1, n, -(-size // MAX_ARGV_BYTES))
    n = min(n, len(files))
    return [files[i * len(files) // n:(i + 1) * len(files) // n]
            for i in range(n)]


def local_pyspy(pyspy):
    found = pyspy if os.sep in pyspy else shutil.which(pyspy)
    if not found or not os.access(found, os.X_OK):
        raise FleetError(f"{pyspy} is not on this host, which merges the "
                         "partial profiles: give its path with --pyspy")
    return found


class Progress:
    """One line on stderr when it is a terminal, as pyspy record's."""

    def __init__(self, total):
        self.total, self.t0 = total, time.monotonic()
        self.on = sys.stderr.isatty()

    def update(self, done, samples):
        if self.on:
            sys.stderr.write(f"\r[{time.monotonic() - self.t0:5.1f}s] "
                             f"{done}/{self.total} partitions, {samples} "
                             "samples\033[K")
            sys.stderr.flush()

    def done(self):
        if self.on:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _connect(scheduler, workers):
    from distributed import Client, LocalCluster
    if scheduler:
        return Client(scheduler, timeout="60s"), None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                           processes=True, dashboard_address=None)
    return Client(cluster), cluster


def _record(client, parts, pyspy, record_args, retries, progress):
    from distributed import as_completed
    token = uuid.uuid4().hex[:12]
    futures = [client.submit(tasks.record_partition, i, part, pyspy,
                             list(record_args), key=f"pyspy-record-{token}-{i}",
                             retries=retries, pure=False)
               for i, part in enumerate(parts)]
    results = [None] * len(parts)
    samples = 0
    try:
        for done, fut in enumerate(as_completed(futures), 1):
            try:
                res = fut.result()
            except Exception as e:  # the task's own error, after retries
                raise FleetError(str(e) or type(e).__name__) from e
            results[res["index"]] = res
            samples += res["samples"]
            progress.update(done, samples)
    finally:
        progress.done()
        client.cancel(futures)
    return results


def profile(files, output, fmt="flamegraph", scheduler=None, partitions=None,
            workers=2, pyspy="pyspy-analyze", record_args=(), retries=3,
            merge_pyspy=None):
    """Records files on the cluster (a new LocalCluster of `workers`
    processes when scheduler is None) and writes output in fmt. Returns
    a summary dict; raises FleetError."""
    if fmt.lower() not in FORMATS:
        raise FleetError(f"unknown format '{fmt}' (one of "
                         f"{', '.join(FORMATS)})")
    if not files:
        raise FleetError("no input files")
    merger = local_pyspy(merge_pyspy or pyspy)
    try:
        import cloudpickle
        import distributed  # noqa: F401 (what _connect and _record use)
    except ImportError as e:
        raise FleetError(f"Dask is not importable by {sys.executable} "
                         f"({e}): install Debian's python3-distributed and "
                         "run /usr/bin/python3 -m pyspy_dask") from e
    # Workers need Dask and pyspy, not this package.
    cloudpickle.register_pickle_by_value(tasks)
    client, cluster = _connect(scheduler, workers)
    try:
        nworkers = len(client.scheduler_info().get("workers", {}))
        parts = partition(files, partitions or 4 * max(1, nworkers))
        results = _record(client, parts, pyspy, record_args, retries,
                          Progress(len(parts)))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    with tempfile.TemporaryDirectory(prefix="pyspy-dask-") as tmp:
        paths = []
        for res in results:
            path = os.path.join(tmp, f"part-{res['index']:05d}.pyagg")
            with open(path, "wb") as f:
                f.write(res["data"])
            paths.append(path)
        merged = subprocess.run([merger, "merge", "--hideprogress", "-f",
                                 fmt, "-o", output, *paths],
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    if merged.returncode != 0:
        last = (merged.stderr.strip().splitlines() or ["no message"])[-1]
        raise FleetError(f"pyspy merge failed: {last}")
    return {"files": len(files), "partitions": len(parts),
            "workers": nworkers,
            "samples": sum(r["samples"] for r in results),
            "errors": sum(r["errors"] for r in results),
            "warnings": [w for r in results for w in r["warnings"]],
            "merge_output": merged.stdout}
