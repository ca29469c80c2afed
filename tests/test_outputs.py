"""Every output file (record -o in every format, diff -o, merge -o,
pyspy-capture's snapshots) appears under its name only once whole, so a
failure leaves the old file of that name intact and no partial or
temporary file; a symlink at the name that another user owns is
refused, never written through (the tests run as root, where following
it would let that user aim the output at any file), while the caller's
own or root's (/dev/stdout) is followed and kept; and a SIGKILLed pyspy-capture leaves nothing
(its data sits in an unnamed O_TMPFILE until it is linked in)."""
import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from conftest import REPO, find_tool

TIMEOUT = 300
FIXTURE = REPO / 'fixtures' / '3.11.2-static' / 'scenarios.core.zst'
FORMATS = ['flamegraph', 'raw', 'speedscope', 'chrometrace', 'pprof',
           'aggregate']


def run(args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True,
                          text=True, timeout=TIMEOUT, **kw)


def need_root():
    if os.geteuid() != 0:
        pytest.skip('needs root (a planted symlink matters as root; mounts)')


def umask():
    m = os.umask(0)
    os.umask(m)
    return m


def writers(tmp_path):
    """[name, command] for every writer; OUT stands for the output."""
    pyspy, capture = str(find_tool('pyspy')), str(find_tool('pyspy-capture'))
    raw = tmp_path / 'base.txt'
    if not raw.exists():
        r = run([pyspy, 'record', '--idle', '-f', 'raw', '-o', raw, FIXTURE])
        assert r.returncode == 0, r.stderr
    cmds = [[f'{fmt}.out', [pyspy, 'record', '--idle', '-f', fmt, '-o', 'OUT',
                            str(FIXTURE)]] for fmt in FORMATS]
    cmds.append(['diff.svg', [pyspy, 'diff', str(raw), str(raw), '-o', 'OUT']])
    cmds.append(['merge.svg', [pyspy, 'merge', str(raw), str(raw), '-o',
                               'OUT']])
    cmds.append(['snap.core.zst', [capture, '--core', str(FIXTURE),
                                   '--hideprogress', '-o', 'OUT']])
    return cmds


def to(cmd, out):
    return [str(out) if a == 'OUT' else a for a in cmd]


def check_output(path, name):
    data = path.read_bytes()
    if name.startswith(('speedscope', 'chrometrace')):
        json.loads(data)
    elif name.startswith(('flamegraph', 'diff', 'merge')):
        assert data.rstrip().endswith(b'</svg>'), name
    elif name.startswith('raw'):
        assert b'scenarios.py' in data, name
    elif name.startswith('pprof'):
        assert data[:2] == b'\x1f\x8b', name  # gzip
    elif name.startswith('aggregate'):
        assert data[:8] == b'PYSPYAGG', name
    else:
        r = run([find_tool('pyspy'), 'dump', path])
        assert r.returncode == 0 and 'Thread' in r.stdout, r.stderr


def test_planted_symlink_is_refused(tmp_path):
    """A symlink another user owns at the output's name, to someone
    else's file or nowhere:
    every writer says so in one line and exits 1; the file it points to is
    untouched, the link is still there and nothing else is created. A
    fresh name is written, with the mode of today (0666 less the umask;
    snapshots 0600), and replaced whole on a second run."""
    need_root()
    cmds = writers(tmp_path)
    d = tmp_path / 'out'
    d.mkdir()
    victim = d / 'victim'
    victim.write_text('not yours\n')
    os.chown(victim, 65534, 65534)
    before = os.stat(victim)
    (d / 'elsewhere').mkdir()
    (d / 'link').symlink_to(victim)
    (d / 'dangling').symlink_to(d / 'elsewhere' / 'new')
    os.lchown(d / 'link', 65534, 65534)
    os.lchown(d / 'dangling', 65534, 65534)
    for name, cmd in cmds:
        for link in ('link', 'dangling'):
            r = run(to(cmd, d / link))
            lines = r.stderr.strip().splitlines()
            assert r.returncode == 1, (name, r.stdout, r.stderr)
            assert len(lines) == 1 and 'symbolic link' in lines[0], lines
            assert str(d / link) in lines[0], lines
        after = os.stat(victim)
        assert victim.read_text() == 'not yours\n'
        assert (after.st_mtime_ns, after.st_uid, after.st_size) == \
            (before.st_mtime_ns, before.st_uid, before.st_size)
        assert (d / 'link').is_symlink() and (d / 'dangling').is_symlink()
        assert list((d / 'elsewhere').iterdir()) == []
        assert sorted(p.name for p in d.iterdir()) == \
            ['dangling', 'elsewhere', 'link', 'victim'], name

        fresh = tmp_path / name
        for _ in range(2):
            r = run(to(cmd, fresh))
            assert r.returncode == 0, (name, r.stderr)
            check_output(fresh, name)
        want = 0o600 if name.endswith('.core.zst') else 0o666 & ~umask()
        assert stat.S_IMODE(os.stat(fresh).st_mode) == want, name
        left = [p.name for p in tmp_path.iterdir() if p.name.startswith('.')]
        assert left == [], left


def test_own_symlink_is_followed_and_kept(tmp_path):
    """The caller's own link: every writer replaces the file it names,
    whole, and the link stays a link."""
    cmds = writers(tmp_path)
    d = tmp_path / 'out'
    d.mkdir()
    for name, cmd in cmds:
        real = d / ('real-' + name)
        real.write_text('old\n')
        link = d / ('link-' + name)
        link.symlink_to(real.name)
        r = run(to(cmd, link))
        assert r.returncode == 0, (name, r.stderr)
        assert link.is_symlink() and os.readlink(link) == real.name
        check_output(real, name)
    left = [p.name for p in d.iterdir() if p.name.startswith('.')]
    assert left == [], left


def test_devices_stdout_and_fifos(tmp_path):
    """-o /dev/null writes to the device (it is not replaced); -o
    /dev/stdout (root's link to the caller's descriptor) writes into the
    pipe the caller reads, as py-spy does; a FIFO nothing reads is refused
    at once rather than waited on."""
    pyspy = find_tool('pyspy')
    r = run([pyspy, 'record', '--idle', '-f', 'raw', '-o', '/dev/null',
             FIXTURE])
    assert r.returncode == 0, r.stderr
    assert stat.S_ISCHR(os.stat('/dev/null').st_mode)
    r = run([pyspy, 'record', '--idle', '-f', 'raw', '-o', '/dev/stdout',
             FIXTURE])
    assert r.returncode == 0, r.stderr
    assert 'scenarios.py' in r.stdout, r.stdout[-2000:]
    fifo = tmp_path / 'fifo'
    os.mkfifo(fifo)
    r = run([pyspy, 'record', '--idle', '-f', 'raw', '-o', fifo, FIXTURE])
    assert r.returncode == 1, r.stderr
    assert 'nothing reads from' in r.stderr, r.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


# Run as root in a private mount namespace (so the mount never outlives
# the test): a small tmpfs holding the previous output, filled up by a
# filler file to leave half the output's size free, so each writer starts
# and then runs out of space.
FULL = r'''
import json, os, subprocess, sys
d, cmds = sys.argv[1], json.loads(sys.argv[2])
r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', d],
                   capture_output=True, text=True)
if r.returncode != 0:
    print(json.dumps({'skip': 'mount -t tmpfs: ' + r.stderr.strip()}))
    sys.exit(0)
out = []
for name, size, cmd in cmds:
    path = os.path.join(d, name)
    with open(path, 'w') as f:
        f.write('the previous ' + name + '\n')
    filler = os.path.join(d, 'filler')
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while os.write(fd, b'x' * 4096) == 4096:
            pass
    except OSError:
        pass
    full = os.fstat(fd).st_size
    os.ftruncate(fd, max(0, full - (size // 4096 // 2) * 4096))
    os.close(fd)
    cmd = [path if a == 'OUT' else a for a in cmd]
    r = subprocess.run(cmd, capture_output=True, text=True)
    with open(path) as f:
        kept = f.read()
    out.append({'name': name, 'rc': r.returncode, 'stderr': r.stderr,
                'kept': kept, 'left': sorted(os.listdir(d))})
    os.unlink(path)
    os.unlink(filler)
subprocess.run(['umount', d], check=True)
print(json.dumps(out))
'''


def test_full_filesystem_keeps_the_old_file(tmp_path):
    """ENOSPC in the middle of the write: one line naming the file, exit
    1, the previous file of that name intact, no partial or temporary
    file left beside it."""
    need_root()
    cmds = writers(tmp_path)
    sized = []
    for name, cmd in cmds:
        r = run(to(cmd, tmp_path / name))
        assert r.returncode == 0, r.stderr
        sized.append([name, os.path.getsize(tmp_path / name), cmd])
    small = tmp_path / 'small'
    small.mkdir()
    r = run(['unshare', '-m', '--propagation', 'private', sys.executable,
             '-c', FULL, small, json.dumps(sized)])
    if r.returncode != 0 and 'unshare' in r.stderr:
        pytest.skip('no private mount namespace here: ' + r.stderr.strip())
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout)
    if isinstance(results, dict):
        pytest.skip(results['skip'])
    assert len(results) == len(cmds)
    for res in results:
        name = res['name']
        lines = res['stderr'].strip().splitlines()
        assert res['rc'] == 1, res
        assert len(lines) == 1, res
        assert 'no space left on device' in lines[0], res
        assert f'{small}/{name}' in lines[0], res
        assert res['kept'] == f'the previous {name}\n', res
        assert res['left'] == sorted([name, 'filler']), res
    assert list(small.iterdir()) == []  # the tmpfs stayed in its namespace


BIG = r'''
import os, sys, time
blob = os.urandom(192 << 20)  # incompressible: the write takes a while
sys.stdout.write('ready\n')
sys.stdout.flush()
time.sleep(1000)
'''


def writing_into(pid, folder):
    """Whether process pid holds a file in folder open (an O_TMPFILE shows
    as 'FOLDER/#INODE (deleted)')."""
    try:
        fds = os.listdir(f'/proc/{pid}/fd')
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f'/proc/{pid}/fd/{fd}').startswith(folder + '/'):
                return True
        except OSError:
            pass
    return False


def proc_state(pid):
    with open(f'/proc/{pid}/stat') as f:
        return f.read().rsplit(')', 1)[1].split()[0]


def test_sigkilled_capture_leaves_no_file(tmp_path):
    """SIGKILL (no handler runs) while pyspy-capture writes, at a
    different moment of the write each round: nothing is left in the
    output folder but the previous file (every other round has one), or
    a whole new one."""
    target = subprocess.Popen([sys.executable, '-c', BIG],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert target.stdout.readline() == 'ready\n'
        rounds, hits = 10, 0
        for attempt in range(rounds):
            d = tmp_path / f'a{attempt}'
            d.mkdir()
            out = d / 'snap.core.zst'
            old = attempt % 2 == 1
            if old:
                out.write_text('the previous snapshot\n')
            c = subprocess.Popen([str(find_tool('pyspy-capture')), '--pid',
                                  str(target.pid), '-o', str(out),
                                  '--hideprogress'],
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            try:
                seen = False
                stop = time.monotonic() + TIMEOUT
                while c.poll() is None and time.monotonic() < stop:
                    if writing_into(c.pid, str(d)):
                        seen = True
                        break
                    time.sleep(0.001)
                # Later in the write each round; where the kill lands
                # does not change what must hold.
                time.sleep(0.05 * (attempt % 5))
                c.send_signal(signal.SIGKILL)
            finally:
                c.kill()
                c.wait()
            hits += seen and c.returncode == -signal.SIGKILL
            left = sorted(p.name for p in d.iterdir())
            assert left in ([], ['snap.core.zst']), left
            assert left or not old, 'the previous file was removed'
            if left and out.read_bytes() != b'the previous snapshot\n':
                r = run([find_tool('pyspy'), 'dump', out])
                assert r.returncode == 0, r.stderr
            # The kernel lets a dead tracer's tracee go; poll for it.
            deadline = time.monotonic() + TIMEOUT
            while proc_state(target.pid) in ('t', 'T') and \
                    time.monotonic() < deadline:
                time.sleep(0.01)
            assert proc_state(target.pid) not in ('t', 'T'), 'left stopped'
        assert hits >= rounds // 2, f'killed while writing in {hits} rounds'
        assert target.poll() is None
    finally:
        target.kill()
        target.wait()
