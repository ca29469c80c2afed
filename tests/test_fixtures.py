"""Fixtures: committed snapshots and cores of known programs under every
CPython we support (fixtures/<label>/), dumped and compared exactly with the
expected outputs that fixtures/make-fixtures verified against the programs'
sources.  These need no interpreter on the machine, and one test proves it by
analyzing with every interpreter hidden."""
import glob
import json
import lzma
import os
import re
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, 'fixtures')
BIN = os.environ.get('PYSPY_BIN_DIR', os.path.join(REPO, 'build', 'asan', 'bin'))
PYSPY = os.path.join(BIN, 'pyspy')
LABEL = re.compile(r'^(\d+\.\d+\.\d+)-(shared|static)(-ft)?$')
CORE_SUFFIXES = ('.core.zst', '.core.xz')

# Everything an analyzer could borrow an interpreter's files from.
HIDDEN_DIRS = ['/root/.pyenv', '/opt/pyspy-pythons', '/var/cache/pyspy-pythons',
               '/tmp/pyspy-fixtures'] + glob.glob('/usr/lib/python[23]*') + \
    glob.glob('/usr/local/lib/python[23]*')
HIDDEN_FILES = glob.glob('/usr/bin/python[23]*') + glob.glob('/usr/local/bin/python[23]*') + \
    glob.glob('/usr/lib/x86_64-linux-gnu/libpython*')


def fixture_sets():
    """(label, stem) for every expected.txt committed; a set missing its other
    files is still listed, so that it fails rather than vanishes."""
    sets = []
    for d in sorted(glob.glob(os.path.join(FIXTURES, '*'))):
        label = os.path.basename(d)
        if not LABEL.match(label):
            continue
        for exp in sorted(glob.glob(os.path.join(d, '*.expected.txt'))):
            sets.append((label, os.path.basename(exp)[:-len('.expected.txt')]))
    return sets


SETS = fixture_sets()
if not SETS:
    SETS = [pytest.param(None, None, marks=pytest.mark.skip(
        reason='no fixture file sets in fixtures/ yet (fixtures/make-fixtures writes them)'))]


def core_of(label, stem):
    for suffix in CORE_SUFFIXES:
        path = os.path.join(FIXTURES, label, stem + suffix)
        if os.path.exists(path):
            return path
    pytest.fail('fixture set %s/%s has expected outputs but no core (%s)'
                % (label, stem, ' or '.join(CORE_SUFFIXES)))


def read(label, stem, suffix):
    path = os.path.join(FIXTURES, label, stem + suffix)
    assert os.path.exists(path), 'fixture set %s/%s lacks %s' % (label, stem, suffix)
    with open(path, 'rb') as f:
        return f.read()


@pytest.fixture(scope='session')
def unpacked(tmp_path_factory):
    """Plain cores unpacked from .core.xz once per session. A gcore core is
    mostly zeros (it writes the PROT_NONE reserves of malloc arenas: ~900
    MiB), so zero blocks become holes of a sparse file."""
    root = tmp_path_factory.mktemp('cores')
    done = {}

    def get(core):
        if core not in done:
            d = root / ('%d' % len(done))
            d.mkdir()
            plain = d / os.path.basename(core)[:-3]
            zero = bytes(1 << 20)
            with lzma.open(core, 'rb') as src, open(plain, 'wb') as dst:
                while True:
                    block = src.read(1 << 20)
                    if not block:
                        break
                    if block == zero[:len(block)]:
                        dst.seek(len(block), 1)
                    else:
                        dst.write(block)
                dst.truncate()
            done[core] = str(plain)
        return done[core]
    return get


@pytest.fixture
def stage(unpacked):
    def staged(label, stem):
        """The folder and bare name to dump the set's core from, as
        make-fixtures did: the fixture's own folder, or the one holding the
        plain core unpacked from .core.xz."""
        core = core_of(label, stem)
        if core.endswith('.xz'):
            plain = unpacked(core)
            return os.path.dirname(plain), os.path.basename(plain)
        return os.path.dirname(core), os.path.basename(core)
    return staged


def is_raw(stem):
    """A core as the kernel, systemd-coredump or gdb wrote it: it lacks file
    pages that analysis reads from the files it maps."""
    return stem.startswith(('crash-', 'gcore-'))


def expected_status(label, stem):
    """dump's exit status for the set: 3 when some stack in it is incomplete
    (a gcore core whose thread stacks gdb failed to read), else 0."""
    return 3 if b'"incomplete": true' in read(label, stem, '.expected.json') else 0


def host_files_or_skip(label, stem):
    """Raw cores of Debian sid's interpreters read the interpreter's
    read-only pages from the file; without it they cannot match."""
    if is_raw(stem) and label.startswith(('3.14.', '3.15.')):
        v = label[:4]
        exe = os.path.join(os.environ.get('PYSPY_SID_PYTHONS', '/var/cache/pyspy-pythons/sid'),
                           v, 'python%s.patched' % v)
        if not os.path.exists(exe):
            pytest.skip('%s is not on this machine (fixtures/get-sid-pythons prepares it); '
                        'the hidden-files tests still cover this core' % exe)


def hide_script():
    script = ['set -e']
    for d in HIDDEN_DIRS:
        if os.path.isdir(d):
            script.append('mount -t tmpfs -o ro,size=4k pyspy-hidden %s' % d)
    for f in HIDDEN_FILES:
        if os.path.isfile(f) and not os.path.islink(f):
            script.append('mount --bind /dev/null %s' % f)
    # Prove the hiding took effect before trusting the result.
    script.append('for p in /root/.pyenv/versions /opt/pyspy-pythons/*/bin /var/cache/pyspy-pythons/sid/3.14; do '
                  '[ ! -e "$p" ] || { echo "still visible: $p" >&2; exit 99; }; done')
    script.append('exec "$@"')
    return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
            '\n'.join(script), 'sh']


def run_dump(cwd, name, args, hide=False, input_args=None):
    cmd = [PYSPY, 'dump'] + (input_args if input_args is not None else ['--core', name]) + args
    if hide:
        cmd = hide_script() + cmd
    assert os.path.exists(PYSPY), 'no pyspy binary at %s (set PYSPY_BIN_DIR)' % PYSPY
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)


def dump(cwd, name, args, hide=False, status=0):
    r = run_dump(cwd, name, args, hide)
    assert r.returncode == status, 'pyspy dump %s exited %d, not %d: %s' % (
        ' '.join(args), r.returncode, status, r.stderr.decode('utf-8', 'replace')[-2000:])
    return r.stdout


def diff_hint(got, want):
    g = got.decode('utf-8', 'replace').splitlines()
    w = want.decode('utf-8', 'replace').splitlines()
    for i, (a, b) in enumerate(zip(g, w)):
        if a != b:
            return 'first difference at line %d:\n  got:  %r\n  want: %r' % (i + 1, a, b)
    return 'got %d lines, want %d' % (len(g), len(w))


@pytest.mark.parametrize('label,stem', SETS)
def test_fixture_text_dump(label, stem, stage):
    host_files_or_skip(label, stem)
    cwd, name = stage(label, stem)
    got = dump(cwd, name, ['-ll'], status=expected_status(label, stem))
    want = read(label, stem, '.expected.txt')
    assert got == want, diff_hint(got, want)


@pytest.mark.parametrize('label,stem', SETS)
def test_fixture_json_dump(label, stem, stage):
    host_files_or_skip(label, stem)
    cwd, name = stage(label, stem)
    got = dump(cwd, name, ['--json', '-l'], status=expected_status(label, stem))
    want = read(label, stem, '.expected.json')
    assert json.loads(got.decode('utf-8')) == json.loads(want.decode('utf-8'))
    assert got == want, diff_hint(got, want)


@pytest.mark.parametrize('label,stem', SETS)
def test_fixture_version(label, stem, stage):
    """The version the analyzer reads from the core is the one the interpreter
    itself reported (the oracle), and the one the folder is named for."""
    oracle = json.loads(read(label, stem, '.oracle.json').decode('utf-8'))
    version = re.match(r'[\d.]+', oracle['version']).group(0)
    assert LABEL.match(label).group(1) == version
    assert ('free-threading' in oracle['version']) == bool(LABEL.match(label).group(3))
    cwd, name = stage(label, stem)
    r = run_dump(cwd, name, [])
    assert r.returncode in (0, 3), r.stderr.decode('utf-8', 'replace')
    text = r.stdout.decode('utf-8')
    shown = re.findall(r'^Python v(\S+)', text, re.M)
    assert shown == [version], 'dump names %s, the interpreter was %s' % (shown, version)


@pytest.mark.parametrize('label,stem', SETS)
def test_fixture_expected_outputs_match_sources(label, stem):
    """The committed expectations still agree with the programs' sources and
    the interpreter's own view of its stacks (guards hand edits)."""
    r = subprocess.run([sys.executable, os.path.join(FIXTURES, 'check-expected'),
                        os.path.join(FIXTURES, label, stem)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert r.returncode == 0, r.stdout


# Snapshots are self-contained; a kernel's own core is not (it leaves out
# file pages that were never written, such as .rodata, which the analyzer
# reads from this host's files), so raw kernel cores are not in this test.
SNAPSHOT_SETS = [p for p in SETS if not isinstance(p, tuple) or not is_raw(p[1])] or SETS
RAW_SETS = [p for p in SETS if isinstance(p, tuple) and is_raw(p[1])]


@pytest.mark.parametrize('label,stem', SNAPSHOT_SETS)
def test_fixture_with_every_interpreter_hidden(label, stem, stage):
    """Capture here, analyze anywhere: the same outputs with no interpreter,
    libpython or standard library visible to the analyzer."""
    cwd, name = stage(label, stem)
    got = dump(cwd, name, ['-ll'], hide=True)
    want = read(label, stem, '.expected.txt')
    assert got == want, diff_hint(got, want)
    got = dump(cwd, name, ['--json', '-l'], hide=True)
    want = read(label, stem, '.expected.json')
    assert got == want, diff_hint(got, want)


WARNING = re.compile(r'^Warning: (\S+) lacks memory the stacks need: (.*); give --executable', re.M)


def missed_files(stderr):
    """The files the warning names (each once, in order)."""
    m = WARNING.search(stderr)
    assert m, 'no warning naming what the core lacks: %r' % stderr[-2000:]
    files = []
    for part in m.group(2).split('; '):
        path = part.split(' at 0x')[0]
        if path.startswith('/') and path not in files:
            files.append(path)
    return files


@pytest.mark.parametrize('label,stem', RAW_SETS or [pytest.param(None, None, marks=pytest.mark.skip(
    reason='no raw core fixtures'))])
def test_raw_core_without_its_files_says_so(label, stem, stage):
    """With the files the core maps hidden, the pages it lacks are nowhere:
    one warning line names them and what to do, every stack that lost
    frames says so, no thread is shown empty, and dump exits 3."""
    cwd, name = stage(label, stem)
    r = run_dump(cwd, name, ['--json'], hide=True)
    err = r.stderr.decode('utf-8', 'replace')
    assert len([l for l in err.splitlines() if l.startswith('Warning:')]) == 1, err
    assert missed_files(err), err
    if r.returncode == 1:
        # Too little left to find the interpreter at all: an error line
        # after the warning, and no stacks.
        assert re.search(r'^Error: .+', err, re.M) and not r.stdout.strip(), err
        return
    assert r.returncode == 3, 'exit %d: %s' % (r.returncode, err[-2000:])
    traces = json.loads(r.stdout.decode('utf-8'))
    assert traces and any(t.get('incomplete') for t in traces)
    for t in traces:
        assert t['frames'], 'thread %s shown with no frames' % t['thread_name']
        marked = [f for f in t['frames'] if f['name'].startswith('<')]
        assert bool(marked) == bool(t.get('incomplete')), t['thread_name']
    text = run_dump(cwd, name, [], hide=True).stdout.decode('utf-8')
    assert re.search(r'^Thread \S+ \([^)]*incomplete[^)]*\)', text, re.M), text[:2000]


def copies_of(files, into):
    os.makedirs(into, exist_ok=True)
    for f in files:
        shutil.copy(f, os.path.join(into, os.path.basename(f)))


@pytest.mark.parametrize('label,stem', RAW_SETS or [pytest.param(None, None, marks=pytest.mark.skip(
    reason='no raw core fixtures'))])
def test_raw_core_on_another_host(label, stem, stage, tmp_path):
    """A core analysed where its files sit elsewhere: --lib-search-path with
    copies of the files it lacks (and --executable for the interpreter)
    gives exactly the expected dump with every original hidden."""
    host_files_or_skip(label, stem)
    cwd, name = stage(label, stem)
    # Each file given may let the walk go further and want another (the
    # interpreter first, then an extension module's type names): collect
    # what the warnings name until none is left.
    libs = str(tmp_path / 'elsewhere')
    files = []
    for _ in range(4):
        r = run_dump(cwd, name, ['-ll', '--lib-search-path', libs], hide=True)
        if b'lacks memory' not in r.stderr:
            break
        more = [f for f in missed_files(r.stderr.decode('utf-8', 'replace')) if f not in files]
        assert more, r.stderr
        missing = [f for f in more if not os.path.exists(f)]
        if missing:
            pytest.skip('the files this core maps are not on this machine: %s' % ', '.join(missing))
        files += more
        copies_of(more, libs)
    want = read(label, stem, '.expected.txt')
    status = expected_status(label, stem)
    r = run_dump(cwd, name, ['-ll', '--lib-search-path', '/nonexistent:' + libs], hide=True)
    assert r.returncode == status, r.stderr.decode('utf-8', 'replace')[-2000:]
    assert r.stdout == want, diff_hint(r.stdout, want)
    assert b'lacks memory' not in r.stderr
    if not files:
        return  # the core holds all it needs (a gcore that dumped them)
    if len(files) == 1 and os.path.basename(files[0]).startswith('python'):
        exe = os.path.join(libs, os.path.basename(files[0]))
        r = run_dump(cwd, name, ['-ll', '--executable', exe], hide=True)
        assert r.returncode == status, r.stderr.decode('utf-8', 'replace')[-2000:]
        assert r.stdout == want, diff_hint(r.stdout, want)
    # A different build in the search path is refused, and said so.
    other = str(tmp_path / 'other')
    os.makedirs(other)
    for f in files:
        with open(os.path.join(other, os.path.basename(f)), 'wb') as dst:
            with open('/bin/true', 'rb') as src:
                dst.write(src.read())
    r = run_dump(cwd, name, ['--lib-search-path', other], hide=True)
    assert r.returncode in (1, 3), r.stderr
    assert b'another build' in r.stderr, r.stderr


@pytest.mark.parametrize('label,stem', RAW_SETS or [pytest.param(None, None, marks=pytest.mark.skip(
    reason='no raw core fixtures'))])
def test_raw_core_converted_on_its_host_analyses_anywhere(label, stem, stage, tmp_path):
    """pyspy-capture --core (what core_pattern runs on the crashing host)
    fills the core's holes from this host's files; its snapshot then gives
    the expected dump with every interpreter hidden."""
    host_files_or_skip(label, stem)
    cwd, name = stage(label, stem)
    snap = str(tmp_path / 'converted.core.zst')
    capture = os.path.join(BIN, 'pyspy-capture')
    r = subprocess.run([capture, '--core', os.path.join(cwd, name), '-o', snap, '--hideprogress'],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    assert r.returncode == 0, r.stderr.decode('utf-8', 'replace')
    status = expected_status(label, stem)
    for args, suffix in ((['-ll'], '.expected.txt'), (['--json', '-l'], '.expected.json')):
        r = run_dump(cwd, name, args, hide=True, input_args=[snap])
        assert r.returncode == status, r.stderr.decode('utf-8', 'replace')[-2000:]
        want = read(label, stem, suffix)
        # The snapshot names itself where the core did: only that differs.
        got = r.stdout
        if suffix == '.expected.txt':
            assert got == want, diff_hint(got, want)
        else:
            assert json.loads(got.decode('utf-8')) == json.loads(want.decode('utf-8'))


def test_fixture_sizes():
    """At most 4 MiB a fixture file and 80 MiB for all of fixtures/."""
    total = 0
    for dirpath, _, files in os.walk(FIXTURES):
        for f in files:
            size = os.path.getsize(os.path.join(dirpath, f))
            total += size
            assert size <= 4 << 20, '%s is %d bytes' % (os.path.join(dirpath, f), size)
    assert total <= 80 << 20, 'fixtures/ holds %d bytes' % total
