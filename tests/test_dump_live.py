"""pyspy dump against real interpreters: fixtures/programs/scenarios.py
(idle and busy threads, 10+ named threads, 1000-deep recursion, Cyrillic
and other non-ASCII names, generators, coroutines, lambdas, comprehensions,
class bodies, decorators, a callback from sorted(), backwards line-table
deltas, a thread holding the GIL) is dumped live, from a snapshot and from
the decompressed snapshot, and compared with the interpreter's own view of
its stacks (sys._current_frames, written by the program itself)."""
import glob
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import find_tool

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAMS = os.path.join(REPO, 'fixtures', 'programs')
PYENV = os.environ.get('PYENV_ROOT', '/root/.pyenv')
PYENV_VERSIONS = ['2.7.18', '3.6.15', '3.7.16', '3.8.18', '3.9.18', '3.10.13',
                  '3.11.7', '3.12.1', '3.13.0']
TIMEOUT = 120


def interpreters():
    out = [pytest.param('/usr/bin/python3', id='system-python3')]
    for v in PYENV_VERSIONS:
        d = os.path.join(PYENV, 'versions', v, 'bin')
        exe = None
        for name in ('python3', 'python2', 'python'):
            if os.access(os.path.join(d, name), os.X_OK):
                exe = os.path.join(d, name)
                break
        out.append(pytest.param(exe or os.path.join(d, 'python'), id=v))
    # Debian sid's 3.14 and 3.15 made runnable by fixtures/get-sid-pythons,
    # and the static / free-threaded builds of fixtures/build-pythons.
    sid = os.environ.get('PYSPY_SID_PYTHONS', '/var/cache/pyspy-pythons/sid')
    for v in ('3.14', '3.15'):
        out.append(pytest.param(os.path.join(sid, 'python' + v), id='sid-' + v))
    built = os.environ.get('PYSPY_PYTHONS', '/opt/pyspy-pythons')
    for label in ('3.9-static', '3.13-static', '3.13t-static'):
        out.append(pytest.param(os.path.join(built, label, 'bin', 'python3'), id=label))
    return out


def cmdline_of(pid):
    with open('/proc/%d/cmdline' % pid, 'rb') as f:
        return f.read().rstrip(b'\0').replace(b'\0', b' ').decode('utf-8')


def markers(path):
    out = {}
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            m = re.search(r'#\s*@park:(\S+)', line)
            if m:
                out[m.group(1)] = number
    return out


def run(args, **kw):
    return subprocess.run([str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=TIMEOUT, **kw)


def pyspy():
    return find_tool('pyspy')


def dump(args, **kw):
    r = run([pyspy(), 'dump'] + list(args), **kw)
    assert r.returncode == 0, r.stderr.decode('utf-8', 'replace')[-3000:]
    return r.stdout.decode('utf-8')


def dump_json(args):
    return json.loads(dump(list(args) + ['--json']))


class Scenario(object):
    def __init__(self, exe, workdir, extra=()):
        self.exe = exe
        self.dir = str(workdir)
        for f in os.listdir(PROGRAMS):
            if f.endswith('.py'):
                shutil.copy(os.path.join(PROGRAMS, f), self.dir)
        self.program = os.path.join(self.dir, 'scenarios.py')
        self.oracle_path = os.path.join(self.dir, 'oracle.json')
        env = {'PATH': '/usr/bin:/bin', 'LC_ALL': 'C.UTF-8',
               'PYTHONDONTWRITEBYTECODE': '1', 'PYTHONNOUSERSITE': '1'}
        self.proc = subprocess.Popen([exe, self.program, self.oracle_path] + list(extra),
                                     cwd=self.dir, env=env,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.time() + TIMEOUT
        while not os.path.exists(self.oracle_path):
            if self.proc.poll() is not None:
                raise AssertionError('scenario exited: %s' % self.proc.stderr.read())
            if time.time() > deadline:
                self.stop()
                raise AssertionError('scenario did not get ready')
            time.sleep(0.05)
        with open(self.oracle_path, encoding='utf-8') as f:
            self.oracle = json.load(f)
        # The main thread goes on to park after writing the oracle.
        time.sleep(0.5)
        self.pid = self.proc.pid
        self.marks = markers(self.program)
        self.free_threaded = 'free-threading' in self.oracle['version']

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def expected(self):
        """thread name -> [(name, line, basename)] innermost first."""
        out = {}
        for t in self.oracle['threads']:
            frames = [(f['name'], f['line'], os.path.basename(f['filename']))
                      for f in t['frames']]
            if t['name'] == 'MainThread':
                # The oracle ran inside oracle(), called from main().
                frames = [('main', self.marks['main'], 'scenarios.py')] + frames[2:]
            out[t['name']] = frames
        return out


@pytest.fixture(scope='module', params=interpreters())
def scenario(request, tmp_path_factory):
    exe = request.param
    if not os.access(exe, os.X_OK):
        pytest.skip('interpreter %s is not installed' % exe)
    s = Scenario(exe, tmp_path_factory.mktemp('scenario'))
    yield s
    s.stop()


def stacks_of(doc):
    """thread name -> [(name, line, basename)] from a JSON dump."""
    out = {}
    for t in doc:
        assert t['thread_name'] not in out, 'thread %r twice' % t['thread_name']
        out[t['thread_name']] = [(f['name'], f['line'], os.path.basename(f['filename']))
                                 for f in t['frames']]
    return out


def first_difference(got, want):
    for name in sorted(set(got) | set(want)):
        g, w = got.get(name), want.get(name)
        if g != w:
            if g is None or w is None:
                return 'thread %r: dumped %s, expected %s' % (name, g is not None, w is not None)
            for i, (a, b) in enumerate(zip(g, w)):
                if a != b:
                    return 'thread %r frame %d: dumped %r, expected %r' % (name, i, a, b)
            return 'thread %r: %d frames dumped, %d expected' % (name, len(g), len(w))
    return None


def busy_gil_settled(scenario, doc):
    """Python 2 hands the GIL over every 100 bytecodes whether or not
    another thread waits, and between its release and re-acquire no thread
    holds it: a stop that lands there is right to show no holder. A test
    of the GIL flag then looks again (Python 3 drops the GIL only when
    asked, so there the first look must do)."""
    if not scenario.oracle['version'].startswith('2.'):
        return True
    return any(t['thread_name'] == 'busy' and t['owns_gil'] for t in doc)


def test_live_json_matches_interpreter(scenario):
    doc = dump_json(['--pid', scenario.pid])
    for attempt in range(5):
        if busy_gil_settled(scenario, doc):
            break
        doc = dump_json(['--pid', scenario.pid])
    got = stacks_of(doc)
    want = scenario.expected()
    diff = first_difference(got, want)
    assert diff is None, diff
    tids = set(int(t) for t in os.listdir('/proc/%d/task' % scenario.pid))
    for t in doc:
        assert t['pid'] == scenario.pid
        assert isinstance(t['thread_id'], int) and t['thread_id'] > 0
        assert t['os_thread_id'] in tids, t['os_thread_id']
        if t['thread_name'] == 'MainThread':
            assert t['os_thread_id'] == scenario.pid
        if t['thread_name'] == 'busy':
            assert t['active'], t
            assert t['owns_gil'] == (not scenario.free_threaded), t
        else:
            assert not t['active'], t['thread_name']
            assert not t['owns_gil'], t['thread_name']
        for f in t['frames']:
            assert set(f) == {'name', 'filename', 'module', 'short_filename',
                              'line', 'locals', 'is_entry',
                              'is_shim_entry'}
            assert f['module'] is None and f['locals'] is None
        assert t['process_info']['pid'] == scenario.pid
        assert 'scenarios.py' in t['process_info']['command_line']
    # Recursion 1000 deep is all there, and the program's own files are
    # shown relative to their sys.path entry.
    assert sum(1 for f in got['recursion'] if f[0] == 'recurse') == 1000
    for t in doc:
        for f in t['frames']:
            if os.path.dirname(f['filename']) == scenario.dir:
                assert f['short_filename'] == os.path.basename(f['filename'])


def test_live_text_shape(scenario):
    text = dump(['--pid', scenario.pid])
    doc = dump_json(['--pid', scenario.pid])
    lines = text.split('\n')
    assert lines[0] == 'Process %d: %s' % (scenario.pid, cmdline_of(scenario.pid))
    assert lines[0].endswith('%s %s' % (scenario.program, scenario.oracle_path))
    version = scenario.oracle['version'].split()[0]
    m = re.match(r'^Python v(\S+) \((\S+)\)$', lines[1])
    assert m, lines[1]
    assert m.group(1) == version
    assert os.path.realpath(m.group(2)) == os.path.realpath(
        '/proc/%d/exe' % scenario.pid) or 'libpython' in m.group(2), m.group(2)
    assert lines[2] == ''
    threads = []
    for line in lines[3:]:
        if not line:
            continue
        th = re.match(r'^Thread (\d+) \((idle|active|active\+gil)\): "(.*)"$', line)
        if th:
            threads.append((int(th.group(1)), th.group(2), th.group(3), []))
            continue
        fr = re.match(r'^    (\S.*) \((.+?)(?::(\d+))?\)$', line)
        assert fr and threads, 'unexpected line %r' % line
        threads[-1][3].append((fr.group(1), fr.group(2), int(fr.group(3) or 0)))
    assert threads[0][2] == 'MainThread'
    by_name = {t['thread_name']: t for t in doc}
    assert sorted(t[2] for t in threads) == sorted(by_name)
    for tid, status, name, frames in threads:
        t = by_name[name]
        assert tid == t['os_thread_id']
        want_status = 'idle' if not t['active'] else ('active+gil' if t['owns_gil'] else 'active')
        if name == 'busy' and scenario.oracle['version'].startswith('2.'):
            # two separate looks: see busy_gil_settled
            assert status in ('active', 'active+gil'), status
        else:
            assert status == want_status
        assert frames == [(f['name'], f['short_filename'], f['line']) for f in t['frames']]
    # The non-ASCII names come through as UTF-8.
    if not scenario.oracle['version'].startswith('2.'):
        assert '    ждать (модуль.py:%d)' % markers(os.path.join(scenario.dir, 'модуль.py'))['cyrillic-name'] in text
        assert '    café (модуль.py:' in text
        assert '    𠀋函数 (модуль.py:' in text
    assert 'Thread ' in text and '"рабочий"' in text


def test_nonblocking_and_line_options(scenario):
    doc = dump_json(['--pid', scenario.pid, '--nonblocking'])
    diff = first_difference(stacks_of(doc), scenario.expected())
    assert diff is None, diff
    # --full-filenames: the short name is the full one.
    doc = dump_json(['--pid', scenario.pid, '--full-filenames'])
    for t in doc:
        for f in t['frames']:
            assert f['short_filename'] == f['filename']


def test_snapshot_and_decompressed_snapshot_give_the_same_stacks(scenario, tmp_path):
    capture = find_tool('pyspy-capture')
    snap = tmp_path / 'scenario.core.zst'
    r = run([capture, '--pid', scenario.pid, '-o', snap])
    assert r.returncode == 0, r.stderr.decode('utf-8', 'replace')
    want = scenario.expected()
    from_snapshot = dump_json([snap])
    diff = first_difference(stacks_of(from_snapshot), want)
    assert diff is None, 'snapshot: ' + diff
    diff = first_difference(stacks_of(dump_json(['--core', snap])), want)
    assert diff is None, '--core snapshot: ' + diff
    if not shutil.which('zstd'):
        pytest.skip('zstd is not installed: cannot decompress the snapshot')
    plain = tmp_path / 'scenario.core'
    r = run(['zstd', '-q', '-d', snap, '-o', plain])
    assert r.returncode == 0, r.stderr
    diff = first_difference(stacks_of(dump_json([plain])), want)
    assert diff is None, 'decompressed: ' + diff
    # Flags and names survive capture too.
    for attempt in range(5):
        if busy_gil_settled(scenario, from_snapshot):
            break
        r = run([capture, '--pid', scenario.pid, '-o', snap])
        assert r.returncode == 0, r.stderr.decode('utf-8', 'replace')
        from_snapshot = dump_json([snap])
    for t in from_snapshot:
        busy = t['thread_name'] == 'busy'
        assert t['active'] == busy, t['thread_name']
        assert t['owns_gil'] == (busy and not scenario.free_threaded), t['thread_name']


def test_snapshot_after_interpreter_renamed_away(tmp_path):
    """Self-contained snapshots: the static interpreter's binary is gone by
    the time the snapshot is analyzed."""
    if not os.access('/usr/bin/python3', os.X_OK):
        pytest.skip('/usr/bin/python3 is not installed')
    capture = find_tool('pyspy-capture')
    real = os.path.realpath('/usr/bin/python3')
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    exe = bindir / os.path.basename(real)
    shutil.copy(real, str(exe))
    work = tmp_path / 'work'
    work.mkdir()
    s = Scenario(str(exe), work)
    try:
        snap = tmp_path / 'renamed.core.zst'
        r = run([capture, '--pid', s.pid, '-o', snap])
        assert r.returncode == 0, r.stderr.decode('utf-8', 'replace')
        want = s.expected()
    finally:
        s.stop()
    os.rename(str(bindir), str(tmp_path / 'gone'))
    assert not exe.exists()
    diff = first_difference(stacks_of(dump_json([snap])), want)
    assert diff is None, diff
    text = dump([snap])
    assert 'Python v%s' % s.oracle['version'].split()[0] in text


def one_error_line(r):
    err = r.stderr.decode('utf-8', 'replace').strip().split('\n')
    assert r.returncode == 1, r
    assert len(err) == 1 and err[0].startswith('Error: '), err
    return err[0]


def test_not_a_core(tmp_path):
    bad = tmp_path / 'notes.txt'
    bad.write_text('this is not a core file\n' * 100)
    one_error_line(run([pyspy(), 'dump', bad]))
    one_error_line(run([pyspy(), 'dump', '--core', bad]))
    one_error_line(run([pyspy(), 'dump', tmp_path / 'missing.core.zst']))


def test_truncated_snapshot(tmp_path):
    if not os.access('/usr/bin/python3', os.X_OK):
        pytest.skip('/usr/bin/python3 is not installed')
    capture = find_tool('pyspy-capture')
    p = subprocess.Popen(['/usr/bin/python3', '-c', 'import time; time.sleep(1000)'])
    try:
        time.sleep(0.5)
        snap = tmp_path / 'p.core.zst'
        r = run([capture, '--pid', p.pid, '-o', snap])
        assert r.returncode == 0, r.stderr
    finally:
        p.kill()
        p.wait()
    data = snap.read_bytes()
    for cut in (len(data) // 2, len(data) - 100, 1000):
        t = tmp_path / ('cut%d.core.zst' % cut)
        t.write_bytes(data[:cut])
        one_error_line(run([pyspy(), 'dump', t]))


def test_core_of_non_python_process(tmp_path):
    capture = find_tool('pyspy-capture')
    p = subprocess.Popen(['sleep', '1000'])
    try:
        time.sleep(0.2)
        snap = tmp_path / 'sleep.core.zst'
        r = run([capture, '--pid', p.pid, '-o', snap])
        assert r.returncode == 0, r.stderr
        line = one_error_line(run([pyspy(), 'dump', snap]))
        assert 'no Python interpreter found in' in line, line
        line = one_error_line(run([pyspy(), 'dump', '--pid', p.pid]))
        assert 'no Python interpreter found in' in line, line
    finally:
        p.kill()
        p.wait()


def test_subprocesses(tmp_path):
    if not os.access('/usr/bin/python3', os.X_OK):
        pytest.skip('/usr/bin/python3 is not installed')
    child = 'import time\ndef child_sleeps():\n    time.sleep(1000)\nchild_sleeps()\n'
    parent = ('import subprocess, sys, time\n'
              'p = subprocess.Popen([sys.executable, "-c", %r])\n'
              'time.sleep(1000)\n' % child)
    # Its own process group, so the child is killed through the pid Popen
    # gave (p is not reaped before, so the group id is still ours).
    p = subprocess.Popen(['/usr/bin/python3', '-c', parent],
                         start_new_session=True)
    kids = []
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            kids = open('/proc/%d/task/%d/children' % (p.pid, p.pid)).read().split()
            if kids:
                break
            time.sleep(0.1)
        assert kids
        time.sleep(1.0)
        text = dump(['--pid', p.pid, '--subprocesses'])
        assert len(re.findall(r'^Process %d: ' % p.pid, text, re.M)) == 1
        assert len(re.findall(r'^Process %s: ' % kids[0], text, re.M)) == 1
        # The parent's command line, arguments joined by spaces.
        assert ('Parent Process %d: /usr/bin/python3 -c import subprocess, '
                'sys, time' % p.pid) in text
        assert 'child_sleeps (<string>:3)' in text
        assert '-' * 79 in text
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def crash_core(exe, workdir, mode):
    with open('/proc/sys/kernel/core_pattern') as f:
        pattern = f.read().strip()
    if pattern.startswith('|') or pattern.startswith('/'):
        pytest.skip('core_pattern is %r: the kernel does not write cores '
                    'into the working directory' % pattern)
    for f in os.listdir(PROGRAMS):
        if f.endswith('.py'):
            shutil.copy(os.path.join(PROGRAMS, f), str(workdir))

    def unlimited():
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,
                                                  resource.RLIM_INFINITY))
    oracle = os.path.join(str(workdir), 'oracle.json')
    p = subprocess.run([exe, 'scenarios.py', oracle, mode], cwd=str(workdir),
                       preexec_fn=unlimited, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=TIMEOUT)
    sig = signal.SIGSEGV if mode == 'crash-segv' else signal.SIGABRT
    assert p.returncode == -sig, p
    cores = []
    for _ in range(100):
        cores = glob.glob(os.path.join(str(workdir), 'core*'))
        if cores:
            break
        time.sleep(0.1)
    if not cores:
        pytest.skip('no core was written (core_pattern %r)' % pattern)
    with open(oracle, encoding='utf-8') as f:
        return cores[0], json.load(f)


@pytest.mark.parametrize('mode', ['crash-segv', 'crash-abort'])
def test_kernel_core_of_crashed_interpreter(mode, tmp_path):
    exe = '/usr/bin/python3'
    if not os.access(exe, os.X_OK):
        pytest.skip('/usr/bin/python3 is not installed')
    core, oracle = crash_core(exe, tmp_path, mode)
    text = dump([core])
    doc = dump_json([core])
    lines = text.split('\n')
    first = [l for l in lines if l.startswith('Thread ')][0]
    sig = 'SIGSEGV' if mode == 'crash-segv' else 'SIGABRT'
    assert re.match(r'^Thread \d+ \(active\+gil, crashed: %s\): "MainThread"$' % sig, first), first
    assert doc[0]['thread_name'] == 'MainThread' and doc[0].get('crashed') is True
    assert sum(1 for t in doc if t.get('crashed')) == 1
    line = markers(os.path.join(str(tmp_path), 'scenarios.py'))[mode]
    frames = [(f['name'], f['line']) for f in doc[0]['frames']]
    if mode == 'crash-segv':
        assert frames[0][0] == 'string_at', frames
        frames = frames[1:]
    assert frames[0] == ('main', line), frames
    assert frames[1][0] == '<module>'
    # Every other thread sat in a blocking system call: idle.
    for t in doc[1:]:
        assert not t['active'] or t['thread_name'] == 'busy', t['thread_name']
    assert len(doc) == len(oracle['threads'])


SUBINTERPRETER_PROGRAM = '''
import threading, time
try:
    import _xxsubinterpreters as interpreters
except ImportError:
    import _interpreters as interpreters
def in_sub():
    iid = interpreters.create()
    interpreters.run_string(iid, "import time\\ndef sub_sleeper():\\n    time.sleep(1000)\\nsub_sleeper()\\n")
t = threading.Thread(target=in_sub, name="host")
t.daemon = True
t.start()
def main_sleeper():
    time.sleep(1000)
main_sleeper()
'''


@pytest.mark.parametrize('version', ['3.12.1', '3.13.0'])
def test_subinterpreters(version, tmp_path):
    exe = os.path.join(PYENV, 'versions', version, 'bin', 'python3')
    if not os.access(exe, os.X_OK):
        pytest.skip('interpreter %s is not installed' % exe)
    prog = tmp_path / 'sub.py'
    prog.write_text(SUBINTERPRETER_PROGRAM)
    p = subprocess.Popen([exe, str(prog)])
    try:
        doc = []
        deadline = time.time() + 30
        while time.time() < deadline:
            # Until the program has set up its interpreters, there may be
            # nothing to validate yet.
            r = run([pyspy(), 'dump', '--pid', p.pid, '--json'])
            if r.returncode != 0:
                time.sleep(0.2)
                continue
            doc = json.loads(r.stdout.decode('utf-8'))
            names = [f['name'] for t in doc for f in t['frames']]
            if 'sub_sleeper' in names and 'main_sleeper' in names:
                break
            time.sleep(0.2)
        stacks = [[f['name'] for f in t['frames']] for t in doc]
        # The host thread is one thread: the sub-interpreter's frames,
        # then its own (tests/test_subinterpreters.py has the rest).
        assert ['sub_sleeper', '<module>', 'in_sub', 'run',
                '_bootstrap_inner', '_bootstrap'] in stacks, stacks
        assert ['main_sleeper', '<module>'] in stacks, stacks
        assert len(doc) == 2, stacks
        named = dict((t['thread_name'], t) for t in doc)
        assert named['MainThread']['frames'][0]['name'] == 'main_sleeper'
        host = named['host']['frames']
        assert host[0]['name'] == 'sub_sleeper'
        assert host[0]['interpreter_id'] > 0
        assert host[2]['name'] == 'in_sub' and host[2]['interpreter_id'] == 0
    finally:
        p.kill()
        p.wait()
