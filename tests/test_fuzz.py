"""Smoke runs of the libFuzzer harnesses (tests/fuzz/, built by `make fuzz`
into build/fuzz/bin, or $PYSPY_FUZZ_DIR): each runs every input of its
committed corpus (the seeds and the regression inputs of crashes found
before), then a fixed number of mutations from a fixed seed, so a run
does the same work however loaded the machine is. A crash, sanitizer
report, leak or hang fails the test. New inputs go to a temporary
folder, never into the repository. The long runs are in bench/README.md.
"""
import os
import pathlib
import re
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "fuzz" / "corpus"
HARNESSES = ["core", "zstd_seekable", "line_table", "debug_offsets", "walker",
             "collapsed", "aggregate"]
RUNS = 2000


def fuzz_dir() -> pathlib.Path:
    env = os.environ.get("PYSPY_FUZZ_DIR")
    return pathlib.Path(env) if env else REPO / "build" / "fuzz" / "bin"


@pytest.mark.parametrize("harness", HARNESSES)
def test_harness_survives_its_corpus_and_mutations(harness, tmp_path):
    binary = fuzz_dir() / f"fuzz_{harness}"
    if not binary.exists():
        pytest.skip(f"{binary} is not built (make fuzz)")
    seeds = CORPUS / harness
    inputs = sorted(seeds.iterdir())
    assert inputs, f"no corpus in {seeds}"
    new = tmp_path / "new"
    new.mkdir()
    # -timeout only catches a hang (an input that never ends): a minute
    # for one input is orders of magnitude above any input's real cost.
    proc = subprocess.run(
        [str(binary), f"-runs={RUNS}", "-seed=1", "-timeout=60",
         "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/",
         "-print_final_stats=1", str(new), str(seeds)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, errors="replace", timeout=1800)
    out = proc.stdout
    artifacts = [p.name for p in tmp_path.iterdir()
                 if p.name.startswith(("crash-", "leak-", "timeout-", "oom-"))]
    assert proc.returncode == 0 and not artifacts, \
        f"fuzz_{harness} failed ({proc.returncode}, {artifacts}):\n{out[-6000:]}"
    # every committed input was run before the mutations
    m = re.search(r"INFO: seed corpus: files: (\d+)", out)
    assert m and int(m.group(1)) == len(inputs), out[-3000:]
    m = re.search(r"stat::number_of_executed_units: (\d+)", out)
    assert m and int(m.group(1)) >= RUNS, out[-3000:]
