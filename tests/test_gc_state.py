"""GC state (issue 16 item 4): while a garbage collection runs, dump says
so for the process (text: a "Garbage collection running" line; JSON:
process_info.gc_collecting) and for the thread running it (text: ", gc"
after the status word in the thread line's parenthesis, as "crashed" and
"incomplete" go; JSON: gc_collecting), read from the
collector's own state, live and from a snapshot taken by pyspy-capture.
Outside a collection nothing changes py-spy's output. The program's
__del__ blocks inside gc.collect(): sleeping (the GIL released) as the
only thread, spinning (the GIL held) beside a waiting thread, and sleeping
beside a waiting thread, where only 3.15's gc.frame names the collecting
thread. A kernel core of a program whose __del__ aborts inside
gc.collect() says the same."""
import glob
import json
import os
import re
import resource
import signal
import subprocess
import time

import pytest

from conftest import find_tool

PYENV = os.environ.get('PYENV_ROOT', '/root/.pyenv')
SID = os.environ.get('PYSPY_SID_PYTHONS', '/var/cache/pyspy-pythons/sid')
TIMEOUT = 120

PROGRAM = r'''
import gc, os, signal, sys, threading, time
mode, flag = sys.argv[1], sys.argv[2]
go = []
signal.signal(signal.SIGUSR1, lambda *a: go.append(1))

def publish(path):
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(path + ".tmp", path)

class Blocker(object):
    def __del__(self):
        publish(flag + ".collecting")
        if mode == "abort":
            os.abort()
        if mode == "spin":
            while True:
                pass
        while True:
            time.sleep(3600)

def collect():
    b = Blocker()
    b.cycle = b
    del b
    gc.collect()

def waiter(ev):
    ev.wait()

gc.disable()
if mode not in ("alone", "abort"):
    ev = threading.Event()
    threading.Thread(target=waiter, args=(ev,), name="waiter").start()
publish(flag + ".ready")
while not go:
    time.sleep(0.02)
collect()
'''


def interpreters():
    out = [pytest.param('/usr/bin/python3', id='system-python3')]
    for v in ('3.6.15', '3.8.18', '3.12.1', '3.13.0'):
        out.append(pytest.param(os.path.join(PYENV, 'versions', v, 'bin', 'python3'), id=v))
    for v in ('3.14', '3.15'):
        out.append(pytest.param(os.path.join(SID, 'python' + v), id='sid-' + v))
    return out


def run(args):
    r = subprocess.run([str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    return r.stdout.decode()


def dumps(target):
    return run([find_tool('pyspy'), 'dump'] + target), \
        json.loads(run([find_tool('pyspy'), 'dump', '--json'] + target))


def wait_for(path, proc):
    deadline = time.monotonic() + TIMEOUT
    while not os.path.exists(path):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, 'program did not reach ' + path
        time.sleep(0.05)


def version_of(exe):
    out = subprocess.run([exe, '-c', 'import sys; print(sys.version_info[1])'],
                         stdout=subprocess.PIPE, timeout=TIMEOUT).stdout
    return int(out)


def need_gc_state(exe):
    """The interpreter's minor version; skips where it is missing or
    keeps no collector state a table can reach."""
    if not os.access(exe, os.X_OK):
        pytest.skip('interpreter %s is not installed' % exe)
    minor = version_of(exe)
    if minor < 7:
        pytest.skip('3.%d keeps the collector state in statics of gcmodule.c, '
                    'which no table can reach' % minor)
    return minor


def check_collecting(text, doc, collector_told):
    assert all(t['process_info'].get('gc_collecting') is True for t in doc), doc
    main = [t for t in doc if t['thread_name'] == 'MainThread']
    others = [t for t in doc if t['thread_name'] != 'MainThread']
    assert len(main) == 1 and main[0]['frames'][0]['name'] == '__del__', main
    assert all('gc_collecting' not in t for t in others), others
    lines = [l for l in text.splitlines() if l.startswith('Thread ')]
    main_line = [l for l in lines if l.endswith('"MainThread"')]
    assert len(main_line) == 1, lines
    if collector_told:
        assert main[0].get('gc_collecting') is True, main
        assert 'Garbage collection running\n' in text, text
        assert re.match(r'Thread \d+ \((idle|active|active\+gil)(, crashed: SIGABRT)?, gc\): '
                        r'"MainThread"$',
                        main_line[0]), main_line
    else:
        assert 'gc_collecting' not in main[0], main
        assert 'Garbage collection running (on a thread that cannot be told)\n' in text
        assert ', gc)' not in text
    assert sum(', gc)' in l for l in lines) == (1 if collector_told else 0), lines


@pytest.mark.parametrize('mode', ['alone', 'spin', 'beside'])
@pytest.mark.parametrize('exe', interpreters())
def test_collection_running(exe, mode, tmp_path):
    minor = need_gc_state(exe)
    prog, flag = tmp_path / 'gcprog.py', str(tmp_path / 'f')
    prog.write_text(PROGRAM)
    proc = subprocess.Popen([exe, str(prog), mode, flag], cwd=str(tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(flag + '.ready', proc)
        text, doc = dumps(['--pid', proc.pid])
        assert 'Garbage collection' not in text and ', gc)' not in text, text
        assert all('gc_collecting' not in t and 'gc_collecting' not in t['process_info']
                   for t in doc), doc
        os.kill(proc.pid, signal.SIGUSR1)
        wait_for(flag + '.collecting', proc)
        # The collector thread is told by the GIL it holds, by being the
        # only thread, or (3.15+) by the frame that started the collection.
        told = mode != 'beside' or minor >= 15
        text, doc = dumps(['--pid', proc.pid])
        check_collecting(text, doc, told)
        snap = tmp_path / 'gc.core.zst'
        run([find_tool('pyspy-capture'), '--pid', proc.pid, '-o', snap])
        text, doc = dumps([snap])
        check_collecting(text, doc, told)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize('exe', interpreters())
def test_kernel_core_mid_collection(exe, tmp_path):
    need_gc_state(exe)
    with open('/proc/sys/kernel/core_pattern') as f:
        pattern = f.read().strip()
    if pattern.startswith('|') or pattern.startswith('/'):
        pytest.skip('core_pattern is %r: the kernel does not write cores '
                    'into the working directory' % pattern)
    prog, flag = tmp_path / 'gcprog.py', str(tmp_path / 'f')
    prog.write_text(PROGRAM)

    def unlimited():
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,
                                                  resource.RLIM_INFINITY))
    proc = subprocess.Popen([exe, str(prog), 'abort', flag], cwd=str(tmp_path),
                            preexec_fn=unlimited, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        wait_for(flag + '.ready', proc)
        os.kill(proc.pid, signal.SIGUSR1)
        assert proc.wait(timeout=TIMEOUT) == -signal.SIGABRT
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    deadline = time.monotonic() + TIMEOUT
    cores = []
    while not cores and time.monotonic() < deadline:
        cores = glob.glob(str(tmp_path / 'core*'))
        time.sleep(0.05)
    if not cores:
        pytest.skip('no core was written (core_pattern %r)' % pattern)
    text, doc = dumps([cores[0]])
    check_collecting(text, doc, True)
