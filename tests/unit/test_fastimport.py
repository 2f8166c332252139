"""pyrunc._fastimport: pyrunc's modules from their .pyc, the same modules importlib makes,
and importlib's own path for everything it cannot vouch for."""
import json
import os
import py_compile
import subprocess
import sys
import textwrap

import pyrunc

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
