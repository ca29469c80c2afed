"""What runs on a Dask worker: one partition of snapshot files recorded by
the worker's own pyspy-analyze into an aggregate file, returned as bytes.

Only the standard library is used here, and the driver ships this module
to the workers by value (cloudpickle), so a worker needs Dask and the
pyspy binary, not this package."""
import os
import re
import shutil
import socket
import subprocess
import tempfile

SUMMARY = re.compile(r"Samples: (\d+) Errors: (\d+)")


class RecordFailed(RuntimeError):
    """pyspy-analyze could not record a partition (its own error line)."""


def find_pyspy(pyspy):
    """The binary as given (a path), or found on this host's PATH."""
    if os.sep in pyspy:
        found = pyspy if os.access(pyspy, os.X_OK) else None
    else:
        found = shutil.which(pyspy)
    if not found:
        raise FileNotFoundError(
            f"{pyspy} is not on worker {socket.gethostname()}: install "
            "pyspy there or give its path with --pyspy")
    return found


def record_partition(index, files, pyspy, record_args, jobs=1):
    """Records files (paths as the worker sees them) with pyspy-analyze
    record -f aggregate; returns {index, data, samples, errors}."""
    binary = find_pyspy(pyspy)
    tmp = tempfile.mkdtemp(prefix="pyspy-dask-")
    try:
        out = os.path.join(tmp, f"part-{index:05d}.pyagg")
        # -j makes record read the arguments as snapshot files whatever
        # their names.
        cmd = [binary, "record", "--hideprogress", "-f", "aggregate", "-o",
               out, "-j", str(jobs), *record_args, *files]
        res = subprocess.run(cmd, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             errors="replace")
        if res.returncode not in (0, 3) or not os.path.exists(out):
            last = (res.stderr.strip().splitlines() or ["no message"])[-1]
            raise RecordFailed(
                f"partition {index} on {socket.gethostname()}: "
                f"pyspy-analyze record exited {res.returncode}: {last}")
        with open(out, "rb") as f:
            data = f.read()
        m = SUMMARY.search(res.stdout)
        return {"index": index, "data": data,
                "samples": int(m.group(1)) if m else 0,
                "errors": int(m.group(2)) if m else 0,
                "warnings": [ln for ln in res.stderr.splitlines()
                             if ln.startswith("warning:")]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
