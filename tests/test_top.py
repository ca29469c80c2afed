"""`pyspy top` in a real terminal (tmux): the screen, the keys, and the
terminal put back after q, Ctrl-C and the target's exit."""
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from conftest import find_tool

# The profiled interpreter (the system one unless a test run says).
TARGET_PYTHON = os.environ.get("PYSPY_TEST_PYTHON", "/usr/bin/python3")

PROGRAM = """\
import sys
def busy_top():
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    x = 0
    while True:
        x += 1
busy_top()
"""

pytestmark = pytest.mark.skipif(not shutil.which("tmux"),
                                reason="tmux is not installed")


def tmux(*args, check=True):
    return subprocess.run(["tmux", *args], capture_output=True, text=True,
                          check=check)


def screen(session):
    return tmux("capture-pane", "-p", "-t", session).stdout


def wait_screen(session, pattern, timeout=30):
    end = time.monotonic() + timeout
    while True:
        text = screen(session)
        if re.search(pattern, text, re.M):
            return text
        if time.monotonic() > end:
            raise AssertionError(f"never saw {pattern!r}:\n{text}")
        time.sleep(0.2)


@pytest.fixture
def target(tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text(PROGRAM)
    proc = subprocess.Popen([TARGET_PYTHON, str(prog)],
                            stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    proc.stdout.close()


@pytest.fixture
def session(tmp_path, target):
    name = f"pyspy-top-{os.getpid()}-{time.monotonic_ns()}"
    top = find_tool("pyspy")
    # After top ends, the shell reports its status and the terminal mode
    # (icanon/echo must be back on).
    # The shell ignores Ctrl-C so it outlives top (top installs its own
    # handler, which replaces the inherited "ignore").
    script = (f"trap '' INT; {top} top --pid {target.pid} --delay 0.5; "
              "echo EXIT=$?; stty -a | tr ' ' '\\n' | "
              "grep -E '^-?(icanon|echo)$' | tr '\\n' ' '; echo; "
              "sleep 60")
    tmux("new-session", "-d", "-s", name, "-x", "160", "-y", "40",
         "sh", "-c", script)
    yield name
    tmux("kill-session", "-t", name, check=False)


def test_screen_and_keys(session, target):
    text = wait_screen(session, r"busy_top \(prog\.py\)")
    assert re.search(r"Collecting samples from '.*prog\.py.*' "
                     r"\(python v3\.\d+\.\d+\)", text), text
    assert re.search(r"^Total Samples \d+", text, re.M), text
    assert re.search(r"^GIL: [\d.]+%, Active: [\d.]+%, Threads: 1", text,
                     re.M), text
    assert re.search(r"%Own\s+%Total\s+OwnTime\s+TotalTime\s+"
                     r"Function \(filename\)", text), text
    row = re.search(r"^\s*([\d.]+)%\s+([\d.]+)%\s+([\d.]+)s\s+([\d.]+)s\s+"
                    r"busy_top \(prog\.py\)", text, re.M)
    assert row, text
    assert float(row.group(2)) > 50  # on the stack in most samples
    # L: per line.
    tmux("send-keys", "-t", session, "L")
    text = wait_screen(session, r"Function \(filename:line\)")
    assert re.search(r"busy_top \(prog\.py:[56]\)", text), text
    # ?: help, x: back.
    tmux("send-keys", "-t", session, "?")
    text = wait_screen(session, r"Keyboard Shortcuts")
    assert "Toggle between aggregating by line number" in text
    tmux("send-keys", "-t", session, "x")
    wait_screen(session, r"Press Control-C to quit, or \? for help")
    # R: statistics restart from zero.
    # Counts only grow without a reset: once well past 200 samples, R
    # must bring a screen whose total is below the last one seen before
    # it, however late the screen refreshes on a loaded machine.
    text = wait_screen(session, r"Total Samples ([2-9]\d\d|\d{4,})", timeout=60)
    before = int(re.search(r"Total Samples (\d+)", text).group(1))
    tmux("send-keys", "-t", session, "R")
    end = time.monotonic() + 60
    while True:
        text = screen(session)
        m = re.search(r"Total Samples (\d+)", text)
        if m and int(m.group(1)) < before:
            break
        assert time.monotonic() < end, (before, text)
        time.sleep(0.2)
    # 1..4 pick the sort column; the screen keeps working.
    for key in "1234":
        tmux("send-keys", "-t", session, key)
    wait_screen(session, r"busy_top \(prog\.py")
    # q quits with status 0 and the terminal back in canonical mode.
    tmux("send-keys", "-t", session, "q")
    text = wait_screen(session, r"EXIT=\d+\s*\n.*(icanon|echo)")
    assert "EXIT=0" in text, text
    assert re.search(r"^icanon echo\s*$", text, re.M), text
    assert "Total Samples" not in text  # the alternate screen is gone


def test_ctrl_c_restores_terminal(session):
    wait_screen(session, r"busy_top \(prog\.py\)")
    tmux("send-keys", "-t", session, "C-c")
    text = wait_screen(session, r"EXIT=\d+\s*\n.*(icanon|echo)")
    assert "EXIT=0" in text, text
    assert re.search(r"^icanon echo\s*$", text, re.M), text


def test_target_exit_ends_top(session, target):
    wait_screen(session, r"busy_top \(prog\.py\)")
    target.kill()
    target.wait()
    text = wait_screen(session, r"EXIT=\d+\s*\n.*(icanon|echo)")
    assert f"process {target.pid} ended" in text, text
    assert "EXIT=0" in text
    assert re.search(r"^icanon echo\s*$", text, re.M), text
