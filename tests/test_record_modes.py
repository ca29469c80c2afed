"""record --gc and --mode (issue 16 items 4 and 5) on real programs.

--gc: a sample of the thread running a garbage collection (a __del__ that
spins inside gc.collect()) ends in a <GC> frame, live and offline from
snapshots taken before and during the collection; without --gc nothing
changes. --mode: exception keeps only threads handling an exception
(running or idle, in an except block or in a generator run from one),
wall keeps every thread as --idle does, gil one thread a tick as --gil
does, cpu is the default (the same snapshots give the same output by
mode or by py-spy's flag)."""
import os
import signal
import subprocess
import time

import pytest

from conftest import find_tool
# The program whose __del__ spins inside gc.collect() (mode "spin"), the
# interpreters and the version check of the dump tests.
from test_gc_state import PROGRAM as GC_PROGRAM
from test_gc_state import interpreters, need_gc_state, wait_for

TIMEOUT = 120

EXC_PROGRAM = r'''
import os, sys, threading, time

def in_except_busy():
    try:
        raise ValueError("x")
    except ValueError:
        while True:
            pass

def outside_busy():
    while True:
        pass

def in_except_idle():
    try:
        raise KeyError("k")
    except KeyError:
        while True:
            time.sleep(0.05)

def handled_then_idle():
    try:
        raise OSError("o")
    except OSError:
        pass
    while True:
        time.sleep(0.05)

def gen():
    while True:
        time.sleep(0.05)
        yield

def generator_in_except():
    try:
        raise IndexError("i")
    except IndexError:
        for _ in gen():
            pass

started = []
for f in (in_except_busy, outside_busy, in_except_idle, handled_then_idle,
          generator_in_except):
    t = threading.Thread(target=f, name=f.__name__)
    t.daemon = True
    t.start()
# Every thread is in its loop once it has run a little.
time.sleep(0.5)
with open(sys.argv[1] + ".tmp", "w") as fh:
    fh.write(str(os.getpid()))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    time.sleep(0.05)
'''

THREAD_FUNCS = {'in_except_busy', 'outside_busy', 'in_except_idle',
                'handled_then_idle', 'generator_in_except'}


def need(exe):
    if not os.access(exe, os.X_OK):
        pytest.skip('interpreter %s is not installed' % exe)


def start(exe, program, tmp_path, *args):
    prog = tmp_path / 'prog.py'
    prog.write_text(program)
    return subprocess.Popen([exe, str(prog)] + [str(a) for a in args], cwd=str(tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run(args):
    r = subprocess.run([str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    return r


def record_raw(tmp_path, args, name):
    out = tmp_path / name
    run([find_tool('pyspy'), 'record', '-f', 'raw', '--hideprogress', '-o', out] + args)
    stacks = []
    for line in out.read_text().splitlines():
        stack, count = line.rsplit(' ', 1)
        stacks.append((stack.split(';'), int(count)))
    assert stacks, 'nothing recorded'
    return stacks


def function_of(frames):
    """The label's function name of the frame that names the thread."""
    names = [f.split(' (')[0] for f in frames]
    hit = [n for n in names if n in THREAD_FUNCS]
    return hit[0] if hit else names[-1]


@pytest.mark.parametrize('exe', interpreters())
def test_record_gc_frames(exe, tmp_path):
    need_gc_state(exe)
    flag = tmp_path / 'f'
    proc = start(exe, GC_PROGRAM, tmp_path, 'spin', flag)
    try:
        wait_for(str(flag) + '.ready', proc)
        before = tmp_path / 'before.core.zst'
        run([find_tool('pyspy-capture'), '--pid', proc.pid, '-o', before])
        os.kill(proc.pid, signal.SIGUSR1)
        wait_for(str(flag) + '.collecting', proc)
        during = tmp_path / 'during.core.zst'
        run([find_tool('pyspy-capture'), '--pid', proc.pid, '-o', during])
        # Offline: the snapshot taken during the collection has <GC> on
        # top of __del__, the one before has none; the waiting thread never.
        stacks = record_raw(tmp_path, ['--gc', '--idle', before, during], 'off.txt')
        gc_stacks = [s for s, _ in stacks if s[-1] == '<GC>']
        assert len(gc_stacks) == 1, stacks
        assert gc_stacks[0][-2].startswith('__del__ '), gc_stacks
        assert sum(c for _, c in stacks) == 4, stacks
        assert all('<GC>' not in s[:-1] for s, _ in stacks), stacks
        # Live: every sample (the spinning collector; the waiter is idle)
        # ends in <GC>, and without --gc none does.
        stacks = record_raw(tmp_path, ['--gc', '-d', '1', '-r', '20', '--pid', proc.pid],
                            'live.txt')
        assert all(s[-1] == '<GC>' and s[-2].startswith('__del__ ') for s, _ in stacks), stacks
        stacks = record_raw(tmp_path, ['-d', '1', '-r', '20', '--pid', proc.pid], 'plain.txt')
        assert all('<GC>' not in s for s, _ in stacks), stacks
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize('exe', interpreters())
def test_record_modes(exe, tmp_path):
    need(exe)
    flag = tmp_path / 'ready'
    proc = start(exe, EXC_PROGRAM, tmp_path, flag)
    try:
        wait_for(flag, proc)
        pid = ['--pid', proc.pid, '-d', '1', '-r', '20']

        def functions(args, name):
            stacks = record_raw(tmp_path, pid + args, name)
            out = {}
            for frames, count in stacks:
                fn = function_of(frames)
                out[fn] = out.get(fn, 0) + count
            return out

        # Every sample of a thread handling an exception, idle or not; a
        # generator run inside an except block handles it too.
        want = {'in_except_busy', 'in_except_idle', 'generator_in_except'}
        got = functions(['--mode', 'exception'], 'exception.txt')
        assert set(got) == want, got
        wall = functions(['--mode', 'wall'], 'wall.txt')
        assert THREAD_FUNCS | {'<module>'} == set(wall), wall
        # The modes are py-spy's flags: the same snapshots give the same
        # output either way.
        snaps = []
        for i in range(3):
            snaps.append(tmp_path / ('s%d.core.zst' % i))
            run([find_tool('pyspy-capture'), '--pid', proc.pid, '-o', snaps[-1]])
        for mode, flags in (('wall', ['--idle']), ('gil', ['--gil']), ('cpu', [])):
            by_mode = record_raw(tmp_path, ['--mode', mode] + snaps, mode + '-off.txt')
            assert by_mode == record_raw(tmp_path, flags + snaps, mode + '-flag.txt'), mode
        off = record_raw(tmp_path, ['--mode', 'exception'] + snaps, 'exc-off.txt')
        assert {function_of(s) for s, _ in off} == want, off
        assert sum(c for _, c in off) == 3 * len(want), off
    finally:
        proc.kill()
        proc.wait()
