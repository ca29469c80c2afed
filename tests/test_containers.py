"""A target in its own PID and mount namespace, as under Docker or
Kubernetes (made with unshare -fpm --mount-proc): Python knows its threads
by the namespace's ids, /proc and ptrace by the host's. dump and record
must map one to the other (NSpid) to tell idle threads from running ones,
print the host's id with the namespace's beside it, unwind --native from
module files that exist only inside the namespace (read through
/proc/PID/root), and a snapshot must keep both ids."""
import json
import os
import select
import shutil
import signal
import subprocess
import time

import pytest

from conftest import find_tool

PYENV = os.environ.get('PYENV_ROOT', '/root/.pyenv')
TIMEOUT = 120
SLEEPS = ('clock_nanosleep', 'nanosleep', 'select', '__select')

PROGRAM = r'''
import json, os, sys, threading, time

ids = {}

def sleeper():
    ids[threading.current_thread().name] = threading.get_native_id()
    while True:
        time.sleep(1000)

def busy():
    ids[threading.current_thread().name] = threading.get_native_id()
    x = 0
    while True: x += 1

ids['MainThread'] = threading.get_native_id()
for i in range(4):
    threading.Thread(target=sleeper, name='sleeper%d' % i, daemon=True).start()
threading.Thread(target=busy, name='busy', daemon=True).start()
while len(ids) < 6:
    time.sleep(0.01)
sys.stdout.write(json.dumps({'pid': os.getpid(), 'ids': ids}) + '\n')
sys.stdout.flush()
while True:
    time.sleep(1000)
'''

IDLE = {'MainThread', 'sleeper0', 'sleeper1', 'sleeper2', 'sleeper3'}


def pyenv(v):
    return os.path.join(PYENV, 'versions', v, 'bin', 'python' + v[:v.rindex('.')])


def run(args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True,
                          text=True, timeout=TIMEOUT, **kw)


class NsTarget:
    """PROGRAM as pid 1 of a new PID namespace with its own /proc. With
    own_files, the interpreter and its libpython are copies on a tmpfs
    mounted only inside the namespace: the host sees an empty folder."""

    def __init__(self, exe, tmp, own_files=False):
        if not os.access(exe, os.X_OK):
            pytest.skip(f'{exe} is not installed')
        if not shutil.which('unshare'):
            pytest.skip('unshare (util-linux) is not installed')
        tmp = str(tmp)
        prog = os.path.join(tmp, 'prog.py')
        with open(prog, 'w') as f:
            f.write(PROGRAM)
        self.root = os.path.join(tmp, 'nsroot')
        os.mkdir(self.root)
        script = ['set -e']
        if own_files:
            prefix = os.path.dirname(os.path.dirname(exe))
            lib = [os.path.join(prefix, 'lib', n)
                   for n in os.listdir(os.path.join(prefix, 'lib'))
                   if n.startswith('libpython') and '.so.' in n]
            assert lib, 'no libpython next to ' + exe
            script += [
                f'mount -t tmpfs -o size=128m tmpfs {self.root}',
                f'mkdir {self.root}/bin {self.root}/lib',
                f'cp {exe} {self.root}/bin/',
                f'cp {lib[0]} {self.root}/lib/',
                f'export LD_LIBRARY_PATH={self.root}/lib PYTHONHOME={prefix}',
            ]
            exe = os.path.join(self.root, 'bin', os.path.basename(exe))
        script.append(f'exec {exe} {prog}')
        env = {'PATH': '/usr/bin:/bin', 'LC_ALL': 'C.UTF-8',
               'PYTHONDONTWRITEBYTECODE': '1'}
        self.unshare = subprocess.Popen(
            ['unshare', '-fpm', '--mount-proc', '--kill-child', 'sh', '-c',
             '\n'.join(script)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            start_new_session=True)
        self.pid = None
        try:
            line = self._readline()
            if not line:
                self.stop()
                err = self.unshare.stderr.read().decode()
                if 'unshare failed' in err or 'Operation not permitted' in err:
                    pytest.skip('cannot make namespaces here: ' + err.strip())
                raise AssertionError('target did not start: ' + err)
            info = json.loads(line)
            self.ns_ids = info['ids']  # thread name -> the namespace's tid
            assert info['pid'] == 1, info
            with open(f'/proc/{self.unshare.pid}/task/{self.unshare.pid}/'
                      'children') as f:
                kids = f.read().split()
            assert len(kids) == 1, kids
            self.pid = int(kids[0])
            self.host_of = self._host_tids()  # namespace tid -> host tid
            assert self.pid != 1 and self.host_of.get(1) == self.pid
            assert sorted(self.host_of) == sorted(self.ns_ids.values())
        except BaseException:
            self.stop()
            raise

    def _readline(self):
        """The program's line, read from the pipe's descriptor (a buffered
        reader would hide what it already holds from select)."""
        deadline = time.monotonic() + TIMEOUT
        fd = self.unshare.stdout.fileno()
        out = b''
        while not out.endswith(b'\n'):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([fd], [], [], left)
            if r:
                got = os.read(fd, 4096)
                if not got:
                    break
                out += got
        return out.decode()

    def _host_tids(self):
        out = {}
        for t in os.listdir(f'/proc/{self.pid}/task'):
            with open(f'/proc/{self.pid}/task/{t}/status') as f:
                for line in f:
                    if line.startswith('NSpid:'):
                        ns = line.split()[1:]
                        assert len(ns) == 2, line  # host, then the namespace
                        assert int(ns[0]) == int(t)
                        out[int(ns[1])] = int(t)
        return out

    def expected_ids(self):
        """thread name -> (host tid, namespace tid)"""
        return {n: (self.host_of[i], i) for n, i in self.ns_ids.items()}

    def stop(self):
        # unshare leads its own process group, which the namespace's init
        # (and whatever it started) shares: killed through the pid Popen
        # gave, which is not reaped before, so the group id is still ours.
        try:
            os.killpg(self.unshare.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.unshare.wait()


def dump_json(*args):
    r = run([find_tool('pyspy'), 'dump', '--json', *args])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def settled(fn, check):
    """fn() until check(result) holds (threads on their way into sleep,
    the busy one preempted), failing with the last result at the
    deadline."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        got = fn()
        why = check(got)
        if why is None:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(why)
        time.sleep(0.1)


def states_right(target, native=False):
    want = target.expected_ids()

    def check(threads):
        seen = {t['thread_name']: t for t in threads}
        if set(seen) != set(want):
            return f'threads {sorted(seen)}, want {sorted(want)}'
        for name, t in seen.items():
            ids = (t['os_thread_id'], t.get('ns_thread_id'))
            if ids != want[name]:
                return f'{name}: (host, ns) ids {ids}, want {want[name]}'
            if t['active'] != (name not in IDLE):
                return f'{name}: active {t["active"]}'
            if native and name in IDLE and not any(
                    f['name'] in SLEEPS for f in t['frames'][:3]):
                return f'{name}: not yet in its sleep: {t["frames"][:3]}'
        return None
    return check


def frames_of(threads, names=IDLE):
    return {t['thread_name']: [(f['name'], f['line'], f.get('module'))
                               for f in t['frames']]
            for t in threads if t['thread_name'] in names}


@pytest.fixture(params=[pytest.param('/usr/bin/python3', id='system-python3'),
                        pytest.param(pyenv('3.9.18'), id='3.9.18'),
                        pytest.param(pyenv('3.12.1'), id='3.12.1')])
def target(request, tmp_path):
    t = NsTarget(request.param, tmp_path)
    yield t
    t.stop()


@pytest.fixture(scope='module')
def own_files_target(tmp_path_factory):
    """3.12.1 (libpython has symbols) run from files only the namespace
    has."""
    t = NsTarget(pyenv('3.12.1'), tmp_path_factory.mktemp('ns'),
                 own_files=True)
    yield t
    t.stop()


@pytest.mark.parametrize('mode', [[], ['--nonblocking']],
                         ids=['lock', 'nonblocking'])
def test_dump_idle_states_and_ids(target, mode):
    """Five threads sleep, one runs; each is named by its host tid with
    the namespace's beside it. 3.9 has no native_thread_id in its thread
    state: the thread is found from its pthread (FS base, or glibc's tid
    field, the namespace's, without registers)."""
    args = ['--pid', target.pid] + mode
    settled(lambda: dump_json(*args), states_right(target))
    want = target.expected_ids()

    def text_right(out):
        for name, (host, ns) in want.items():
            state = 'idle' if name in IDLE else 'active'
            line = f'Thread {host} ({state}'
            if not any(l.startswith(line) and f', ns {ns}):' in l and
                       l.endswith(f'"{name}"') for l in out.splitlines()):
                return f'no line for {name} ({host}, ns {ns}):\n{out}'
        return None
    settled(lambda: run([find_tool('pyspy'), 'dump', *args]).stdout,
            text_right)


def test_record_skips_sleeping_threads(target, tmp_path):
    """Without --idle only the running thread is sampled; with it, the
    sleepers too (they are there to be skipped)."""
    # Every thread in place first (the main thread still flushing its
    # line is rightly active).
    settled(lambda: dump_json('--pid', target.pid), states_right(target))
    out = tmp_path / 'r.txt'
    r = run([find_tool('pyspy'), 'record', '--pid', target.pid, '-d', '2',
             '-r', '50', '-f', 'raw', '-o', out, '--nonblocking'])
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert lines, r.stdout
    assert all('busy (prog.py' in l for l in lines), lines
    r = run([find_tool('pyspy'), 'record', '--pid', target.pid, '-d', '2',
             '-r', '50', '-f', 'raw', '-o', out, '--nonblocking', '--idle'])
    assert r.returncode == 0, r.stderr
    assert 'sleeper (prog.py' in out.read_text(), out.read_text()


def test_native_from_files_only_the_namespace_has(own_files_target):
    t = own_files_target
    threads = settled(lambda: dump_json('--native', '--pid', t.pid),
                      states_right(t, native=True))
    for name, frames in frames_of(threads).items():
        mods = [m for _, _, m in frames if m and 'libpython' in m]
        assert mods, f'{name}: no libpython frames: {frames}'
        # Named in the namespace, absent from the host: read through
        # /proc/PID/root.
        assert all(m.startswith(t.root + '/') for m in mods), mods
        assert not os.path.exists(mods[0])
        names = [n for n, _, _ in frames]
        assert 'time_sleep' in names, names
        assert names.index('time_sleep') < names.index(
            'sleeper' if name != 'MainThread' else '<module>'), names


def test_snapshot_keeps_both_ids(own_files_target, tmp_path):
    """pyspy-capture of the namespaced process, then dump of the snapshot
    (on a host without the namespace's files): the same ids, states and
    stacks as the live dump, --native too."""
    t = own_files_target
    live = settled(lambda: dump_json('--native', '--pid', t.pid),
                   states_right(t, native=True))
    snap = tmp_path / 's.core.zst'
    r = run([find_tool('pyspy-capture'), '--pid', t.pid, '-o', snap])
    assert r.returncode == 0, r.stderr
    offline = dump_json('--native', snap)
    assert states_right(t, native=True)(offline) is None
    assert frames_of(offline) == frames_of(live)
    plain = dump_json(snap)
    assert states_right(t)(plain) is None
    text = run([find_tool('pyspy'), 'dump', snap]).stdout
    host, ns = t.expected_ids()['sleeper0']
    assert f'Thread {host} (idle, ns {ns}): "sleeper0"' in text, text
