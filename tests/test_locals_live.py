"""Locals (`dump -l`, `-ll`, `--json -l`) of a live program on every
interpreter the machine has: arguments first and marked, then locals,
cell and free variables, each repr exactly what the target's own repr()
gives (or the documented cut where a bound applies)."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from conftest import find_tool  # noqa: E402

PYENV = pathlib.Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")) / "versions"
INTERPRETERS = ["/usr/bin/python3"] + [
    str(PYENV / v / "bin" / "python")
    for v in ("2.7.18", "3.6.15", "3.7.16", "3.8.18", "3.9.18", "3.10.13",
              "3.11.7", "3.12.1", "3.13.0")
] + [
    # Debian sid's (fixtures/get-sid-pythons) and the static and
    # free-threaded builds of fixtures/build-pythons, where prepared
    os.path.join(os.environ.get("PYSPY_SID_PYTHONS",
                                "/var/cache/pyspy-pythons/sid"), p)
    for p in ("python3.14", "python3.15")
] + ["/opt/pyspy-pythons/3.13t-static/bin/python3.13"]

# The target writes, once its frames are set up, what each local must look
# like: {frame: [[name, is_arg, repr_at_l, repr_at_ll], ...]}.
PROGRAM = r'''# -*- coding: utf-8 -*-
from __future__ import print_function
import json, sys, time
PY2 = sys.version_info[0] == 2
def U(s):
    # escapes below are UTF-8 bytes in both languages
    return (s if PY2 else s.encode('latin-1')).decode('utf-8')

class Thing(object):
    pass

def target(a, b, *args, **kw):
    none = None
    yes = True
    no = False
    zero = 0
    neg = -5
    big = 2 ** 100
    negbig = -(2 ** 70)
    fl = 1.5
    inf = float('inf')
    empty = U('')
    ascii = U('ascii')
    latin1 = U('latin-1 \xc3\xa9')
    ucs2 = U('UCS-2 \xd0\x96')
    ucs4 = U('UCS-4 \xf0\x9f\x98\x80')
    raw = b'bytes\x00'
    lst = [1, 2]
    one = (1,)
    dct = {U('a'): 1}
    st = {1, 2}
    deep = [[[[[[[1]]]]]]]
    longlist = list(range(200))
    longstr = U('x') * 300
    obj = Thing()
    cellvar = [U('captured')]
    if PY2:
        s2 = 'caf\xc3\xa9'
        u2 = U('caf\xc3\xa9')
    def inner(flag):
        seen = cellvar
        arg_b = b  # an argument of target captured by this closure
        write_expected(flag, seen, arg_b, b, cellvar)
        while True:
            time.sleep(0.05)
    # a call, not an assignment: adds no local of its own
    expect_outer(locals())
    inner(7)

EXPECTED = {}

def write_expected(flag, seen, arg_b, b, cellvar):
    P = pyspy_repr
    EXPECTED['inner'] = [['flag', True, P(flag), P(flag)],
                         ['seen', False, P(seen), P(seen)],
                         ['arg_b', False, P(arg_b), P(arg_b)],
                         ['b', False, P(b), P(b)],
                         ['cellvar', False, P(cellvar), P(cellvar)]]
    import os
    with open(sys.argv[1] + '.tmp', 'w') as f:
        json.dump(EXPECTED, f)
    os.rename(sys.argv[1] + '.tmp', sys.argv[1])

import re
# py-spy shows a string in double quotes, an apostrophe as \" and a
# newline as \n, the rest of its text as it is (pyspy: control characters
# as \xNN); a 2.7 str's bytes are each the character of that code.
STR_LITERAL = re.compile(r"(?<!\w)u?'((?:[^'\\]|\\.)*)'" + '|' +
                         r'(?<!\w)u?"((?:[^"\\]|\\.)*)"')

def text_repr(t):
    out = []
    for ch in t:
        c = ord(ch)
        if ch == "'":
            out.append('\\"')
        elif ch == '\n':
            out.append('\\n')
        elif c < 0x20 or c == 0x7f or 0x80 <= c < 0xa0:
            out.append('\\x%02x' % c)
        else:
            out.append(ch)
    return '"' + ''.join(out) + '"'

def pyspy_repr(v):
    if isinstance(v, bytes if not PY2 else ()):
        return repr(v)
    if PY2 and isinstance(v, str):
        return text_repr(v.decode('latin-1'))
    if isinstance(v, type(U(''))):
        return text_repr(v)
    def one(m):
        import ast
        return text_repr(ast.literal_eval(m.group(0).lstrip('u')))
    return STR_LITERAL.sub(one, repr(v))

def cut(r, total):
    # the whole repr is bounded (128 characters per -l), the cut marked
    return r if len(r) <= total else r[:total] + '...'

def expect_outer(outer_locals):
    exp_outer = []
    for name, v in sorted(outer_locals.items()):
        r = pyspy_repr(v)
        r1 = r2 = r
        if name == 'deep':
            r1, r2 = '[[[[...]]]]', '[[[[[[[...]]]]]]]'
        elif name == 'longlist':
            r1 = '[' + ', '.join(str(i) for i in range(10)) + ', ...]'
            r2 = cut('[' + ', '.join(str(i) for i in range(100)) + ', ...]', 256)
        elif name == 'longstr':
            r1 = '"' + 'x' * 123 + '..."'
            r2 = '"' + 'x' * 251 + '..."'
        elif name in ('obj', 'inner'):
            r1 = r2 = '<%s at 0x%x>' % (type(v).__name__, id(v))
        exp_outer.append([name, name in ('a', 'b', 'args', 'kw'), r1, r2])
    EXPECTED['target'] = exp_outer

target(1, U('two'), 3, key=U('v'))
'''


def start(python, tmp):
    prog = tmp / "locals_prog.py"
    prog.write_text(PROGRAM, encoding="utf-8")
    ready = tmp / "expected.json"
    proc = subprocess.Popen([python, str(prog), str(ready)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(600):
        if ready.exists():
            return proc, json.loads(ready.read_text(encoding="utf-8"))
        if proc.poll() is not None:
            raise AssertionError("program died: %s" % proc.stderr.read())
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("program never got ready")


def dump(args):
    pyspy = find_tool("pyspy")
    r = subprocess.run([str(pyspy), "dump"] + args, capture_output=True,
                       timeout=120)
    if r.returncode != 0 and b"not implemented" in r.stderr:
        pytest.skip("pyspy dump is not implemented yet")
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout.decode("utf-8")


def json_frames(doc):
    traces = doc
    if isinstance(doc, dict):
        traces = doc.get("traces") or next(
            v for v in doc.values() if isinstance(v, list))
    if traces and isinstance(traces[0], dict) and "traces" in traces[0]:
        traces = [t for p in traces for t in p["traces"]]
    return [f for t in traces for f in t["frames"]]


@pytest.fixture(params=INTERPRETERS)
def target(request, tmp_path):
    python = request.param
    if not os.access(python, os.X_OK):
        pytest.skip("%s is not installed" % python)
    proc, expected = start(python, tmp_path)
    yield proc, expected
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_json_locals_exact(target):
    proc, expected = target
    frames = json_frames(json.loads(dump(["--pid", str(proc.pid), "--json",
                                          "-l"])))
    by_name = {f["name"]: f for f in frames}
    for fname in ("target", "inner"):
        assert fname in by_name, [f["name"] for f in frames]
        got = by_name[fname]["locals"]
        names = [l["name"] for l in got]
        want = expected[fname]
        assert sorted(names) == sorted(w[0] for w in want)
        # arguments first, in order, all marked
        nargs = sum(1 for w in want if w[1])
        assert all(l["arg"] for l in got[:nargs])
        assert not any(l["arg"] for l in got[nargs:])
        reprs = {l["name"]: l["repr"] for l in got}
        for name, is_arg, r1, _ in want:
            assert reprs[name] == r1, name
    args = [l["name"] for l in by_name["target"]["locals"] if l["arg"]]
    assert args == ["a", "b", "args", "kw"]
    # the free variables in inner and the cells in target are one object
    # (b is also target's argument: shown once, as an argument)
    addr = {f: {l["name"]: l["addr"] for l in by_name[f]["locals"]}
            for f in ("target", "inner")}
    for name in ("cellvar", "b"):
        assert addr["inner"][name] == addr["target"][name]
    assert [l["name"] for l in by_name["target"]["locals"]].count("b") == 1


def text_locals(out, frame):
    lines = out.splitlines()
    start = next(i for i, l in enumerate(lines)
                 if l.strip().startswith(frame + " ("))
    got = {}
    for l in lines[start + 1:]:
        if not l.startswith("        "):
            break
        s = l.strip()
        if s in ("Arguments:", "Locals:"):
            continue
        name, _, rep = s.partition(": ")
        got[name] = rep
    return got


@pytest.mark.parametrize("flag,col", [("-l", 2), ("-ll", 3)])
def test_text_locals_exact(target, flag, col):
    proc, expected = target
    out = dump(["--pid", str(proc.pid), flag])
    for fname in ("target", "inner"):
        got = text_locals(out, fname)
        for w in expected[fname]:
            assert got.get(w[0]) == w[col], (fname, w[0])
