"""record's speedscope and chrometrace files loaded by the real speedscope
app (npm package, served on 127.0.0.1) in headless Chromium, and the
flamegraph SVG driven in Chromium: hover, click to zoom, search."""
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading

import pytest

from conftest import find_tool

# The profiled interpreter (the system one unless a test run says).
TARGET_PYTHON = os.environ.get("PYSPY_TEST_PYTHON", "/usr/bin/python3")

sys.path.insert(0, os.path.dirname(__file__))
from cdp_client import Browser  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NPM_CACHE = os.environ.get("PYSPY_NPM_CACHE", "/var/cache/pyspy-npm")
SPEEDSCOPE_APP = os.path.join(NPM_CACHE, "node_modules", "speedscope",
                              "dist", "release")

PROGRAM = """\
import sys
import threading  # names the main thread
def leaf_alpha():
    x = 0
    for i in range(20000):
        x += i
    return x
def leaf_beta():
    x = 0
    for i in range(10000):
        x += i
    return x
def outer():
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    while True:
        leaf_alpha()
        leaf_beta()
outer()
"""


def install_speedscope():
    """The speedscope npm package, into a cache outside the repo."""
    if os.path.isfile(os.path.join(SPEEDSCOPE_APP, "index.html")):
        return True
    if not shutil.which("npm"):
        return False
    os.makedirs(NPM_CACHE, exist_ok=True)
    res = subprocess.run(["npm", "install", "--prefix", NPM_CACHE,
                          "speedscope"], capture_output=True, text=True,
                         timeout=600)
    return res.returncode == 0 and os.path.isfile(
        os.path.join(SPEEDSCOPE_APP, "index.html"))


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    """One live recording of PROGRAM in each format."""
    tmp = tmp_path_factory.mktemp("profiles")
    prog = tmp / "prog.py"
    prog.write_text(PROGRAM)
    proc = subprocess.Popen([TARGET_PYTHON, str(prog)],
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        out = {}
        for fmt, name in (("speedscope", "profile.speedscope.json"),
                          ("chrometrace", "profile.trace.json"),
                          ("flamegraph", "profile.svg")):
            path = tmp / name
            res = subprocess.run(
                [str(find_tool("pyspy")), "record", "--pid", str(proc.pid),
                 "-d", "2", "-f", fmt, "-o", str(path), "--hideprogress"],
                capture_output=True, text=True, timeout=120)
            assert res.returncode == 0, res.stderr
            out[fmt] = path
        return out
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (tools/ensure-deps installs "
                    "it)")
    profile_dir = tmp_path_factory.mktemp("chromium-profile")
    try:
        b = Browser(CHROMIUM, str(profile_dir))
    except Exception as e:  # noqa: BLE001 - the reason is the skip text
        pytest.skip(f"chromium cannot start here: {e}")
    yield b
    b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, profiles):
    if not install_speedscope():
        pytest.fail("could not install the speedscope npm package")
    root = tmp_path_factory.mktemp("www")
    shutil.copytree(SPEEDSCOPE_APP, root / "app")
    for path in profiles.values():
        shutil.copy(path, root / "app" / path.name)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/app/"
    srv.shutdown()
    srv.server_close()


SHOW_SANDWICH = """(() => {
  const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let n;
  while ((n = w.nextNode()))
    if (n.textContent.trim() === 'Sandwich') { n.parentElement.click(); return true; }
  return false;
})()"""


def load_in_speedscope(browser, server, name, n):
    page = browser.page()
    try:
        # A different query each time: a hash change alone would not
        # reload the app.
        page.navigate(f"{server}index.html?n={n}#profileURL={server}{name}")
        page.wait_for("document.body.innerText.includes('Sandwich')")
        assert page.wait_for(SHOW_SANDWICH)
        return page.wait_for(
            "document.body.innerText.includes('leaf_alpha') && "
            "document.body.innerText", timeout=30)
    finally:
        page.close()


def test_speedscope_in_app(browser, server, profiles):
    doc = json.loads(profiles["speedscope"].read_text())
    assert doc["$schema"] == \
        "https://www.speedscope.app/file-format-schema.json"
    text = load_in_speedscope(browser, server, "profile.speedscope.json", 1)
    for name in ("leaf_alpha", "leaf_beta", "outer", "<module>"):
        assert name in text, text[:2000]
    # The profile selector shows the thread's name.
    assert "MainThread" in text


def test_chrometrace_in_app(browser, server, profiles):
    events = json.loads(profiles["chrometrace"].read_text())
    assert any(e["ph"] == "M" and e["name"] == "thread_name"
               for e in events)
    text = load_in_speedscope(browser, server, "profile.trace.json", 2)
    for name in ("leaf_alpha", "leaf_beta", "outer", "<module>"):
        assert name in text, text[:2000]


FRAME_BOX = """(() => {
  const g = Array.from(document.querySelectorAll('g.f'))
      .find(g => g.getAttribute('data-l').startsWith('%s'));
  if (!g) return null;
  const b = g.querySelector('rect').getBoundingClientRect();
  return [b.x + b.width / 2, b.y + b.height / 2,
          parseFloat(g.querySelector('rect').getAttribute('width'))];
})()"""


def test_flamegraph_interactive(browser, profiles):
    page = browser.page()
    try:
        page.navigate(profiles["flamegraph"].as_uri())
        page.wait_for("document.querySelectorAll('g.f').length > 3")
        title = page.evaluate("document.getElementById('title').textContent")
        assert "samples)" in title and "pyspy record" in title
        beta = page.evaluate(FRAME_BOX % "leaf_beta")
        assert beta, "no leaf_beta frame"
        x, y, width = beta
        assert width < 1000
        # Hover shows the details line.
        page.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        details = page.evaluate(
            "document.getElementById('details').textContent")
        assert details.startswith("leaf_beta (prog.py:") and "%" in details
        # Click zooms: the frame spans the width, others are hidden.
        page.click(x, y)
        after = page.evaluate(FRAME_BOX % "leaf_beta")
        assert after[2] == pytest.approx(1180, abs=0.1)
        assert page.evaluate(
            "document.querySelectorAll('g.f.hide').length") > 0
        assert "hide" not in page.evaluate(
            "document.getElementById('unzoom').getAttribute('class')")
        # Reset zoom restores the layout.
        page.evaluate("unzoom()")
        assert page.evaluate(FRAME_BOX % "leaf_beta")[2] == \
            pytest.approx(width, abs=0.01)
        # Search through the page's own prompt, answered over CDP.
        page.call("Page.enable")
        page.handlers["Page.javascriptDialogOpening"] = lambda _: \
            page.ws.send(json.dumps({
                "id": 10 ** 6, "method": "Page.handleJavaScriptDialog",
                "params": {"accept": True, "promptText": "leaf_alpha"}}))
        sx, sy = page.evaluate(
            "(() => { const b = document.getElementById('search')"
            ".getBoundingClientRect(); return [b.x + b.width / 2, "
            "b.y + b.height / 2]; })()")
        page.click(sx, sy)
        page.wait_for("document.querySelectorAll('g.f.match').length > 0")
        matched = page.evaluate(
            "document.getElementById('matched').getAttribute('data-percent')")
        assert 0 < float(matched) < 100
        assert page.evaluate(
            "Array.from(document.querySelectorAll('g.f.match')).every("
            "g => g.getAttribute('data-l').startsWith('leaf_alpha'))")
    finally:
        page.close()


# busy() calls eight leaves of different costs: boxes of many widths, so
# a box's edges fall on fractions of a pixel.
MANY_CHILDREN = """\
import sys
def leaf(n):
    x = 0
    for i in range(n):
        x += i
    return x
def c0(): return leaf(900)
def c1(): return leaf(1300)
def c2(): return leaf(1700)
def c3(): return leaf(2300)
def c4(): return leaf(2900)
def c5(): return leaf(3700)
def c6(): return leaf(4100)
def c7(): return leaf(5300)
def busy():
    while True:
        c0(); c1(); c2(); c3(); c4(); c5(); c6(); c7()
sys.stdout.write("ready\\n"); sys.stdout.flush()
busy()
"""

# Zooms every frame in turn through its click handler and reports each
# child (a box one row down inside the frame's sample range, read from
# the SVG as written) that the zoom hid, or that left the frame's new
# extent, and each frame whose own box did not fill the width.
ZOOM_EVERY_FRAME = """(() => {
  const gs = Array.from(document.querySelectorAll('g.f'));
  const info = gs.map(g => ({g: g, x: +g.getAttribute('data-x'),
      s: +g.getAttribute('data-s'),
      y: +g.querySelector('rect').getAttribute('y'),
      label: g.getAttribute('data-l')}));
  const bad = [];
  let zooms = 0, checked = 0;
  for (const f of info) {
    f.g.dispatchEvent(new MouseEvent('click', {bubbles: true}));
    zooms++;
    const r = f.g.querySelector('rect');
    const fx = +r.getAttribute('x'), fw = +r.getAttribute('width');
    if (f.g.classList.contains('hide') || Math.abs(fw - 1180) > 0.01)
      bad.push(['zoomed frame not full width', f.label, fw]);
    for (const c of info) {
      if (c.y !== f.y + 16 || c.x < f.x || c.x + c.s > f.x + f.s) continue;
      checked++;
      const cr = c.g.querySelector('rect');
      const cx = +cr.getAttribute('x'), cw = +cr.getAttribute('width');
      if (c.g.classList.contains('hide'))
        bad.push(['child hidden', f.label, c.label]);
      else if (cx < fx - 0.01 || cx + cw > fx + fw + 0.01)
        bad.push(['child outside', f.label, c.label, cx, cw]);
    }
  }
  unzoom();
  return {zooms: zooms, checked: checked, bad: bad.slice(0, 20),
          nbad: bad.length};
})()"""


@pytest.fixture(scope="module")
def many_children(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zoom")
    prog = tmp / "app.py"
    prog.write_text(MANY_CHILDREN)
    proc = subprocess.Popen([TARGET_PYTHON, str(prog)],
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        path = tmp / "zoom.svg"
        res = subprocess.run(
            [str(find_tool("pyspy")), "record", "--pid", str(proc.pid),
             "-d", "2", "-r", "97", "-o", str(path), "--hideprogress"],
            capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        return path
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_flamegraph_zoom_keeps_children(browser, many_children):
    page = browser.page()
    try:
        page.navigate(many_children.as_uri())
        page.wait_for("document.querySelectorAll('g.f').length > 8")
        got = page.evaluate(ZOOM_EVERY_FRAME)
        # Every c0..c7 under busy, and leaf under each of them.
        assert got["checked"] >= 16, got
        assert got["nbad"] == 0, got
        # Clicking busy (by a real mouse click) shows all its children.
        box = page.evaluate(FRAME_BOX % "busy (app.py:")
        assert box, "no busy frame"
        page.click(box[0], box[1])
        visible = page.evaluate(
            "Array.from(document.querySelectorAll('g.f:not(.hide)'))"
            ".map(g => g.getAttribute('data-l'))")
        shown = {v.split(" ")[0] for v in visible}
        assert {f"c{i}" for i in range(8)} <= shown, visible
    finally:
        page.close()


@pytest.fixture(scope="module")
def diff_svg(tmp_path_factory):
    """pyspy diff of PROGRAM against a version whose costs are swapped."""
    tmp = tmp_path_factory.mktemp("diff")
    raws = []
    for name, text in (("before.py", PROGRAM),
                       ("after.py", PROGRAM.replace("20000", "X")
                        .replace("10000", "20000").replace("X", "10000"))):
        prog = tmp / name
        prog.write_text(text)
        proc = subprocess.Popen([TARGET_PYTHON, str(prog)],
                                stdout=subprocess.PIPE)
        try:
            assert proc.stdout.readline().strip() == b"ready"
            raw = tmp / (name + ".txt")
            res = subprocess.run(
                [str(find_tool("pyspy")), "record", "--pid", str(proc.pid),
                 "-d", "1", "--nolineno", "-f", "raw", "-o", str(raw),
                 "--hideprogress"],
                capture_output=True, text=True, timeout=120)
            assert res.returncode == 0, res.stderr
            # The two programs' files differ in name only.
            raw.write_text(raw.read_text().replace(name, "prog.py"))
            raws.append(raw)
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
    out = tmp / "diff.svg"
    res = subprocess.run([str(find_tool("pyspy")), "diff", str(raws[0]),
                          str(raws[1]), "-o", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return out


def test_diff_flamegraph_in_chromium(browser, diff_svg):
    page = browser.page()
    try:
        page.call("Runtime.enable")
        page.navigate(diff_svg.as_uri())
        page.wait_for("document.querySelectorAll('g.f').length > 3")
        # init() ran: labels were fitted into the boxes.
        assert page.evaluate(
            "Array.from(document.querySelectorAll('g.f text'))"
            ".some(t => t.textContent.length > 0)")
        assert page.evaluate("!!document.getElementById('legend')")
        box = page.evaluate(FRAME_BOX % "leaf_beta")
        assert box, "no leaf_beta frame"
        page.call("Input.dispatchMouseEvent", type="mouseMoved", x=box[0],
                  y=box[1])
        details = page.evaluate(
            "document.getElementById('details').textContent")
        assert details.startswith("leaf_beta (prog.py) (base ") and \
            "; new " in details, details
        page.click(box[0], box[1])
        assert page.evaluate(FRAME_BOX % "leaf_beta")[2] == \
            pytest.approx(1180, abs=0.1)
        page.evaluate("unzoom()")
        errors = [e for e in page.events
                  if e.get("method") == "Runtime.exceptionThrown"]
        assert errors == [], errors
        # The listener does see a script error: a thrown probe arrives.
        page.evaluate("setTimeout(() => { throw new Error('probe'); }, 0)")
        page.wait_for("new Promise(r => setTimeout(() => r(true), 50))")
        assert any(e.get("method") == "Runtime.exceptionThrown"
                   for e in page.events), page.events[-5:]
    finally:
        page.close()
