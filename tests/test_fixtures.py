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


@pytest.fixture
def workdir(tmp_path):
    return tmp_path


def staged(label, stem, workdir):
    """The folder and bare name to dump the set's core from, as make-fixtures
    did: the fixture's own folder, or a temporary one holding the plain core
    unpacked from .core.xz."""
    core = core_of(label, stem)
    if core.endswith('.xz'):
        plain = os.path.join(str(workdir), os.path.basename(core)[:-3])
        with lzma.open(core, 'rb') as src, open(plain, 'wb') as dst:
            shutil.copyfileobj(src, dst)
        return str(workdir), os.path.basename(plain)
    return os.path.dirname(core), os.path.basename(core)


def dump(cwd, name, args, hide=False):
    cmd = [PYSPY, 'dump', '--core', name] + args
    if hide:
        # A private mount namespace: nothing changes outside this process.
        script = ['set -e']
        for d in HIDDEN_DIRS:
            if os.path.isdir(d):
                script.append('mount -t tmpfs -o ro,size=4k pyspy-hidden %s' % d)
        for f in HIDDEN_FILES:
            if os.path.isfile(f) and not os.path.islink(f):
                script.append('mount --bind /dev/null %s' % f)
        # Prove the hiding took effect before trusting the result.
        script.append('for p in /root/.pyenv/versions /opt/pyspy-pythons/*/bin; do '
                      '[ ! -e "$p" ] || { echo "still visible: $p" >&2; exit 99; }; done')
        script.append('exec "$@"')
        cmd = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
               '\n'.join(script), 'sh'] + cmd
    assert os.path.exists(PYSPY), 'no pyspy binary at %s (set PYSPY_BIN_DIR)' % PYSPY
    r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    assert r.returncode == 0, 'pyspy dump %s failed (%d): %s' % (
        ' '.join(args), r.returncode, r.stderr.decode('utf-8', 'replace')[-2000:])
    return r.stdout


def diff_hint(got, want):
    g = got.decode('utf-8', 'replace').splitlines()
    w = want.decode('utf-8', 'replace').splitlines()
    for i, (a, b) in enumerate(zip(g, w)):
        if a != b:
            return 'first difference at line %d:\n  got:  %r\n  want: %r' % (i + 1, a, b)
    return 'got %d lines, want %d' % (len(g), len(w))


@pytest.mark.parametrize('label,stem', SETS)
def test_fixture_text_dump(label, stem, workdir):
    cwd, name = staged(label, stem, workdir)
    got = dump(cwd, name, ['-ll'])
    want = read(label, stem, '.expected.txt')
    assert got == want, diff_hint(got, want)


@pytest.mark.parametrize('label,stem', SETS)
def test_fixture_json_dump(label, stem, workdir):
    cwd, name = staged(label, stem, workdir)
    got = dump(cwd, name, ['--json', '-l'])
    want = read(label, stem, '.expected.json')
    assert json.loads(got.decode('utf-8')) == json.loads(want.decode('utf-8'))
    assert got == want, diff_hint(got, want)


@pytest.mark.parametrize('label,stem', SETS)
def test_fixture_version(label, stem, workdir):
    """The version the analyzer reads from the core is the one the interpreter
    itself reported (the oracle), and the one the folder is named for."""
    oracle = json.loads(read(label, stem, '.oracle.json').decode('utf-8'))
    version = re.match(r'[\d.]+', oracle['version']).group(0)
    assert LABEL.match(label).group(1) == version
    assert ('free-threading' in oracle['version']) == bool(LABEL.match(label).group(3))
    cwd, name = staged(label, stem, workdir)
    text = dump(cwd, name, []).decode('utf-8')
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
SNAPSHOT_SETS = [p for p in SETS if not isinstance(p, tuple) or not p[1].startswith('crash-')] or SETS


@pytest.mark.parametrize('label,stem', SNAPSHOT_SETS)
def test_fixture_with_every_interpreter_hidden(label, stem, workdir):
    """Capture here, analyze anywhere: the same outputs with no interpreter,
    libpython or standard library visible to the analyzer."""
    cwd, name = staged(label, stem, workdir)
    got = dump(cwd, name, ['-ll'], hide=True)
    want = read(label, stem, '.expected.txt')
    assert got == want, diff_hint(got, want)
    got = dump(cwd, name, ['--json', '-l'], hide=True)
    want = read(label, stem, '.expected.json')
    assert got == want, diff_hint(got, want)


def test_fixture_sizes():
    """At most 4 MiB a fixture file and 64 MiB for all of fixtures/."""
    total = 0
    for dirpath, _, files in os.walk(FIXTURES):
        for f in files:
            size = os.path.getsize(os.path.join(dirpath, f))
            total += size
            assert size <= 4 << 20, '%s is %d bytes' % (os.path.join(dirpath, f), size)
    assert total <= 64 << 20, 'fixtures/ holds %d bytes' % total
