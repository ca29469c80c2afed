"""numpy scalar locals decoded as py-spy shows them (issue 17): each width
of int, uint, float, bool and complex, in the text dump and in --json, on
a live /usr/bin/python3 that can import numpy (Debian's python3-numpy)."""
import json
import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import find_tool  # noqa: E402

PYTHON = "/usr/bin/python3"

PROGRAM = r'''
import sys, time
import numpy as np
def target():
    i8 = np.int8(-2); i16 = np.int16(300); i32 = np.int32(-70000)
    i64 = np.int64(2 ** 40)
    u8 = np.uint8(2); u16 = np.uint16(65535); u32 = np.uint32(4000000000)
    u64 = np.uint64(2 ** 64 - 1)
    f16 = np.float16(0.5); f32 = np.float32(0.25); f64 = np.float64(-1.5)
    yes = np.bool_(True); no = np.bool_(False)
    c64 = np.complex64(1 - 2j); c128 = np.complex128(0.5 + 3j)
    f32b = np.float32(0.1); f16b = np.float16(0.3)
    ll = np.longlong(-11); ull = np.ulonglong(12)
    with open(sys.argv[1] + '.tmp', 'w') as f:
        f.write('ready')
    import os
    os.rename(sys.argv[1] + '.tmp', sys.argv[1])
    while True:
        time.sleep(0.05)
target()
'''

WANT = {"i8": "-2", "i16": "300", "i32": "-70000", "i64": "1099511627776",
        "u8": "2", "u16": "65535", "u32": "4000000000",
        "u64": "18446744073709551615", "f16": "0.5", "f32": "0.25",
        "f64": "-1.5", "yes": "True", "no": "False",
        "c64": "(1.0-2.0j)", "c128": "(0.5+3.0j)",
        # the fewest digits that read back as the float32 / float16 held
        # (py-spy's f32 Display, numpy's repr), not the double's digits
        "f32b": "0.1", "f16b": "0.3",
        # Linux numpy's long long types are not int64/uint64 by name
        "ll": "-11", "ull": "12"}


def has_numpy():
    r = subprocess.run([PYTHON, "-c", "import numpy"], capture_output=True)
    return r.returncode == 0


pytestmark = pytest.mark.skipif(
    not os.path.exists(PYTHON) or not has_numpy(),
    reason="numpy is not importable by /usr/bin/python3 (Debian's "
           "python3-numpy, installed by tools/ensure-deps)")


@pytest.fixture
def target(tmp_path):
    prog = tmp_path / "np_target.py"
    prog.write_text(PROGRAM)
    ready = tmp_path / "ready"
    proc = subprocess.Popen([PYTHON, str(prog), str(ready)])
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, "target exited %s" % proc.returncode
            assert time.monotonic() < deadline, "target never got ready"
            time.sleep(0.02)
        yield proc
    finally:
        proc.kill()
        proc.wait()


def dump(args):
    r = subprocess.run([str(find_tool("pyspy")), "dump"] + args,
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode("utf-8", "replace")
    return r.stdout.decode("utf-8")


def test_numpy_scalars_json(target):
    doc = json.loads(dump(["--pid", str(target.pid), "--json", "-l"]))
    frames = [f for t in doc for f in t["frames"] if f["name"] == "target"]
    assert frames, doc
    got = {l["name"]: l["repr"] for l in frames[0]["locals"]}
    assert {k: got.get(k) for k in WANT} == WANT


def test_numpy_scalars_text(target):
    out = dump(["--pid", str(target.pid), "-l"])
    for name, want in WANT.items():
        assert "            %s: %s\n" % (name, want) in out, out
