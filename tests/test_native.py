"""pyspy dump --native on real interpreters: native frames unwound with
libdw through the memory source, merged with the Python frames where the
eval loop stood. A sleeping thread shows libc's sleep at the top, the
callback from sorted() shows the sort's C frames between keyfn and its
caller, and a snapshot of the same process gives the same stacks."""
import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import find_tool

PYENV = os.environ.get('PYENV_ROOT', '/root/.pyenv')
TIMEOUT = 120

PROGRAM = r'''
import sys, threading, time

def sleeper():
    while True:
        time.sleep(1000)

def keyfn(x):
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    time.sleep(1000)
    return x

def outer():
    sorted([3, 1], key=keyfn)

t = threading.Thread(target=sleeper, name="sleeper")
t.daemon = True
t.start()
outer()
'''

SLEEPS = ('clock_nanosleep', 'nanosleep', 'select', '__select')


def interpreters():
    out = [pytest.param('/usr/bin/python3', id='system-python3')]
    for v in ('3.11.7', '3.12.1', '3.13.0', '3.10.13', '3.9.18', '3.8.18',
              '3.7.16', '3.6.15', '2.7.18'):
        d = os.path.join(PYENV, 'versions', v, 'bin')
        exe = next((os.path.join(d, n) for n in ('python3', 'python2')
                    if os.access(os.path.join(d, n), os.X_OK)),
                   os.path.join(d, 'python'))
        out.append(pytest.param(exe, id=v))
    return out


@pytest.fixture
def target(request, tmp_path):
    exe = request.param
    if not os.access(exe, os.X_OK):
        pytest.skip(f'{exe} is not installed')
    prog = tmp_path / 'native_prog.py'
    prog.write_text(PROGRAM)
    p = subprocess.Popen([exe, str(prog)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    try:
        assert p.stdout.readline().strip() == 'ready'
        yield p
    finally:
        p.kill()
        p.wait()


def dump_json(*args):
    r = subprocess.run([str(find_tool('pyspy')), 'dump', '--native',
                        '--json', *map(str, args)],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def settled_dump(*args):
    """The sleeper thread may still be on its way into time.sleep: dump
    until both threads sit in their sleep."""
    for _ in range(50):
        threads = dump_json(*args)
        if len(threads) == 2 and all(
                any(f['name'] in SLEEPS for f in t['frames'][:3])
                for t in threads):
            return threads
        time.sleep(0.1)
    return threads


def by_name(threads):
    return {t.get('thread_name'): t['frames'] for t in threads}


def names(frames):
    return [f['name'] for f in frames]


def check_stacks(threads):
    stacks = by_name(threads)
    assert set(stacks) >= {'MainThread', 'sleeper'}, stacks.keys()
    for tname, frames in stacks.items():
        native = [f for f in frames if f['module']]
        python = [f for f in frames if not f['module']]
        assert native, f'{tname}: no native frames'
        for f in native:
            assert f['line'] == 0
            assert f['filename'] == f['module']
            assert f['filename'].startswith('/'), f
        # innermost first: libc's sleep above every Python frame
        first_py = frames.index(python[0])
        assert any(f['name'] in SLEEPS and 'libc' in f['module']
                   for f in frames[:first_py]), names(frames)
        # the eval loop is replaced, never shown
        assert not any('EvalFrame' in n for n in names(frames)), names(frames)
    main = names(stacks['MainThread'])
    k, o, m = main.index('keyfn'), main.index('outer'), main.index('<module>')
    assert k < o < m, main
    # the C frames of sorted() sit between the key callback and its caller
    between = stacks['MainThread'][k + 1:o]
    assert between and all(f['module'] for f in between), main
    sl = names(stacks['sleeper'])
    # 2.7 names it __bootstrap
    s = sl.index('sleeper')
    b = max(i for i, n in enumerate(sl) if n.endswith('_bootstrap'))
    assert s < sl.index('run') < b, sl
    # the thread's start routine is outside (after) its Python frames
    assert 'start_thread' in sl[b + 1:], sl
    return stacks


def strip_names(frames):
    return [(f['name'], f['module'], f['line']) for f in frames]


@pytest.mark.parametrize('target', interpreters(), indirect=True)
def test_native_live_and_snapshot(target, tmp_path):
    live = check_stacks(settled_dump('--pid', target.pid))
    snap = tmp_path / 's.core.zst'
    r = subprocess.run([str(find_tool('pyspy-capture')), '--pid',
                        str(target.pid), '-o', str(snap)],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    offline = check_stacks(dump_json(snap))
    # the process slept through both: the same stacks, frame for frame
    for tname in ('MainThread', 'sleeper'):
        assert strip_names(offline[tname]) == strip_names(live[tname])


@pytest.mark.parametrize('target', interpreters()[:1], indirect=True)
def test_native_text_output(target):
    r = subprocess.run([str(find_tool('pyspy')), 'dump', '--native',
                        '--pid', str(target.pid)],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert '(libc.so.6)' in r.stdout, r.stdout
    assert 'keyfn (native_prog.py:' in r.stdout, r.stdout


def test_native_refused_with_nonblocking():
    r = subprocess.run([str(find_tool('pyspy')), 'dump', '--native',
                        '--nonblocking', '--pid', str(os.getpid())],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode != 0


def test_native_snapshot_of_a_binary_gone_from_this_host(tmp_path):
    """The interpreter's file is deleted after the snapshot: its unwind
    tables and symbols come from the ELF image rebuilt out of the
    snapshot's memory, and the stacks are the same as with the file."""
    if not os.access('/usr/bin/python3.11', os.X_OK):
        pytest.skip('/usr/bin/python3.11 is not installed')
    exe = tmp_path / 'gone' / 'python3.11'
    exe.parent.mkdir()
    exe.write_bytes(open('/usr/bin/python3.11', 'rb').read())
    exe.chmod(0o755)
    prog = tmp_path / 'native_prog.py'
    prog.write_text(PROGRAM)
    p = subprocess.Popen([str(exe), str(prog)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    try:
        assert p.stdout.readline().strip() == 'ready'
        settled_dump('--pid', p.pid)
        snap = tmp_path / 's.core.zst'
        r = subprocess.run([str(find_tool('pyspy-capture')), '--pid',
                            str(p.pid), '-o', str(snap)],
                           capture_output=True, text=True, timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
    finally:
        p.kill()
        p.wait()
    with_file = check_stacks(dump_json(snap))
    exe.unlink()
    without = check_stacks(dump_json(snap))
    for tname in ('MainThread', 'sleeper'):
        assert strip_names(without[tname]) == strip_names(with_file[tname])


BUSY = r'''
import sys, time
def keyfn(x):
    t = time.time()
    while time.time() - t < 0.01:
        pass
    return x
def outer():
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        sorted(range(50), key=keyfn)
outer()
'''


def test_native_record_raw(tmp_path):
    """record --native: the C frames of sorted() sit between outer and
    keyfn in every sample that holds keyfn, outermost first as flamegraph
    lines are; the eval loop never shows."""
    exe = os.path.join(PYENV, 'versions', '3.12.1', 'bin', 'python3')
    if not os.access(exe, os.X_OK):
        pytest.skip(f'{exe} is not installed')
    prog = tmp_path / 'busy.py'
    prog.write_text(BUSY)
    p = subprocess.Popen([exe, str(prog)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    out = tmp_path / 'rec.txt'
    try:
        assert p.stdout.readline().strip() == 'ready'
        r = subprocess.run([str(find_tool('pyspy')), 'record', '--native',
                            '-d', '2', '-r', '20', '-f', 'raw', '-o', str(out),
                            '--pid', str(p.pid)],
                           capture_output=True, text=True, timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
    finally:
        p.kill()
        p.wait()
    lines = [l for l in out.read_text().splitlines() if 'keyfn (' in l]
    assert lines, out.read_text()
    for line in lines:
        stack = [f.split(' (')[0] for f in line.rsplit(' ', 1)[0].split(';')]
        assert not any('EvalFrame' in f for f in stack), stack
        o, k = stack.index('outer'), stack.index('keyfn')
        assert 'builtin_sorted' in stack[o + 1:k], stack


CPP = r'''
namespace pyspy_test {
struct Runner {
    __attribute__((noinline)) static void run(void (*cb)()) { cb(); }
};
}
extern "C" void run_cb(void (*cb)()) { pyspy_test::Runner::run(cb); }
'''

CPP_PROGRAM = r'''
import ctypes, sys, time
lib = ctypes.CDLL(sys.argv[1])
@ctypes.CFUNCTYPE(None)
def callback():
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    time.sleep(1000)
def caller():
    lib.run_cb(callback)
caller()
'''


def test_native_cpp_frames_are_demangled(tmp_path):
    """A ctypes callback through a C++ library: its frame is shown
    demangled, between the callback and the Python code that called in."""
    if not shutil.which('g++'):
        pytest.skip('g++ is not installed')
    src = tmp_path / 'runner.cpp'
    src.write_text(CPP)
    lib = tmp_path / 'librunner.so'
    subprocess.run(['g++', '-O1', '-g', '-fPIC', '-shared', str(src), '-o',
                    str(lib)], check=True, timeout=TIMEOUT)
    prog = tmp_path / 'cpp_prog.py'
    prog.write_text(CPP_PROGRAM)
    p = subprocess.Popen(['/usr/bin/python3', str(prog), str(lib)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True)
    try:
        assert p.stdout.readline().strip() == 'ready'
        threads = dump_json('--pid', p.pid)
    finally:
        p.kill()
        p.wait()
    frames = threads[0]['frames']
    got = names(frames)
    name = 'pyspy_test::Runner::run(void (*)())'
    assert name in got, got
    at = got.index(name)
    assert got.index('callback') < at < got.index('caller'), got
    assert frames[at]['module'] == str(lib)
