"""Every kind of core shows what the live process shows. A program whose
threads sleep, spin, hold a lock, wait for it and sit in a callback from C
is dumped live (--pid), then from a pyspy-capture snapshot, a gdb gcore
core, that core compressed as systemd-coredump stores them, and the kernel's
own core when it is killed with SIGABRT; thread by thread the frames (name
and line, locals' names) must be the same. The one exception allowed is the
innermost line of the spinning thread, which moves. A gcore core of sid's
glibc lacks the thread stacks gdb could not read; there a stack may stop
early, but only marked as incomplete."""
import json
import os
import resource
import shutil
import signal
import subprocess
import time

import pytest

from conftest import find_tool

PYENV = os.environ.get('PYENV_ROOT', '/root/.pyenv')
SID = os.environ.get('PYSPY_SID_PYTHONS', '/var/cache/pyspy-pythons/sid')
TIMEOUT = 120

PROGRAM = r'''
import sys, threading, time
ready = sys.argv[1]
lock = threading.Lock()
parked = threading.Barrier(6)

def sleeper():
    parked.wait()
    while True:
        time.sleep(100)  # sleeper

def spinner():
    parked.wait()
    while True: pass

def holder():
    with lock:
        parked.wait()
        while True:
            time.sleep(100)  # holder

def waiter():
    parked.wait()
    time.sleep(0.2)
    lock.acquire()  # waiter

def key(value):
    if value == 2:
        parked.wait()
        time.sleep(1000)  # callback
    return value

def sorter():
    return sorted([3, 2, 1], key=key)

for f in (sleeper, spinner, holder, waiter, sorter):
    threading.Thread(target=f, name=f.__name__, daemon=True).start()
parked.wait()
time.sleep(0.5)
with open(ready + '.tmp', 'w') as out:
    out.write('ready')
import os
os.rename(ready + '.tmp', ready)
while True:
    time.sleep(100)  # main
'''


def interpreters():
    out = [pytest.param('/usr/bin/python3', id='debian-3.11')]
    for v in ('3.12.1', '3.13.0'):
        out.append(pytest.param(os.path.join(PYENV, 'versions', v, 'bin', 'python3'), id=v))
    for v in ('3.14', '3.15'):
        out.append(pytest.param(os.path.join(SID, 'python' + v), id='sid-' + v))
    return out


def run(args, ok=(0,), **kw):
    r = subprocess.run([str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=TIMEOUT, **kw)
    assert r.returncode in ok, '%s: exit %d: %s' % (
        ' '.join(map(str, args)), r.returncode, r.stderr.decode('utf-8', 'replace')[-3000:])
    return r


def wait_for(path, proc, deadline_s=60):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return
        assert proc.poll() is None, 'the program exited early (%s)' % proc.returncode
        time.sleep(0.05)
    pytest.fail('the program never got ready')


def frames_by_thread(doc):
    """thread name -> (incomplete, [(function, line, local names)])."""
    out = {}
    for t in doc:
        frames = [(f['name'], f['line'], tuple(l['name'] for l in (f.get('locals') or [])))
                  for f in t['frames']]
        out[t['thread_name'] or 'MainThread'] = (bool(t.get('incomplete')), frames)
    return out


def same_stacks(live, other, kind, may_lose_c_stacks=False):
    assert sorted(live) == sorted(other), '%s: threads %s, live %s' % (kind, sorted(other), sorted(live))
    for name, (_, want) in live.items():
        incomplete, got = other[name]
        if incomplete:
            assert may_lose_c_stacks and name != 'MainThread', \
                '%s: thread %s marked incomplete: %s' % (kind, name, got)
            assert got and got[-1][0].startswith('<'), '%s: %s lacks the marker' % (kind, name)
            got = got[:-1]
            want = want[:len(got)]
        if name == 'spinner':
            # its innermost line moves while it runs
            got = [(f, None if i == 0 else l, v) for i, (f, l, v) in enumerate(got)]
            want = [(f, None if i == 0 else l, v) for i, (f, l, v) in enumerate(want)]
        assert got == want, '%s: thread %s\n got  %s\n live %s' % (kind, name, got, want)


def kernel_core(proc, cores):
    """Kills the program with SIGABRT and returns the kernel's core of it.
    core_pattern is system-wide: it points into the test's folder only for
    this kill, and is restored."""
    pattern = '/proc/sys/kernel/core_pattern'
    try:
        with open(pattern) as f:
            saved = f.read().rstrip('\n')
        with open(pattern, 'w') as f:
            f.write(os.path.join(cores, 'core.%p'))
    except OSError as e:
        return None, 'cannot set %s (%s)' % (pattern, e)
    try:
        proc.send_signal(signal.SIGABRT)
        proc.wait(timeout=TIMEOUT)
        path = os.path.join(cores, 'core.%d' % proc.pid)
        deadline = time.monotonic() + 30
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        with open(pattern, 'w') as f:
            f.write(saved)
    if not os.path.exists(path):
        return None, 'the kernel wrote no core (status %s)' % proc.returncode
    # the kernel may still be writing it: wait until its size settles
    last = -1
    while os.path.getsize(path) != last:
        last = os.path.getsize(path)
        time.sleep(0.2)
    return path, None


@pytest.mark.parametrize('exe', interpreters())
def test_every_core_kind_shows_the_live_stacks(exe, tmp_path):
    if not os.path.exists(exe):
        pytest.skip('%s is not installed (sid: fixtures/get-sid-pythons)' % exe)
    if not shutil.which('gcore'):
        pytest.skip('gcore (gdb) is not installed')
    pyspy, capture = find_tool('pyspy'), find_tool('pyspy-capture')
    prog = tmp_path / 'parked.py'
    prog.write_text(PROGRAM)
    ready = str(tmp_path / 'ready')

    def allow_core():
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    proc = subprocess.Popen([exe, str(prog), ready], stdin=subprocess.DEVNULL,
                            preexec_fn=allow_core)
    kernel = None
    try:
        wait_for(ready, proc)
        live = frames_by_thread(json.loads(run([pyspy, 'dump', '--pid', proc.pid, '--json', '-l']).stdout))
        assert len(live) == 6, live
        snap = tmp_path / 'snap.core.zst'
        run([capture, '--pid', proc.pid, '-o', snap, '--hideprogress'])
        run(['gcore', '-o', tmp_path / 'core', proc.pid])
        gcore = tmp_path / ('core.%d' % proc.pid)
        cores = tmp_path / 'cores'
        cores.mkdir()
        kernel, why = kernel_core(proc, str(cores))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    zcore = tmp_path / 'gcore.zst'
    run(['zstd', '-q', '-3', gcore, '-o', zcore])
    sid = exe.startswith(SID)
    for kind, path, lossy in (('snapshot', snap, False), ('gcore', gcore, sid),
                              ('zstd gcore', zcore, sid), ('kernel core', kernel, False)):
        if path is None:
            continue
        r = run([pyspy, 'dump', '--json', '-l', path], ok=(0, 3))
        got = frames_by_thread(json.loads(r.stdout))
        same_stacks(live, got, kind, may_lose_c_stacks=lossy)
        # exit 3 exactly when some stack is marked incomplete
        assert (r.returncode == 3) == any(i for i, _ in got.values()), kind
        # offline record: one sample of every thread per file
        out = tmp_path / ('rec-%s.txt' % kind.replace(' ', '-'))
        rr = run([pyspy, 'record', '-f', 'raw', '--idle', '-o', out, '--hideprogress', path])
        assert b'Samples: 6 ' in rr.stdout + rr.stderr, rr.stdout + rr.stderr
    if kernel is None:
        pytest.skip('kernel core not checked: %s' % why)
