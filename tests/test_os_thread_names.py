"""Threads Python did not name (issue 16 item 6): a thread made by C
pthread_create (through ctypes, which calls back into Python) and a
_thread thread show the name they gave themselves (/proc comm) where
threading has none, live and from a snapshot taken by pyspy-capture; a
thread that never named itself (its comm is the one inherited from the
main thread) stays unnamed, as py-spy shows it, and threading's names
win over the kernel's."""
import json
import os
import re
import subprocess
import time

import pytest

from conftest import find_tool

PYENV = os.environ.get('PYENV_ROOT', '/root/.pyenv')
SID = os.environ.get('PYSPY_SID_PYTHONS', '/var/cache/pyspy-pythons/sid')
TIMEOUT = 120

PROGRAM = r'''
import ctypes, ctypes.util, os, sys, threading, time, _thread
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
PR_SET_NAME = 15
ready = []

def name_self(name):
    libc.prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)
    ready.append(name)

def in_c_thread():
    while True:
        time.sleep(3600)

CB = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)
def c_entry(arg):
    name_self(b"c-worker")
    in_c_thread()
cb = CB(c_entry)
handle = ctypes.c_ulong()
assert libc.pthread_create(ctypes.byref(handle), None, cb, None) == 0

def in_raw_thread():
    name_self(b"raw-worker")
    while True:
        time.sleep(3600)

def in_unnamed_thread():
    ready.append(b"unnamed")
    while True:
        time.sleep(3600)

def in_named_thread():
    name_self(b"kernel-name")
    while True:
        time.sleep(3600)

_thread.start_new_thread(in_raw_thread, ())
_thread.start_new_thread(in_unnamed_thread, ())
threading.Thread(target=in_named_thread, name="py-named").start()
while len(ready) < 4:
    time.sleep(0.01)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    time.sleep(0.05)
'''


def interpreters():
    out = [pytest.param('/usr/bin/python3', id='system-python3')]
    for v in ('3.8.18', '3.12.1', '3.13.0'):
        out.append(pytest.param(os.path.join(PYENV, 'versions', v, 'bin', 'python3'), id=v))
    for v in ('3.14', '3.15'):
        out.append(pytest.param(os.path.join(SID, 'python' + v), id='sid-' + v))
    return out


def comm(pid, tid):
    with open('/proc/%d/task/%d/comm' % (pid, tid)) as f:
        return f.read().strip()


@pytest.fixture(scope='module', params=interpreters())
def target(request, tmp_path_factory):
    exe = request.param
    if not os.access(exe, os.X_OK):
        pytest.skip('interpreter %s is not installed' % exe)
    d = tmp_path_factory.mktemp('threads')
    prog, flag = d / 'threads.py', d / 'ready'
    prog.write_text(PROGRAM)
    proc = subprocess.Popen([exe, str(prog), str(flag)], cwd=str(d),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not flag.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, 'program did not get ready'
            time.sleep(0.05)
        yield proc.pid, d
    finally:
        proc.kill()
        proc.wait()


def dump(args):
    r = subprocess.run([str(find_tool('pyspy')), 'dump'] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    return r.stdout.decode()


def by_function(doc):
    """innermost-but-sleep function name -> thread object"""
    out = {}
    for t in doc:
        names = [f['name'] for f in t['frames']]
        key = next((n for n in names if n.startswith('in_')), '<module>')
        out[key] = t
    return out


def check(doc, text, pid):
    threads = by_function(doc)
    assert set(threads) == {'<module>', 'in_c_thread', 'in_raw_thread',
                            'in_unnamed_thread', 'in_named_thread'}, threads.keys()
    want = {'<module>': 'MainThread', 'in_c_thread': 'c-worker',
            'in_raw_thread': 'raw-worker', 'in_unnamed_thread': None,
            'in_named_thread': 'py-named'}
    for fn, name in want.items():
        t = threads[fn]
        assert t['thread_name'] == name, (fn, t['thread_name'])
        # Any status: a thread may be caught waking up.
        line = r'^Thread %d \([^)]*\)%s$' % (
            t['os_thread_id'], re.escape(': "%s"' % name) if name else '')
        assert re.search(line, text, re.M), (line, text)
    # The names shown for unnamed threads are the kernel's.
    assert comm(pid, threads['in_c_thread']['os_thread_id']) == 'c-worker'
    assert comm(pid, threads['in_unnamed_thread']['os_thread_id']) == comm(pid, pid)


def test_live(target):
    pid, _ = target
    check(json.loads(dump(['--pid', pid, '--json'])), dump(['--pid', pid]), pid)


def test_snapshot(target):
    pid, d = target
    snap = d / 'threads.core.zst'
    r = subprocess.run([str(find_tool('pyspy-capture')), '--pid', str(pid), '-o', str(snap)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr.decode()
    check(json.loads(dump([snap, '--json'])), dump([snap]), pid)
