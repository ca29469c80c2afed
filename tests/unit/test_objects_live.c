/* The object reader against real interpreters: a Python program (every
 * interpreter found on the machine) builds objects and prints their
 * addresses (id()) with what Python's own repr() gives, its strings
 * requoted as py-spy shows them; we read them out of its memory and
 * compare, with the built-in layout tables. The memory source is a bare
 * process_vm_readv reader and the interpreter state is replaced by a word
 * holding sys.modules, so this tests the object layer alone; discovery
 * and walking are tested end to end by tests/test_locals_live.py. */
#include "analyze/cpython/layout.h"
#include "analyze/objects/objects.h"
#include "analyze/objects/object_layout.h"
#include "testlib.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *script =
    "# -*- coding: utf-8 -*-\n"
    "from __future__ import print_function\n"
    "import sys, json, threading, time\n"
    "PY2 = sys.version_info[0] == 2\n"
    "def U(s):\n"
    "    return (s if PY2 else s.encode('latin-1')).decode('utf-8')\n"
    "class Foo(object):\n"
    "    def __init__(self):\n"
    "        self._name = U('worker \\xc3\\xa9')\n"
    "        self._ident = 77\n"
    "class S(type(U(''))):\n"
    "    pass\n"
    "deep = [[[[[[[1]]]]]]]\n"
    "cyc = [1]\n"
    "cyc.append(cyc)\n"
    "foo = Foo()\n"
    "import re, ast\n"
    "# pyspy shows strings as py-spy does: in double quotes, an apostrophe as\n"
    "# \\\" and a newline as \\n, control characters as \\xNN, the rest\n"
    "# as it is;\n"
    "# a 2.7 str's bytes are each the character of that code.\n"
    "STR_LITERAL = re.compile(r\"(?<!\\w)u?'((?:[^'\\\\]|\\\\.)*)'\" + '|' +\n"
    "                         r'(?<!\\w)u?\"((?:[^\"\\\\]|\\\\.)*)\"')\n"
    "def text_repr(t):\n"
    "    out = []\n"
    "    for ch in t:\n"
    "        c = ord(ch)\n"
    "        if ch == \"'\":\n"
    "            out.append('\\\\\"')\n"
    "        elif ch == '\\n':\n"
    "            out.append('\\\\n')\n"
    "        elif c < 0x20 or c == 0x7f or 0x80 <= c < 0xa0:\n"
    "            out.append('\\\\x%02x' % c)\n"
    "        else:\n"
    "            out.append(ch)\n"
    "    return U('\"') + U('').join(out) + U('\"')\n"
    "def pyspy_repr(v):\n"
    "    if PY2 and isinstance(v, str):\n"
    "        return text_repr(v.decode('latin-1'))\n"
    "    if isinstance(v, type(U(''))):\n"
    "        return text_repr(v)\n"
    "    if isinstance(v, bytes):\n"
    "        return repr(v)\n"
    "    def one(m):\n"
    "        return text_repr(ast.literal_eval(m.group(0).lstrip('u')))\n"
    "    return STR_LITERAL.sub(one, repr(v))\n"
    "foo2 = Foo()\n"
    "foo2.__dict__\n"
    "foo2._name = U('materialized')\n"
    "objs = [\n"
    "  ('none', None, None), ('true', True, None), ('false', False, None),\n"
    "  ('zero', 0, None), ('neg', -5, None), ('big', 2**100, None),\n"
    "  ('negbig', -(2**70), None), ('i63', 2**62 + 1, None),\n"
    "  ('f15', 1.5, None), ('finf', float('inf'), None),\n"
    "  ('fnan', float('nan'), None), ('f01', 0.1, None),\n"
    "  ('f1e16', 1e16, None), ('fneg', -2.5e-07, None),\n"
    "  ('empty', U(''), None), ('ascii', U('ascii'), None),\n"
    "  ('latin1', U('latin-1 \\xc3\\xa9'), None),\n"
    "  ('ucs2', U('UCS-2 \\xd0\\x96'), None),\n"
    "  ('ucs4', U('UCS-4 \\xf0\\x9f\\x98\\x80'), None),\n"
    "  ('quote', U('it\\'s \"x\" \\\\ \\n'), None),\n"
    "  ('bytes', b'bytes\\x00\\xff', None),\n"
    "  ('list', [1, 2], None), ('tuple1', (1,), None), ('tuple0', (), None),\n"
    "  ('dict', {U('a'): 1}, None), ('set', {1, 2}, None),\n"
    "  ('emptyset', set(), None), ('fset', frozenset([3]), None),\n"
    "  ('mixed', [None, (1.5, U('x')), {U('k'): [True]}], None),\n"
    "  ('deep', deep, '[[[[...]]]]'),\n"
    "  ('cyc', cyc, '[1, [...]]'),\n"
    "  ('long', list(range(50)), '[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...]'),\n"
    "  ('longdict', dict((i, i) for i in range(20)), None),\n"
    "  ('foo', foo, '<Foo at 0x%x>' % id(foo)),\n"
    "]\n"
    "if PY2:\n"
    "    objs.append(('py2str', 'caf\\xc3\\xa9', None))\n"
    "    objs.append(('py2long', long(7), None))\n"
    "for name, o, want in objs:\n"
    "    r = pyspy_repr(o) if want is None else want\n"
    "    if name == 'longdict':\n"
    "        r = '{' + ', '.join('%d: %d' % (i, i) for i in range(10)) + ', "
    "...}'\n"
    "    d = {'name': name, 'id': id(o), 'repr': r}\n"
    "    if isinstance(o, type(U(''))):\n"
    "        d['str'] = o\n"
    "    print(json.dumps(d))\n"
    "nc = S(U('h\\xc3\\xa9llo \\xd0\\x96'))\n"
    "print(json.dumps({'name': 'noncompact', 'id': id(nc), 'str': nc}))\n"
    "dd = {U('alpha'): foo, U('beta'): foo2}\n"
    "print(json.dumps({'name': 'lookup', 'id': id(dd), 'beta': id(foo2)}))\n"
    "for o in (foo, foo2):\n"
    "    print(json.dumps({'name': 'attr', 'id': id(o), 'attr': id(o._name),\n"
    "                      'str': o._name}))\n"
    "ev = threading.Event()\n"
    "tn = 'named-\\xd0\\x96' if PY2 else U('named-\\xd0\\x96')\n"
    "t = threading.Thread(target=ev.wait, name=tn)\n"
    "t.start()\n"
    "print(json.dumps({'name': 'thread', 'ident': t.ident,\n"
    "                  'tname': U(t.name) if PY2 else t.name}))\n"
    "def gen_target(a, b, *args, **kw):\n"
    "    big = -(2 ** 70)\n"
    "    text = U('UCS-2 \\xd0\\x96')\n"
    "    cellvar = [1]\n"
    "    def inner():\n"
    "        return cellvar, b\n"
    "    yield 1\n"
    "g = gen_target(1, U('two'), 3, key=U('v'))\n"
    "next(g)\n"
    "fr = g.gi_frame\n"
    "exp = []\n"
    "for n, v in sorted(fr.f_locals.items()):\n"
    "    r = pyspy_repr(v)\n"
    "    if type(v).__name__ == 'function':\n"
    "        r = '<function at 0x%x>' % id(v)\n"
    "    exp.append([n, n in ('a', 'b', 'args', 'kw'), r])\n"
    "print(json.dumps({'name': 'frame', 'code': id(g.gi_code),\n"
    "                  'frame': id(fr), 'locals': exp}))\n"
    "import ctypes\n"
    "holder = ctypes.c_void_p(id(sys.modules))\n"
    "print(json.dumps({'name': 'modules', 'holder': "
    "ctypes.addressof(holder)}))\n"
    "print('READY')\n"
    "sys.stdout.flush()\n"
    "sys.stdin.read()\n"
    "ev.set()\n";

/* ------------------------------------------------ stand-ins (see top) */

static int vm_read(pyspy_memsrc *src, uint64_t addr, void *buf, size_t len,
                   pyspy_error *err) {
    int pid = (int)(intptr_t)src->impl;
    struct iovec l = {buf, len}, r = {(void *)(uintptr_t)addr, len};
    if (process_vm_readv(pid, &l, 1, &r, 1, 0) != (ssize_t)len)
        return pyspy_error_set(err, PYSPY_E_UNREADABLE, "unreadable 0x%lx",
                               (unsigned long)addr);
    return 0;
}
static void vm_close(pyspy_memsrc *src) {
    free(src);
}
static const pyspy_memsrc_ops vm_ops = {
    .kind = "live", .read = vm_read, .close = vm_close};

/* ------------------------------------------------------------- driver */

typedef struct {
    int pid;
    FILE *out;
    int in_fd;
} child;

static int spawn(const char *python, const char *path, child *c) {
    int to[2], from[2];
    if (pipe(to))
        return -1;
    if (pipe(from)) {
        close(to[0]);
        close(to[1]);
        return -1;
    }
    c->pid = fork();
    if (c->pid < 0) {
        close(to[0]);
        close(to[1]);
        close(from[0]);
        close(from[1]);
        return -1;
    }
    if (c->pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[1]);
        close(from[0]);
        execl(python, python, path, (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    c->in_fd = to[1];
    c->out = fdopen(from[0], "r");
    return 0;
}

static void reap(child *c) {
    close(c->in_fd);
    fclose(c->out);
    tl_kill_child(c->pid);
}

static int checks_run;

/* A suspended generator's frame: its locals as Python sees them. */
static void check_frame(pyspy_memsrc *src, const pyspy_python *py,
                        const char *python, cJSON *j) {
    const pyspy_py_layout *l = &py->layout;
    uint64_t code = (uint64_t)cJSON_GetObjectItem(j, "code")->valuedouble;
    uint64_t frame = (uint64_t)cJSON_GetObjectItem(j, "frame")->valuedouble;
    uint64_t lp;
    if (l->code_localsplusnames >= 0) {
        /* 3.11+: PyFrameObject is {head, f_back, f_frame, ...}; f_frame
         * is the generator's _PyInterpreterFrame. */
        uint64_t iframe = 0;
        CHECK(pyspy_py_read_u64(src, frame + (uint64_t)l->pyobject_size + 8,
                                &iframe, NULL) == 0);
        lp = iframe + (uint64_t)l->iframe_localsplus;
    } else {
        lp = frame + (uint64_t)l->frame_localsplus;
    }
    pyspy_local *v = NULL;
    size_t n = 0;
    pyspy_error err = {0};
    int rc = pyspy_py_frame_locals(src, py, code, lp, 1, &v, &n, &err);
    if (rc)
        fprintf(stderr, "  [%s] frame locals: %s\n", python, err.msg);
    CHECK(rc == 0);
    cJSON *want = cJSON_GetObjectItem(j, "locals");
    CHECK((size_t)cJSON_GetArraySize(want) == n);
    size_t nargs = 0;
    for (size_t i = 0; i < n; i++)
        nargs += v[i].is_arg;
    for (size_t i = 0; i < n; i++)
        CHECK(v[i].is_arg == (i < nargs)); /* arguments first */
    cJSON *w;
    cJSON_ArrayForEach(w, want) {
        const char *wn = cJSON_GetArrayItem(w, 0)->valuestring;
        bool warg = cJSON_IsTrue(cJSON_GetArrayItem(w, 1));
        const char *wr = cJSON_GetArrayItem(w, 2)->valuestring;
        const pyspy_local *got = NULL;
        for (size_t i = 0; i < n; i++)
            if (strcmp(v[i].name, wn) == 0)
                got = &v[i];
        if (!got || got->is_arg != warg || !got->repr ||
            strcmp(got->repr, wr) != 0)
            fprintf(stderr, "  [%s] local %s: %s\n", python, wn,
                    got && got->repr ? got->repr : "(missing)");
        CHECK(got && got->is_arg == warg);
        CHECK_STR(got ? got->repr : NULL, wr);
    }
    pyspy_py_locals_free(v, n);
}

static void check_one(pyspy_memsrc *src, const pyspy_python *py,
                      const char *python, cJSON *j, pyspy_thread_name *names,
                      size_t nnames) {
    const char *name = cJSON_GetObjectItem(j, "name")->valuestring;
    cJSON *idj = cJSON_GetObjectItem(j, "id");
    uint64_t id = idj ? (uint64_t)idj->valuedouble : 0;
    cJSON *r = cJSON_GetObjectItem(j, "repr");
    cJSON *s = cJSON_GetObjectItem(j, "str");
    if (r) {
        char *got = pyspy_py_repr(src, py, id, 1);
        if (!got || strcmp(got, r->valuestring) != 0)
            fprintf(stderr, "  [%s] %s: repr\n", python, name);
        CHECK_STR(got, r->valuestring);
        free(got);
        checks_run++;
    }
    if (s && !cJSON_GetObjectItem(j, "attr")) {
        pyspy_error err = {0};
        char *got = pyspy_py_str(src, py, id, 1000, &err);
        if (!got || strcmp(got, s->valuestring) != 0)
            fprintf(stderr, "  [%s] %s: str (%s)\n", python, name, err.msg);
        CHECK_STR(got, s->valuestring);
        free(got);
    }
    if (strcmp(name, "lookup") == 0) {
        uint64_t v = 1;
        pyspy_error err = {0};
        CHECK(pyspy_py_dict_get_str(src, py, id, "beta", &v, &err) == 0);
        CHECK(v == (uint64_t)cJSON_GetObjectItem(j, "beta")->valuedouble);
        CHECK(pyspy_py_dict_get_str(src, py, id, "gamma", &v, &err) == 0);
        CHECK(v == 0);
    }
    if (strcmp(name, "attr") == 0) {
        uint64_t v = 0;
        pyspy_error err = {0};
        int rc = pyspy_py_object_getattr_str(src, py, id, "_name", &v, &err);
        if (rc || v != (uint64_t)cJSON_GetObjectItem(j, "attr")->valuedouble)
            fprintf(stderr, "  [%s] attr: rc %d %s\n", python, rc, err.msg);
        CHECK(rc == 0);
        CHECK(v == (uint64_t)cJSON_GetObjectItem(j, "attr")->valuedouble);
    }
    if (strcmp(name, "frame") == 0)
        check_frame(src, py, python, j);
    if (strcmp(name, "thread") == 0) {
        uint64_t ident = (uint64_t)cJSON_GetObjectItem(j, "ident")->valuedouble;
        const char *want = cJSON_GetObjectItem(j, "tname")->valuestring;
        const char *found = NULL;
        bool main_found = false;
        for (size_t i = 0; i < nnames; i++) {
            if (names[i].ident == ident)
                found = names[i].name;
            main_found |= strcmp(names[i].name, "MainThread") == 0;
        }
        if (!found || strcmp(found, want) || !main_found)
            fprintf(stderr, "  [%s] thread names\n", python);
        CHECK_STR(found, want);
        CHECK(main_found);
    }
}

static void run_python(const char *python, const char *path) {
    child c;
    if (access(python, X_OK) != 0) {
        printf("# skip %s: not installed\n", python);
        return;
    }
    int spawned = spawn(python, path, &c);
    CHECK(spawned == 0);
    if (spawned != 0)
        return;
    cJSON *lines[64];
    size_t nl = 0;
    char line[8192];
    while (fgets(line, sizeof line, c.out)) {
        if (strncmp(line, "READY", 5) == 0)
            break;
        cJSON *j = cJSON_Parse(line);
        CHECK(j != NULL);
        if (j && nl < 64)
            lines[nl++] = j;
    }
    CHECK(nl > 30);
    pyspy_python py;
    memset(&py, 0, sizeof py);
    pyspy_memsrc *src = NULL;
    pyspy_error err = {0};
    {
        src = calloc(1, sizeof *src);
        src->ops = &vm_ops;
        src->impl = (void *)(intptr_t)c.pid;
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 "%s -c 'import sys, sysconfig; print(\"%%d %%d %%d\" %% "
                 "(sys.version_info[0], sys.version_info[1], "
                 "sysconfig.get_config_var(\"Py_GIL_DISABLED\") or 0))'",
                 python);
        FILE *p = popen(cmd, "r");
        int ft = 0;
        CHECK(p && fscanf(p, "%d %d %d", &py.major, &py.minor, &ft) == 3);
        if (p)
            pclose(p);
        const pyspy_py_layout *lay =
            pyspy_py_layout_builtin(py.major, py.minor, ft != 0);
        if (!lay && (py.minor >= 14 || ft))
            printf("# skip %s: no built-in layout for %d.%d yet\n", python,
                   py.major, py.minor);
        else
            CHECK(lay != NULL);
        if (lay)
            py.layout = *lay;
        else
            src->ops->close(src), src = NULL;
    }
    pyspy_thread_name *names = NULL;
    size_t nnames = 0;
    {
        /* The stand-in has no interpreter state: point "interp" at a
         * word holding sys.modules (the script made one). */
        for (size_t i = 0; i < nl; i++) {
            cJSON *h = cJSON_GetObjectItem(lines[i], "holder");
            if (h)
                py.interp_head = (uint64_t)h->valuedouble;
        }
        py.layout.interp_modules = 0;
    }
    if (src) {
        CHECK(pyspy_py_thread_names(src, &py, &names, &nnames, &err) == 0);
    }
    for (size_t i = 0; src && i < nl; i++)
        check_one(src, &py, python, lines[i], names, nnames);
    if (src)
        printf("# %s: %d.%d checked (%s)\n", python, py.major, py.minor,
               "built-in layout");
    pyspy_py_thread_names_free(names, nnames);
    if (src)
        src->ops->close(src);
    for (size_t i = 0; i < nl; i++)
        cJSON_Delete(lines[i]);
    reap(&c);
}

TEST(objects_every_interpreter) {
    char path[] = "/tmp/pyspy-objects-XXXXXX.py";
    int fd = mkstemps(path, 3);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK(write(fd, script, strlen(script)) == (ssize_t)strlen(script));
    close(fd);
    run_python("/usr/bin/python3", path);
    const char *vers[] = {"2.7.18",  "3.6.15", "3.7.16", "3.8.18", "3.9.18",
                          "3.10.13", "3.11.7", "3.12.1", "3.13.0"};
    for (size_t i = 0; i < sizeof vers / sizeof vers[0]; i++) {
        char py[256];
        snprintf(py, sizeof py, "/root/.pyenv/versions/%s/bin/python", vers[i]);
        run_python(py, path);
    }
    /* Debian sid's, prepared by fixtures/get-sid-pythons */
    run_python("/var/cache/pyspy-pythons/sid/python3.14", path);
    run_python("/var/cache/pyspy-pythons/sid/python3.15", path);
    /* static and free-threaded builds made by fixtures/build-pythons */
    run_python("/opt/pyspy-pythons/3.9-static/bin/python3.9", path);
    run_python("/opt/pyspy-pythons/3.13-static/bin/python3.13", path);
    run_python("/opt/pyspy-pythons/3.13t-static/bin/python3.13", path);
    unlink(path);
    printf("# %d reprs compared\n", checks_run);
    CHECK(checks_run > 0);
}

TEST_MAIN(T(objects_every_interpreter))
