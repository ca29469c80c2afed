"""pyspy dump --native on real interpreters: native frames unwound with
libdw through the memory source, merged with the Python frames where the
eval loop stood. A sleeping thread shows libc's sleep at the top, the
callback from sorted() shows the sort's C frames between keyfn and its
caller, and a snapshot of the same process gives the same stacks."""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import find_tool, ready_process

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
    with ready_process([exe, prog], stderr=subprocess.DEVNULL) as p:
        yield p


def dump_json(*args, ok=(0,)):
    r = subprocess.run([str(find_tool('pyspy')), 'dump', '--native',
                        '--json', *map(str, args)],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode in ok, r.stderr
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




def test_native_offline_record_in_parallel(tmp_path):
    """Offline record --native over snapshots of one program: workers on
    two threads unwind in libdw sessions of their own, and the profile is
    the one a single worker makes, C frames of sorted() included."""
    exe = '/usr/bin/python3'
    prog = tmp_path / 'native_prog.py'
    prog.write_text(PROGRAM)
    p = subprocess.Popen([exe, str(prog)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    snaps = []
    try:
        assert p.stdout.readline().strip() == 'ready'
        settled_dump('--pid', p.pid)
        for i in range(6):
            snap = tmp_path / f's{i}.core.zst'
            r = subprocess.run([str(find_tool('pyspy-capture')), '--pid',
                                str(p.pid), '-o', str(snap)],
                               capture_output=True, text=True, timeout=TIMEOUT)
            assert r.returncode == 0, r.stderr
            snaps.append(str(snap))
    finally:
        p.kill()
        p.wait()
    outs = []
    for jobs in ('1', '2'):
        out = tmp_path / f'j{jobs}.txt'
        r = subprocess.run([str(find_tool('pyspy')), 'record', '--native',
                            '--idle', '-j', jobs, '-f', 'raw', '-o', str(out),
                            *snaps], capture_output=True, text=True,
                           timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        assert f'Samples: {2 * len(snaps)} Errors: 0' in r.stdout, r.stdout
        outs.append(out.read_text())
    assert outs[0] == outs[1]
    keyfn = [l for l in outs[0].splitlines() if 'keyfn (' in l]
    assert len(keyfn) == 1 and keyfn[0].endswith(f' {len(snaps)}'), outs[0]
    stack = keyfn[0].rsplit(' ', 1)[0].split(';')
    o = next(i for i, f in enumerate(stack) if f.startswith('outer ('))
    k = next(i for i, f in enumerate(stack) if f.startswith('keyfn ('))
    assert o < k - 1 and all('.py:' not in f for f in stack[o + 1:k]), stack


def open_file_ids(pid):
    """(st_dev, st_ino) of every file process pid holds open."""
    ids = set()
    d = f'/proc/{pid}/fd'
    for name in os.listdir(d):
        try:
            st = os.stat(os.path.join(d, name))
        except OSError:
            continue  # closed meanwhile
        ids.add((st.st_dev, st.st_ino))
    return ids


def test_native_record_opens_a_containers_files_in_its_root(tmp_path):
    """A target in its own mount namespace (as in a container) runs an
    interpreter from a path this host's namespace does not have. record
    --native, which walks through its per-sample page cache, opens that
    file where the target sees it, /proc/PID/root/..., rather than falling
    back to the module's image in memory: libdw keeps the file it was
    given open, so pyspy holds the target's very file."""
    if not os.access('/usr/bin/python3.11', os.X_OK):
        pytest.skip('/usr/bin/python3.11 is not installed')
    if os.geteuid() != 0 or not shutil.which('unshare'):
        pytest.skip('needs root and unshare for a mount namespace')
    inside = tmp_path / 'ns'
    inside.mkdir()  # empty here; a tmpfs with the interpreter inside
    prog = tmp_path / 'busy.py'
    prog.write_text(BUSY)
    script = (f'mount -t tmpfs none {inside} && '
              f'cp /usr/bin/python3.11 {inside}/python3 && '
              f'exec {inside}/python3 {prog}')
    p = subprocess.Popen(['unshare', '--mount', '--propagation', 'private',
                          'sh', '-c', script], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    rec = None
    out = tmp_path / 'rec.txt'
    try:
        line = p.stdout.readline().strip()
        if line != 'ready' and 'mount' in p.stderr.read():
            pytest.skip('cannot mount a tmpfs in a new mount namespace')
        assert line == 'ready'
        assert not (inside / 'python3').exists()
        st = os.stat(f'/proc/{p.pid}/root{inside}/python3')
        want = (st.st_dev, st.st_ino)
        rec = subprocess.Popen([str(find_tool('pyspy')), 'record', '--native',
                                '-d', '120', '-r', '20', '-f', 'raw', '-o',
                                str(out), '--pid', str(p.pid)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        deadline = time.monotonic() + 100
        held = False
        while not held and rec.poll() is None and time.monotonic() < deadline:
            held = want in open_file_ids(rec.pid)
            time.sleep(0.02)
        rec.send_signal(signal.SIGINT)
        _, err = rec.communicate(timeout=TIMEOUT)
        assert held, err
        assert rec.returncode == 0, err
    finally:
        if rec and rec.poll() is None:
            rec.kill()
            rec.wait()
        p.kill()
        p.wait()
    stacks = out.read_text()
    assert 'keyfn (busy.py' in stacks and '(libc.so.6)' in stacks, stacks


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


# Debian sid's 3.14 and 3.15 (fixtures/get-sid-pythons): static, stripped
# builds by a newer GCC whose eval loop runs mostly in the part it split
# off _PyEval_EvalFrameDefault (.cold, no symbol in a stripped binary), so
# the merge has to find the eval frames by where each invocation keeps
# its entry frame on the C stack, not by name.
SID = os.environ.get('PYSPY_SID_PYTHONS', '/var/cache/pyspy-pythons/sid')
STARTS = ('_start', '__libc_start_main', '__libc_start_call_main')


def sid_interpreters():
    return [pytest.param(os.path.join(SID, 'python' + v), id='sid-' + v)
            for v in ('3.14', '3.15')]


def wait_ready(p, timeout=60):
    """The program's "ready" line, waited for with a deadline (a child
    that hangs before printing fails the test instead of hanging it)."""
    import selectors
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(p.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if sel.select(timeout=max(0, deadline - time.monotonic())):
                return p.stdout.readline().strip() == 'ready'
            if p.poll() is not None:
                return False
    return False


def start_program(exe, prog):
    p = subprocess.Popen([exe, str(prog)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    if not wait_ready(p):
        p.kill()
        p.wait()
        pytest.fail(f'{exe} did not start {prog}')
    return p


def settled(fn, timeout=30):
    """fn() (a dump) until both threads sit in their sleep, with a
    deadline; the last dump when they never do."""
    deadline = time.monotonic() + timeout
    while True:
        threads = fn()
        stacks = by_name(threads)
        if {'MainThread', 'sleeper'} <= set(stacks) and all(
                any(f['name'] in SLEEPS or 'sleep' in f['name']
                    for f in frames if f['module'])
                for frames in stacks.values()):
            return threads
        if time.monotonic() > deadline:
            return threads
        time.sleep(0.05)


def python_frames(frames):
    return [f for f in frames if not f['module']]


def check_merged(threads, tnames=('MainThread', 'sleeper')):
    """Python frames sit inside the native stack, where their eval loop
    stood: the key callback under libc's sleep, sorted()'s C frames
    between it and its caller, the program's start below <module>."""
    stacks = by_name(threads)
    assert set(tnames) <= set(stacks), stacks.keys()
    for tname in tnames:
        frames = stacks[tname]
        got = names(frames)
        assert not any('EvalFrame' in n for n in got), got
        py = python_frames(frames)
        assert py and any(f['module'] for f in frames), got
        first_py, last_py = frames.index(py[0]), frames.index(py[-1])
        # innermost: the sleep's native frames (libc) above every Python
        # frame
        assert any('libc' in (f['module'] or '')
                   for f in frames[:first_py]), got
        # outermost: native frames (the thread's start) below the last
        # Python frame, not the whole native stack first
        assert last_py < len(frames) - 1, got
        assert all(f['module'] for f in frames[last_py + 1:]), got
    main = stacks['MainThread']
    got = names(main)
    k, o, m = got.index('keyfn'), got.index('outer'), got.index('<module>')
    assert k < o < m, got
    between = main[k + 1:o]
    assert between and all(f['module'] for f in between), got
    starts = [i for i, n in enumerate(got) if n in STARTS]
    assert starts and min(starts) > m, got
    return stacks


def run_bounded(cmd, timeout=TIMEOUT):
    """cmd in its own process group, all of it killed on timeout."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        p.communicate()
        raise
    return p.returncode, out, err


@pytest.mark.parametrize('exe', sid_interpreters())
def test_native_merge_sid(exe, tmp_path):
    """--native merges on sid's 3.14/3.15, live, from a pyspy-capture
    snapshot and from a gcore core, with the same stacks from all three."""
    if not os.access(exe, os.X_OK):
        pytest.skip(f'{exe} is missing (fixtures/get-sid-pythons fetches it)')
    prog = tmp_path / 'native_prog.py'
    prog.write_text(PROGRAM)
    p = start_program(exe, prog)
    try:
        live = check_merged(settled(lambda: dump_json('--pid', p.pid)))
        snap = tmp_path / 's.core.zst'
        rc, _, err = run_bounded([str(find_tool('pyspy-capture')), '--pid',
                                  str(p.pid), '-o', str(snap)])
        assert rc == 0, err
        core = None
        if shutil.which('gcore'):
            rc, _, err = run_bounded(['gcore', '-o', str(tmp_path / 'core'),
                                      str(p.pid)])
            assert rc == 0, err
            core = tmp_path / f'core.{p.pid}'
    finally:
        p.kill()
        p.wait()
    offline = {'snapshot': (check_merged(dump_json(snap)),
                            ('MainThread', 'sleeper'))}
    if core:
        # Only the main thread: sid's glibc puts a guard region
        # (MADV_GUARD_INSTALL) at the bottom of each thread's stack
        # mapping, and gcore, failing to read that page, writes the whole
        # mapping as zeros, so the sleeper's stack is not in its core (and
        # the dump may say so with its exit status for an incomplete
        # stack, 3).
        offline['gcore'] = (check_merged(dump_json('--core', core,
                                                   ok=(0, 3)),
                                         ('MainThread',)), ('MainThread',))
    for kind, (stacks, tnames) in offline.items():
        for tname in tnames:
            assert strip_names(stacks[tname]) == strip_names(live[tname]), kind
    if not core:
        pytest.skip('gcore is not installed: live and snapshot checked only')


CHAIN = r'''
import sys, time

def inner(x):
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    time.sleep(1000)
    return x

def outer():
    return sorted([3], key=inner)

outer()
'''


@pytest.mark.parametrize('exe', interpreters() + sid_interpreters())
def test_is_entry_python_c_python(exe, tmp_path):
    """<module> -> outer -> sorted (C) -> inner: the frames that begin an
    eval-loop invocation say so, with py-spy's two flags. From 3.11 a
    Python-to-Python call stays in its caller's invocation (outer is not
    an entry); before, each frame had an invocation of its own. py-spy's
    is_entry is the frame's own flag (3.11's is_entry field, always true
    before), is_shim_entry marks the frame a 3.12+ shim frame lies below
    and the outermost frame."""
    if not os.access(exe, os.X_OK):
        pytest.skip(f'{exe} is not installed')
    r = subprocess.run([exe, '-c', 'import sys; print(sys.version_info[0] '
                        '* 100 + sys.version_info[1])'], capture_output=True,
                       text=True, timeout=TIMEOUT)
    version = int(r.stdout)
    prog = tmp_path / 'chain.py'
    prog.write_text(CHAIN)
    p = start_program(exe, prog)
    try:
        r = subprocess.run([str(find_tool('pyspy')), 'dump', '--json',
                            '--pid', str(p.pid)], capture_output=True,
                           text=True, timeout=TIMEOUT)
    finally:
        p.kill()
        p.wait()
    assert r.returncode == 0, r.stderr
    frames = json.loads(r.stdout)[0]['frames']
    got = [(f['name'], f['is_entry'], f['is_shim_entry']) for f in frames]
    if version < 311:
        want = [('inner', True, False), ('outer', True, False),
                ('<module>', True, True)]
    elif version == 311:
        want = [('inner', True, False), ('outer', False, False),
                ('<module>', True, True)]
    else:
        want = [('inner', False, True), ('outer', False, False),
                ('<module>', False, True)]
    assert got == want, got
