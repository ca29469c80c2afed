"""The command lines of the built pyspy and pyspy-capture binaries."""
import re
import shutil
import subprocess

import pytest

from conftest import REPO, find_tool

VERSION = re.search(r'#define PYSPY_VERSION "([^"]+)"',
                    (REPO / "include" / "pyspy.h").read_text()).group(1)

RECORD_FLAGS = ["--pid", "--output", "--format", "--duration", "--rate",
                "--subprocesses", "--function", "--nolineno", "--threads",
                "--gil", "--idle", "--native", "--nonblocking",
                "--full-filenames", "--capture", "--hideprogress", "--jobs"]


def run(tool, *args, cwd=None, input=None):
    return subprocess.run([str(tool), *args], cwd=cwd, input=input,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def pyspy():
    return find_tool("pyspy")


@pytest.fixture
def capture():
    return find_tool("pyspy-capture")


def test_top_level_help(pyspy):
    r = run(pyspy, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.startswith(f"pyspy {VERSION}\n")
    assert "USAGE:" in r.stdout
    for sub in ("record", "top", "dump"):
        assert re.search(rf"^\s+{sub}\s+\S", r.stdout, re.M), sub
    assert run(pyspy, "-h").stdout == r.stdout


def test_version(pyspy):
    for flag in ("--version", "-V"):
        r = run(pyspy, flag)
        assert r.returncode == 0
        assert r.stdout == f"pyspy {VERSION}\n"
        assert r.stderr == ""


def test_record_help_lists_every_flag_and_default(pyspy):
    r = run(pyspy, "record", "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"pyspy-record {VERSION}\n")
    for flag in RECORD_FLAGS:
        assert flag in r.stdout, flag
    assert "[default: flamegraph]" in r.stdout
    assert "[default: unlimited]" in r.stdout
    assert "[default: 100]" in r.stdout


def test_subcommand_prefix(pyspy):
    full = run(pyspy, "record", "--help")
    short = run(pyspy, "rec", "--help")
    assert short.returncode == 0
    assert short.stdout == full.stdout
    du = run(pyspy, "du", "-h")
    assert du.returncode == 0 and "--locals" in du.stdout
    assert run(pyspy, "help", "top").stdout == run(pyspy, "top", "-h").stdout


@pytest.mark.parametrize("args, named", [
    (["record", "--foo", "-o", "out.svg", "-p", "1"], "'--foo'"),
    (["record", "-o", "out.svg", "--rate", "abc", "-p", "1"], "'abc'"),
    (["record", "-o", "out.svg", "-f", "svg", "-p", "1"], "'svg'"),
    (["record", "-o", "out.svg"], "--pid"),
    (["record", "-o", "out.svg", "-p", "1", "--native", "--nonblocking"],
     "--native"),
    (["top", "-p", "1", "--delay", "0"], "--delay"),
    (["dump"], "--pid"),
    (["dump", "-p", "0"], "'0'"),
    (["frobnicate"], "'frobnicate'"),
    ([], "subcommand"),
])
def test_bad_command_line(pyspy, tmp_path, args, named):
    r = run(pyspy, *args, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stdout == ""
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, r.stderr
    assert named in errors[0]
    assert r.stderr.splitlines()[0] == errors[0]
    assert list(tmp_path.iterdir()) == [], "nothing may be written on error"


def test_bad_flag_message_is_claps(pyspy, tmp_path):
    r = run(pyspy, "record", "--foo", cwd=tmp_path)
    assert r.stderr.splitlines()[0] == "error: unexpected argument '--foo' found"
    r = run(pyspy, "record", "-p", "1", "-r", "abc", cwd=tmp_path)
    assert r.stderr.splitlines()[0] == (
        "error: invalid value 'abc' for '--rate <rate>': "
        "invalid digit found in string")


def test_bash_completions_source_cleanly(pyspy):
    script = (f'source <("{pyspy}" completions bash) || exit 9\n'
              'complete -p pyspy || exit 8\n'
              'COMP_WORDS=(pyspy rec --fo); COMP_CWORD=2; _pyspy\n'
              'echo "opts: ${COMPREPLY[*]}"\n'
              "COMP_WORDS=(pyspy record -f ''); COMP_CWORD=3; _pyspy\n"
              'echo "formats: ${COMPREPLY[*]}"\n'
              "COMP_WORDS=(pyspy ''); COMP_CWORD=1; _pyspy\n"
              'echo "subs: ${COMPREPLY[*]}"\n')
    r = subprocess.run(["bash", "-c", script], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert "complete -o filenames -F _pyspy pyspy" in r.stdout
    assert "opts: --format" in r.stdout
    assert "formats: flamegraph raw speedscope chrometrace" in r.stdout
    subs = re.search(r"^subs: (.*)$", r.stdout, re.M).group(1).split()
    assert {"record", "top", "dump"} <= set(subs)


@pytest.mark.parametrize("shell, mark", [("zsh", "#compdef pyspy"),
                                         ("fish", "complete -c")])
def test_zsh_and_fish_completions(pyspy, tmp_path, shell, mark):
    r = run(pyspy, "completions", shell)
    assert r.returncode == 0, r.stderr
    assert mark in r.stdout
    assert "--nolineno" in r.stdout or "-l nolineno" in r.stdout
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} is not installed: only the script's content "
                    "was checked, not its syntax")
    path = tmp_path / f"pyspy.{shell}"
    path.write_text(r.stdout)
    check = subprocess.run([exe, "-n", str(path)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stderr


def test_zsh_completion_registers(pyspy, tmp_path):
    exe = shutil.which("zsh")
    if exe is None:
        pytest.skip("zsh is not installed")
    path = tmp_path / "_pyspy"
    path.write_text(run(pyspy, "completions", "zsh").stdout)
    r = subprocess.run([exe, "-f", "-c",
                        "autoload -U compinit; compinit -u -D; "
                        f"source {path}; "
                        "print -r -- ${_comps[pyspy]} ${_comps[pyspy-analyze]}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["_pyspy", "_pyspy"]


def test_fish_completion_offers_formats(pyspy, tmp_path):
    exe = shutil.which("fish")
    if exe is None:
        pytest.skip("fish is not installed")
    path = tmp_path / "pyspy.fish"
    path.write_text(run(pyspy, "completions", "fish").stdout)
    r = subprocess.run([exe, "-c", f"source {path}; "
                        "complete -C 'pyspy record --format '"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = {ln.split("\t")[0] for ln in r.stdout.splitlines()}
    assert {"flamegraph", "raw", "speedscope", "chrometrace"} <= got


def test_capture_help_and_version(capture):
    r = run(capture, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"pyspy-capture {VERSION}\n")
    for flag in ("--pid", "--output", "--nonblocking", "--already-locked",
                 "--core", "--subprocesses", "--hideprogress", "--filter",
                 "--rate", "--duration", "--memory-budget"):
        assert flag in r.stdout, flag
    for flag in ("--version", "-V"):
        v = run(capture, flag)
        assert v.returncode == 0
        assert v.stdout == f"pyspy-capture {VERSION}\n"


@pytest.mark.parametrize("args, named", [
    (["--bogus", "-p", "1"], "'--bogus'"),
    (["-p", "1", "-c", "x"], "--core"),
    ([], "--pid"),
    (["-p", "1", "--nonblocking", "--already-locked"], "--already-locked"),
    (["-p", "1", "--rate", "5"], "--duration"),
    (["-p", "1", "--filter", "zz"], "'zz'"),
])
def test_capture_bad_command_line(capture, tmp_path, args, named):
    r = run(capture, *args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    errors = [ln for ln in r.stderr.splitlines() if "error" in ln.lower()]
    assert len(errors) == 1, r.stderr
    assert named in errors[0]
    assert list(tmp_path.iterdir()) == [], "nothing may be written on error"
