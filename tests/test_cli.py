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
                "--full-filenames", "--capture", "--hideprogress", "--jobs",
                "--mode", "--gc"]


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
    (["record", "-o", "out.svg", "--native", "--nonblocking"], "--pid"),
    (["record", "--function", "--nolineno"], "--pid"),
    (["dump", "--", "python3", "x.py"], "'python3'"),
    (["dump", "-p", "1", "--", "python3", "x.py"], "'python3'"),
    (["completions", "tcsh"], "bash, elvish, fish, powershell, zsh"),
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


@pytest.mark.parametrize("args, message", [
    (["record", "-p", "1", "--function", "--nolineno"],
     "--function & --nolinenos can't be used together"),
    (["record", "-p", "1", "-o", "out.svg", "--native", "--nonblocking"],
     "Can't get native stack traces with the --nonblocking option."),
    (["top", "-p", "1", "-n", "--nonblocking"],
     "Can't get native stack traces with the --nonblocking option."),
    (["dump", "-p", "1", "--nonblocking", "--native"],
     "Can't get native stack traces with the --nonblocking option."),
])
def test_refused_after_parsing_exits_1(pyspy, tmp_path, args, message):
    """What py-spy refuses once clap has accepted the command line: its
    own line on stderr, no 'error:' and no help hint, and status 1."""
    r = run(pyspy, *args, cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert r.stdout == ""
    assert r.stderr == message + "\n"
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
    assert ("formats: flamegraph raw speedscope chrometrace pprof aggregate"
            in r.stdout)
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


def test_elvish_completion_completes(pyspy, tmp_path):
    """The script, eval'd in an interactive elvish (the edit: module
    exists only there, on a terminal), registers a completer for both
    names that offers options, formats, subcommands and shells."""
    import os
    import pty
    import select
    import time
    exe = shutil.which("elvish")
    if exe is None:
        pytest.skip("elvish is not installed (tools/ensure-deps installs "
                    "it)")
    out = tmp_path / "got"
    ac = "$edit:completion:arg-completer"
    lines = [f"eval ({pyspy} completions elvish | slurp)",
             f"{{ {ac}[pyspy] pyspy rec --fo; put =; "
             f"{ac}[pyspy] pyspy record -f ''; put =; "
             f"{ac}[pyspy] pyspy ''; put =; "
             f"{ac}[pyspy-analyze] pyspy-analyze com ''; put =; "
             f"{ac}[pyspy] pyspy dump -p '' }} | to-lines > {out}.part; "
             f"mv {out}.part {out}",
             "exit"]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(exe, [exe, "-norc"])
    try:
        os.write(fd, "".join(ln + "\r" for ln in lines).encode())
        deadline = time.monotonic() + 60
        seen = b""
        while not out.exists() and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(fd, 65536)
                except OSError:
                    break
        assert out.exists(), seen.decode(errors="replace")[-2000:]
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)
    groups = [g.split() for g in out.read_text().split("=\n")]
    assert "--format" in groups[0] and "--nolineno" in groups[0], groups
    assert "--locals" not in groups[0], groups
    assert groups[1] == ["flamegraph", "raw", "speedscope", "chrometrace",
                         "pprof", "aggregate"]
    assert {"record", "top", "dump", "completions"} <= set(groups[2])
    assert groups[3] == ["bash", "elvish", "fish", "powershell", "zsh"]
    assert groups[4] == []  # a pid is not completed


def ps_balanced(text):
    """Whether braces, parentheses and brackets nest in a PowerShell
    script, outside its quoted strings and comments."""
    stack, pairs, i = [], {")": "(", "}": "{", "]": "["}, 0
    while i < len(text):
        c = text[i]
        if c == "#" and (i == 0 or text[i - 1] in " \n"):
            i = text.find("\n", i)
            i = len(text) if i < 0 else i
            continue
        if c in "'\"":
            end = text.find(c, i + 1)
            while c == "'" and end >= 0 and text[end + 1:end + 2] == "'":
                end = text.find(c, end + 2)
            if end < 0:
                return False
            i = end + 1
            continue
        if c in "({[":
            stack.append(c)
        elif c in ")}]":
            if not stack or stack.pop() != pairs[c]:
                return False
        i += 1
    return not stack


def test_powershell_completion_script(pyspy):
    """PowerShell is not in Debian, so the script is only read here: it
    registers a native completer for both names, knows every subcommand
    prefix and every option, and its brackets nest."""
    r = run(pyspy, "completions", "powershell")
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert ("Register-ArgumentCompleter -Native -CommandName 'pyspy', "
            "'pyspy-analyze' -ScriptBlock {") in text
    assert "param($wordToComplete, $commandAst, $cursorPosition)" in text
    for prefix, sub in (("rec", "record"), ("t", "top"), ("du", "dump"),
                        ("completions", "completions")):
        assert f"'{prefix}' = '{sub}'" in text
    for flag in RECORD_FLAGS:
        assert f"'{flag}'" in text, flag
    assert ("'flamegraph', 'raw', 'speedscope', 'chrometrace', 'pprof', "
            "'aggregate'") in text
    assert ps_balanced(text)
    assert run(pyspy, "completions", "PowerShell").stdout == text


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
