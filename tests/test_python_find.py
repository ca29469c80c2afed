"""Interpreter discovery on live processes: for every interpreter on this
machine, start it sleeping, find it with the probe built from
tests/unit/test_python_version.c (PYSPY_PROBE_PID) and compare the exact
version with what the interpreter itself reports. Also with every module's
symbols hidden, so discovery has to scan for a structure that validates."""
import contextlib
import glob
import os
import pathlib
import subprocess

import pytest

from conftest import get_bin_dir

SID = pathlib.Path(os.environ.get("PYSPY_SID_PYTHONS", "/var/cache/pyspy-pythons/sid"))
BUILT = pathlib.Path(os.environ.get("PYSPY_PYTHONS", "/opt/pyspy-pythons"))
PYENV = pathlib.Path(os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv")))


def interpreters():
    found = [("debian-python3", "/usr/bin/python3")]
    for d in sorted(glob.glob(str(PYENV / "versions" / "*"))):
        ver = os.path.basename(d)
        mm = ".".join(ver.split(".")[:2])
        found.append((f"pyenv-{ver}", f"{d}/bin/python{mm}"))
    for name in ("3.9-static", "3.13-static", "3.13t-static"):
        exe = sorted(glob.glob(str(BUILT / name / "bin" / "python3.*[0-9t]")))
        found.append((name, exe[0] if exe else str(BUILT / name / "bin" / "python3")))
    for v in ("3.14", "3.15"):
        found.append((f"sid-{v}", str(SID / f"python{v}")))
    return found


INTERPRETERS = interpreters()


def table_versions():
    """Releases whose headers generated a built-in table."""
    import re
    text = (pathlib.Path(__file__).resolve().parent.parent / "analyze" /
            "cpython" / "layouts_gen.c").read_text()
    return set(re.findall(r"/\* (\d\.\d+t?): (\d+\.\d+\.\d+\S*), headers", text))


def probe_binary():
    path = get_bin_dir().parent / "tests" / "test_python_version"
    if not path.exists():
        pytest.skip(f"{path} is not built")
    return path


def facts(exe):
    out = subprocess.run(
        [exe, "-c",
         "import platform, sysconfig; print(platform.python_version()); "
         "print(1 if sysconfig.get_config_var('Py_GIL_DISABLED') else 0)"],
        capture_output=True, text=True, timeout=60, check=True).stdout.split()
    return out[0], out[1] == "1"


@contextlib.contextmanager
def sleeping(exe):
    """A live target: the interpreter with a second thread, both asleep."""
    target = subprocess.Popen(
        [exe, "-c",
         "import sys, threading, time\n"
         "t = threading.Thread(target=time.sleep, args=(600,))\n"
         "t.daemon = True\n"
         "t.start()\n"
         "sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True)
    try:
        # Wrappers exec the interpreter; once it prints, the pid is Python's.
        assert target.stdout.readline().strip() == "ready"
        yield target.pid
    finally:
        target.kill()
        target.wait()
        target.stdout.close()


def probe(pid, nosyms=False):
    env = dict(os.environ, PYSPY_PROBE_PID=str(pid))
    if nosyms:
        env["PYSPY_PROBE_NOSYMS"] = "1"
    res = subprocess.run([str(probe_binary())], env=env, capture_output=True,
                         text=True, timeout=300)
    kv = {}
    for line in res.stdout.splitlines():
        if "=" in line and not line.startswith(("ok", "not ok", "#")):
            k, v = line.split("=", 1)
            kv[k] = v
    assert res.returncode == 0, res.stdout + res.stderr
    return kv


def need(exe):
    if not os.access(exe, os.X_OK):
        if "sid" in exe or "pyspy-pythons/sid" in exe:
            pytest.skip(f"{exe} missing: run fixtures/get-sid-pythons")
        if str(BUILT) in exe:
            pytest.skip(f"{exe} missing: run fixtures/build-pythons")
        pytest.skip(f"{exe} is not installed")


@pytest.mark.parametrize("name,exe", INTERPRETERS, ids=[n for n, _ in INTERPRETERS])
def test_exact_version(name, exe):
    need(exe)
    version, free_threaded = facts(exe)
    with sleeping(exe) as pid:
        kv = probe(pid)
    assert kv.get("version") == version, kv
    assert kv.get("free_threaded") == ("1" if free_threaded else "0"), kv
    assert int(kv["interp_head"], 16) != 0
    major, minor = map(int, version.split(".")[:2])
    if (major, minor) >= (3, 7):
        assert int(kv["runtime"], 16) != 0
    else:
        # 2.7/3.6 keep the GIL holder in _PyThreadState_Current.
        assert int(kv["runtime"], 16) == 0
        assert int(kv["tstate_current"], 16) != 0
    # The interpreter lives in libpython for --enable-shared builds and in
    # the executable itself for static ones.
    module = os.path.basename(kv["module"])
    if "static" in name or name == "debian-python3" or name.startswith("sid-"):
        assert module.startswith("python"), kv
    else:
        assert module.startswith("libpython"), kv
    if (major, minor) >= (3, 11):
        assert kv["version_source"] == "Py_Version", kv
    # 3.13+ publish their offsets; the generated map of where each sits in
    # _Py_DebugOffsets must read them back as plausible.
    assert kv["debug_offsets"] == ("1" if (major, minor) >= (3, 13) else "0"), kv
    # A target of exactly the release whose headers made the built-in table
    # publishes exactly the table's offsets.
    family = f"{major}.{minor}" + ("t" if free_threaded else "")
    if (family, version) in table_versions():
        assert kv["layout_diff"] == "", kv


@pytest.mark.parametrize("name,exe", INTERPRETERS, ids=[n for n, _ in INTERPRETERS])
def test_without_symbols(name, exe):
    need(exe)
    version, free_threaded = facts(exe)
    with sleeping(exe) as pid:
        with_syms = probe(pid)
        kv = probe(pid, nosyms=True)
    # Same interpreter, found by scanning; the exact version read from the
    # target's data, not from its file name.
    assert kv.get("version") == version, kv
    assert kv.get("free_threaded") == ("1" if free_threaded else "0"), kv
    assert kv["interp_head"] == with_syms["interp_head"], (kv, with_syms)
    assert kv["runtime"] == with_syms["runtime"], (kv, with_syms)
    assert kv["version_source"] in ("_Py_DebugOffsets", "version string"), kv


def capture_binary():
    path = get_bin_dir() / "pyspy-capture"
    if not path.exists():
        pytest.skip(f"{path} is not built")
    return path


# Where the interpreters' files are: a snapshot that lacks their pages is
# read on a host without them only when these are hidden (with them, the
# pages are read from the files, which is right, but not what is tested).
HIDE_DIRS = ["/root/.pyenv", "/opt/pyspy-pythons", "/var/cache/pyspy-pythons"]
HIDE_FILES = ["/usr/bin/python3.11", "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"]


def probe_file(path, hide=False):
    env = dict(os.environ, PYSPY_PROBE_FILE=str(path))
    env.pop("PYSPY_PROBE_PID", None)
    cmd = [str(probe_binary())]
    if hide:
        script = ["set -e"]
        script += ["mount -t tmpfs -o ro,size=4k pyspy-hidden %s" % d
                   for d in HIDE_DIRS if os.path.isdir(d)]
        script += ["mount --bind /dev/null %s" % f
                   for f in HIDE_FILES if os.path.isfile(f) and not os.path.islink(f)]
        script.append('exec "$@"')
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
               "\n".join(script), "sh"] + cmd
    res = subprocess.run(cmd, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return dict(line.split("=", 1) for line in res.stdout.splitlines()
                if "=" in line and not line.startswith(("ok", "not ok", "#")))


@pytest.mark.parametrize("name,exe", INTERPRETERS, ids=[n for n, _ in INTERPRETERS])
def test_snapshot_without_readonly_file_mappings(name, exe, tmp_path):
    """coredump_filter 0x33 leaves out file-backed mappings the process never
    wrote to (.text, .rodata: Py_Version among them); the version must then
    come from the target's data."""
    need(exe)
    version, free_threaded = facts(exe)
    snap = tmp_path / "s.core.zst"
    with sleeping(exe) as pid:
        live = probe(pid)
        subprocess.run([str(capture_binary()), "--pid", str(pid), "--filter", "33",
                        "--hideprogress", "-o", str(snap)],
                       check=True, capture_output=True, timeout=300)
    kv = probe_file(snap, hide=True)
    assert kv.get("version") == version, kv
    assert kv.get("free_threaded") == ("1" if free_threaded else "0"), kv
    assert kv["interp_head"] == live["interp_head"]
    assert kv["runtime"] == live["runtime"]
    assert kv["version_source"] in ("_Py_DebugOffsets", "version string"), kv
