"""pyrunc._fastimport: pyrunc's modules from their .pyc, the same modules importlib makes,
and importlib's own path for everything it cannot vouch for."""
import ast
import json
import os
import py_compile
import subprocess
import sys
import textwrap
import time

import pyrunc
from tests.conftest import requires_root

ROOT = os.path.dirname(os.path.dirname(pyrunc.__file__))
LAUNCHER = os.path.join(ROOT, ".venv", "bin", "pyrunc")
MODULES = ["pyrunc.cli", "pyrunc.container", "pyrunc.cgroups.v1.devices", "pyrunc.commands.create"]


def _run(code, *extra_path):
    """code in a fresh interpreter started as the launcher starts it"""
    prelude = "import sys; sys.path += %r\n" % ([ROOT] + list(extra_path))
    out = subprocess.run([sys.executable, "-I", "-S", "-c", prelude + textwrap.dedent(code)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


DESCRIBE = """
import json
def describe(names):
    out = {}
    for n in names:
        m = sys.modules[n]
        s = m.__spec__
        out[n] = [m.__name__, m.__file__, m.__cached__, m.__package__, getattr(m, "__path__", None),
                  s.name, s.origin, s.cached, s.has_location, s.parent,
                  s.submodule_search_locations, type(s.loader).__name__, s.loader.path,
                  getattr(sys.modules[n.rpartition(".")[0]], n.rpartition(".")[2]) is m]
    return out
"""


def _warm(names):
    """importlib writes the .pyc files (a fresh checkout has none; pytest may not write them)"""
    _run("import json, %s\nprint('[]')" % ", ".join(names))


def test_modules_are_the_ones_importlib_makes():
    _warm(MODULES)
    fast = _run(DESCRIBE + """
from pyrunc import _fastimport
_fastimport.install()
import %s
print(json.dumps([describe(%r + ["pyrunc.cgroups", "pyrunc.commands"]), _fastimport.loaded]))
""" % (", ".join(MODULES), MODULES))
    plain = _run(DESCRIBE + """
import %s
print(json.dumps([describe(%r + ["pyrunc.cgroups", "pyrunc.commands"]), []]))
""" % (", ".join(MODULES), MODULES))
    assert fast[0] == plain[0]
    # the shortcut was taken: not a comparison of importlib with itself
    assert set(MODULES) <= set(fast[1])


def test_the_launcher_takes_the_shortcut_and_not_os():
    with open(LAUNCHER) as f:
        text = f.read()
    head = text.split("from pyrunc.cli import main")[0].split("\n", 1)[1]
    _warm(["pyrunc.cli", "pyrunc.commands.state"])
    out = _run(head + """
import json
import pyrunc.cli, pyrunc.commands.state
from pyrunc import _fastimport
print(json.dumps([_fastimport.loaded, "os" in sys.modules]))
""")
    assert "pyrunc.cli" in out[0] and "pyrunc.commands.state" in out[0]
    assert out[1] is False


def _fake(tmp_path, files):
    """a second directory of the pyrunc package with these modules, each compiled"""
    pkg = tmp_path / "pyrunc"
    for rel, src in files.items():
        p = pkg / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(src))
        py_compile.compile(str(p), doraise=True)
    return str(pkg)


def _run_fake(pkg, code):
    return _run("""
import json, pyrunc
from pyrunc import _fastimport
_fastimport.install()
_fastimport._root = %r
pyrunc.__path__.append(%r)  # for importlib's own path
""" % (os.path.dirname(pkg), pkg) + textwrap.dedent(code))


def test_a_stale_pyc_is_not_used(tmp_path):
    pkg = _fake(tmp_path, {"fake_stale.py": "VALUE = 1\n", "fake_fresh.py": "VALUE = 2\n"})
    # a new source of another size and mtime: importlib recompiles, so must we
    src = os.path.join(pkg, "fake_stale.py")
    with open(src, "w") as f:
        f.write("VALUE = 'new'\n")
    os.utime(src, (1, 1))
    out = _run_fake(pkg, """
import pyrunc.fake_stale, pyrunc.fake_fresh
print(json.dumps([pyrunc.fake_stale.VALUE, pyrunc.fake_fresh.VALUE, _fastimport.loaded]))
""")
    assert out == ["new", 2, ["pyrunc.fake_fresh"]]


def test_no_pyc_or_a_hash_based_one_takes_importlibs_path(tmp_path):
    pkg = _fake(tmp_path, {"fake_nopyc.py": "VALUE = 1\n"})
    for name in os.listdir(os.path.join(pkg, "__pycache__")):
        os.unlink(os.path.join(pkg, "__pycache__", name))
    hashed = tmp_path / "pyrunc" / "fake_hashed.py"
    hashed.write_text("VALUE = 2\n")
    py_compile.compile(str(hashed), doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    out = _run_fake(pkg, """
import pyrunc.fake_nopyc, pyrunc.fake_hashed
print(json.dumps([pyrunc.fake_nopyc.VALUE, pyrunc.fake_hashed.VALUE, _fastimport.loaded]))
""")
    assert out == [1, 2, []]


def test_a_failing_module_is_not_left_behind(tmp_path):
    pkg = _fake(tmp_path, {"fake_bad.py": "import sys\nsys.modules['pyrunc'].touched = 1\nraise ValueError('boom')\n"})
    out = _run_fake(pkg, """
errs = []
for _ in range(2):
    try:
        import pyrunc.fake_bad
    except ValueError as e:
        errs.append(str(e))
print(json.dumps([errs, "pyrunc.fake_bad" in sys.modules, hasattr(pyrunc, "fake_bad")]))
""")
    assert out == [["boom", "boom"], False, False]


def test_packages_submodules_and_a_package_shadowing_a_module(tmp_path):
    pkg = _fake(tmp_path, {
        "fake_pkg/__init__.py": "from pyrunc.fake_pkg import sub\nKIND = 'package'\n",
        "fake_pkg/sub.py": "from pyrunc import fake_pkg\nVALUE = fake_pkg.__name__\n",
        "fake_pkg.py": "KIND = 'module'\n",
    })
    out = _run_fake(pkg, """
import pyrunc.fake_pkg.sub as sub
import pyrunc.fake_pkg as p
print(json.dumps([p.KIND, p.__path__, p.sub is sub, sub.VALUE, sub.__package__, _fastimport.loaded]))
""")
    assert out == ["package", [os.path.join(pkg, "fake_pkg")], True, "pyrunc.fake_pkg",
                   "pyrunc.fake_pkg", ["pyrunc.fake_pkg.sub", "pyrunc.fake_pkg"]]


def test_a_library_import_leaves_importlib_alone():
    out = _run("""
import json, pyrunc.container, _frozen_importlib
print(json.dumps(_frozen_importlib._find_and_load.__module__))
""")
    assert out == "_frozen_importlib"


def test_with_other_threads_alive_importlib_loads(tmp_path):
    # the first thread is inside the module's body (sleeping) when the second imports
    # it: the second gets the finished module, and a third thread's import of another
    # module does not wait for the first one's (importlib's per-module locks)
    pkg = _fake(tmp_path, {"fake_slow.py": "import time\ntime.sleep(0.4)\nVALUE = 2\n",
                           "fake_quick.py": "VALUE = 3\n"})
    out = _run_fake(pkg, """
import threading, time
got = {}
def first():
    import pyrunc.fake_slow
def second():
    import pyrunc.fake_slow as m
    got["second"] = getattr(m, "VALUE", "half-executed")
def third():
    t0 = time.monotonic()
    import pyrunc.fake_quick
    got["third"] = time.monotonic() - t0
t1 = threading.Thread(target=first)
t1.start()
while "pyrunc.fake_slow" not in sys.modules:
    time.sleep(0.001)
t2, t3 = threading.Thread(target=second), threading.Thread(target=third)
t2.start()
t3.start()
for t in (t1, t2, t3):
    t.join(10)
print(json.dumps([got["second"], got["third"] < 0.2, _fastimport.loaded]))
""")
    assert out == [2, True, []]


def test_a_thread_started_by_a_module_body_waits_for_that_module(tmp_path):
    pkg = _fake(tmp_path, {"fake_spawner.py": """
        import _thread, sys, time
        got = sys.modules["pyrunc"].__dict__.setdefault("got", {})
        def look():
            import pyrunc.fake_spawner as m
            got["seen"] = getattr(m, "VALUE", "half-executed")
        _thread.start_new_thread(look, ())
        time.sleep(0.3)
        VALUE = 5
        """})
    out = _run_fake(pkg, """
import time
import pyrunc.fake_spawner
for _ in range(500):
    if "seen" in pyrunc.got:
        break
    time.sleep(0.01)
print(json.dumps([pyrunc.got.get("seen"), _fastimport.loaded]))
""")
    assert out == [5, ["pyrunc.fake_spawner"]]


def test_no_pyrunc_module_is_both_source_and_extension():
    # importlib would load X.<suffix>.so before X.py (or X/__init__.py); the shortcut
    # only knows sources, so the tree must never hold both (pyrunc/_native is an
    # extension with no .py beside it)
    import importlib.machinery

    pkg_dir = os.path.dirname(pyrunc.__file__)
    both = []
    for d, dirs, files in os.walk(pkg_dir):
        dirs[:] = [x for x in dirs if x != "__pycache__"]
        for f in files:
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                if f.endswith(suffix):
                    stem = os.path.join(d, f[:-len(suffix)])
                    if os.path.exists(stem + ".py") or os.path.exists(os.path.join(stem, "__init__.py")):
                        both.append(os.path.relpath(stem, pkg_dir))
    assert both == []


# Bundles: one file per verb with the code of the modules it loads (make install).

def _bundles_dir(tmp_path, root, groups):
    """bundles of these groups ({group: names}), written from the sources under root"""
    from pyrunc import _fastimport

    d = str(tmp_path / "bundles")
    for group, names in groups.items():
        _fastimport.write_bundle(root, group, names, d)
    return d


def _preload(directory, group):
    return """
_fastimport.bundled.clear()
_fastimport.bundle_dir = %r
_fastimport.preload(%r)
""" % (directory, group)


def test_bundled_modules_are_the_ones_importlib_makes(tmp_path):
    names = MODULES + ["pyrunc.cgroups", "pyrunc.cgroups.v1", "pyrunc.commands"]
    d = _bundles_dir(tmp_path, ROOT, {"g": names})
    fast = _run(DESCRIBE + """
from pyrunc import _fastimport
_fastimport.install()
""" + _preload(d, "g") + """
import %s
print(json.dumps([describe(%r), _fastimport.from_bundle, sorted(_fastimport.bundled)]))
""" % (", ".join(MODULES), names))
    plain = _run(DESCRIBE + """
import %s
print(json.dumps(describe(%r)))
""" % (", ".join(MODULES), names))
    assert fast[0] == plain
    # every module came from the bundle, and the bundle held nothing else
    assert sorted(fast[1]) == sorted(names) and fast[2] == []


def test_a_bundled_module_whose_source_changed_is_not_used(tmp_path):
    pkg = _fake(tmp_path, {"fake_changed.py": "VALUE = 1\n", "fake_same.py": "VALUE = 2\n",
                           "fake_sub/__init__.py": "VALUE = 3\n"})
    d = _bundles_dir(tmp_path, str(tmp_path), {
        "g": ["pyrunc.fake_changed", "pyrunc.fake_same", "pyrunc.fake_sub"]})
    src = os.path.join(pkg, "fake_changed.py")
    with open(src, "w") as f:
        f.write("VALUE = 'changed'\n")
    os.utime(src, (1, 1))
    out = _run_fake(pkg, _preload(d, "g") + """
import pyrunc.fake_changed, pyrunc.fake_same, pyrunc.fake_sub
print(json.dumps([pyrunc.fake_changed.VALUE, pyrunc.fake_same.VALUE, pyrunc.fake_sub.VALUE,
                  _fastimport.from_bundle]))
""")
    assert out == ["changed", 2, 3, ["pyrunc.fake_same", "pyrunc.fake_sub"]]


def test_a_foreign_or_damaged_bundle_is_ignored(tmp_path):
    from importlib.util import MAGIC_NUMBER

    pkg = _fake(tmp_path, {"fake_plain.py": "VALUE = 1\n"})
    d = _bundles_dir(tmp_path, str(tmp_path), {"good": ["pyrunc.fake_plain"]})
    good = open(os.path.join(d, os.listdir(d)[0]), "rb").read()
    suffix = ".%s.bundle" % sys.implementation.cache_tag
    bad = {
        "magic": b"\0\0\0\0" + good[4:],          # another interpreter's
        "mark": good[:4] + b"xxxx" + good[8:],     # another format
        "truncated": good[:len(good) // 2],
        "garbage": MAGIC_NUMBER + b"prc1" + b"\xff" * 64,
        "notadict": MAGIC_NUMBER + b"prc1" + __import__("marshal").dumps([1, 2]),
    }
    for name, data in bad.items():
        with open(os.path.join(d, name + suffix), "wb") as f:
            f.write(data)
    got = []
    for name in bad:
        got.append(_run_fake(pkg, _preload(d, name) + """
import pyrunc.fake_plain
print(json.dumps([pyrunc.fake_plain.VALUE, _fastimport.from_bundle, _fastimport.loaded]))
"""))
    assert got == [[1, [], ["pyrunc.fake_plain"]]] * len(bad)


@requires_root
def test_each_hot_verb_loads_the_modules_of_its_bundle_and_no_others(tmp_path, bundle):
    # pyrunc/launcher.py lists what each verb loads: a module missing from its list is
    # read from its own .pyc, one listed but not loaded is unmarshalled for nothing.
    # The real launcher, with the bundles written for this host into a directory of
    # ours, reports per command what did not come from its bundle and what was left.
    from pyrunc import launcher

    d = str(tmp_path / "bundles")
    launcher.write_bundles(ROOT, d)
    report = str(tmp_path / "report")
    with open(LAUNCHER) as f:
        text = f.read()
    hook = "from pyrunc._fastimport import install\n"
    assert hook in text and text.count("posix._exit(") == 1
    text = text.replace(hook, hook + "import pyrunc._fastimport as _probe\n_probe.bundle_dir = %r\n" % d)
    text = text.replace("posix._exit(", """_r = posix.open(%r, posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT, 0o600)
posix.write(_r, (repr([sys.argv[1:], sorted(set(_probe.loaded) - set(_probe.from_bundle)),
                       sorted(_probe.bundled)]) + "\\n").encode())
posix._exit(""" % report)
    probe = str(tmp_path / "pyrunc-probe")
    with open(probe, "w") as f:
        f.write(text)
    os.chmod(probe, 0o755)
    root = str(tmp_path / "state")

    def run(*args):
        # files, not pipes: the container's init inherits them
        with open(str(tmp_path / "out"), "w+") as out, open(str(tmp_path / "err"), "w+") as err:
            r = subprocess.run([probe, "--root", root] + list(args), stdin=subprocess.DEVNULL,
                               stdout=out, stderr=err, timeout=60)
            out.seek(0)
            err.seek(0)
            assert r.returncode == 0, (args, err.read())
            return out.read()

    cid = bundle.id
    try:
        bundle.args("sleep", "100")
        run("create", "-b", bundle.path, cid)
        run("state", cid)
        run("start", cid)
        run("exec", cid, "true")
        run("kill", cid, "KILL")
        for _ in range(500):
            if json.loads(run("state", cid))["status"] == "stopped":
                break
            time.sleep(0.01)
        run("list")
        run("delete", cid)
        bundle.args("true")
        run("run", "-b", bundle.path, cid)
    finally:
        subprocess.run([probe, "--root", root, "delete", "-f", cid], capture_output=True)
    with open(report) as f:
        rows = [ast.literal_eval(line) for line in f]
    verbs = [r[0][2] for r in rows]
    assert {"create", "state", "start", "exec", "kill", "list", "delete", "run"} <= set(verbs)
    wrong = [r for r in rows if (r[1] or r[2]) and r[0][2:4] != ["delete", "-f"]]
    assert wrong == []
