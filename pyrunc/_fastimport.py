"""Load pyrunc's own modules from their cached bytecode without importlib's generic path.

Every pyrunc command imports its modules afresh: `create` loads 28, a short verb about
ten.  Past the bytecode itself, each import through importlib costs about 55 us here
(measured on an empty module): the frozen bootstrap's Python code looks for a module
lock, asks the built-in and frozen importers, builds a FileFinder cache, tries the
extension suffixes, stats the source twice and checks the .pyc header, all in Python.
For pyrunc's own modules the answer is always the same file, so `install` puts a
shortcut in front of it: the name maps to pyrunc/<path>.py, its .pyc is read with one
stat of the source, one open and one read, checked the way importlib checks it
(magic number, timestamp-based, the source's mtime and size), and executed in a
module set up with the same attributes importlib sets (__spec__ with a
SourceFileLoader, __file__, __cached__, __package__, __path__).  Anything it cannot
vouch for (another package, an extension module, no .pyc yet, a stale or hash-based
.pyc) goes down the generic path unchanged, which also writes the .pyc for next time.
importlib prefers an extension module (X.*.so) to a source of the same name; the
shortcut never looks for one, so pyrunc's tree never holds both (a unit test checks).

How: CPython's import statement, on a name not in sys.modules, calls
`_frozen_importlib._find_and_load(name, import_)`, looked up on that module at each
call (Python/import.c, 3.11 to 3.13).  `install` wraps it.  It takes the shortcut only
while the process has no other thread (the pyrunc command imports from its main
thread alone); a load holds the interpreter-wide import lock and marks its spec
`_initializing`, so a thread that a module body starts waits for that module rather
than see it half-executed (see _find_and_load).

Bundles: one verb's modules in one file.  Even the shortcut opens, reads and closes
one .pyc per module (create loads 20).  `make install` also writes, per hot verb, one
file holding the code of the modules that verb loads (pyrunc/launcher.py lists them):
pyrunc/__pycache__/<group>.<cache tag>.bundle.  `install` reads the "boot" group (what
the command line loads before it knows the verb), pyrunc.cli the verb's own group once
it does: one open, one read and one unmarshal each.  A bundled module costs one stat of
its source: its code is used only if it was compiled from a source of the mtime and size
found now (else the module takes the .pyc path above).  A missing, unreadable or
foreign bundle (another Python, another format) is ignored.

Only the pyrunc command installs it (the launcher, pyrunc/launcher.py); a program that
imports pyrunc as a library keeps importlib as it is.
"""
import sys
from marshal import loads as _loads

import _imp
from _thread import _count as _thread_count
import _frozen_importlib as _bootstrap
from _frozen_importlib_external import MAGIC_NUMBER, SourceFileLoader
from posix import O_CLOEXEC, O_RDONLY, close as _close, open as _open, read as _read, stat as _stat

_PREFIX = "pyrunc."
_SUFFIX = ".%s.pyc" % sys.implementation.cache_tag
_BUNDLE_SUFFIX = ".%s.bundle" % sys.implementation.cache_tag
# after the interpreter's magic number: this format's own mark
_BUNDLE_MARK = b"prc1"
_BUNDLE_MAX = 1 << 22  # a bundle is a few hundred KB: a larger file is not one of ours
_generic = None
_root = None  # the directory holding the pyrunc package
# names this module loaded (tests check that the command takes the shortcut), and those
# of them whose code came from a bundle
loaded = []
from_bundle = []
# name -> (is_package, source mtime, source size, code): read from bundles, not yet used
bundled = {}
# where the bundles are; install() sets pyrunc/__pycache__ unless set before (tests)
bundle_dir = None


def _where(base, pkg):
    """(source, cached .pyc) of the module at base (its path without .py)"""
    if pkg:
        return base + "/__init__.py", base + "/__pycache__/__init__" + _SUFFIX
    head, _, tail = base.rpartition("/")
    return base + ".py", head + "/__pycache__/" + tail + _SUFFIX


def _stamp(st):
    """what a .pyc (and a bundle) records of its source: mtime and size, as importlib
    keeps them (32 bits each)"""
    return int(st.st_mtime) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF


def _bytecode(name):
    """(source, cached, is_package, code) for pyrunc module `name`, or None"""
    base = _root + "/" + name.replace(".", "/")
    entry = bundled.pop(name, None)
    if entry is not None:
        # bundled code, if compiled from the source as it is now (one stat: the bundle
        # knows whether it is a package)
        pkg, mtime, size, code = entry
        source, cached = _where(base, pkg)
        try:
            st = _stat(source)
        except OSError:
            st = None
        if st is not None and _stamp(st) == (mtime, size):
            _imp._fix_co_filename(code, source)
            from_bundle.append(name)
            return source, cached, pkg, code
    # a package wins over a module of the same name, as in importlib's FileFinder
    for pkg in (True, False):
        source, cached = _where(base, pkg)
        try:
            st = _stat(source)
            break
        except OSError:
            pass
    else:
        return None  # an extension module (pyrunc._native), or no such module
    try:
        fd = _open(cached, O_RDONLY | O_CLOEXEC)
    except OSError:
        return None
    bound = st.st_size * 4 + (1 << 16)  # a .pyc is rarely larger than its source
    try:
        data = _read(fd, bound)
    finally:
        _close(fd)
    if len(data) >= bound:
        return None
    # importlib's checks (_classify_pyc, _validate_timestamp_pyc): flags 0 is a
    # timestamp-based .pyc, valid for a source of this mtime and size
    if (len(data) < 16 or data[:4] != MAGIC_NUMBER or data[4:8] != b"\0\0\0\0"
            or (int.from_bytes(data[8:12], "little"), int.from_bytes(data[12:16], "little"))
            != _stamp(st)):
        return None
    code = _loads(memoryview(data)[16:])
    # as importlib: tracebacks name the source where it is now
    _imp._fix_co_filename(code, source)
    return source, cached, pkg, code


def _find_and_load(name, import_):
    # Only while no other thread runs.  Then a load that holds the interpreter-wide
    # import lock cannot deadlock: a thread started by a module body finds the lock
    # held at its first import (importlib takes it before any module lock), so it holds
    # nothing we could wait for.  With other threads alive, importlib's per-module locks
    # and deadlock detection are the right tool, and cost 6-7 us a module here.
    if not name.startswith(_PREFIX) or _thread_count():
        return _generic(name, import_)
    _imp.acquire_lock()
    try:
        if name in sys.modules:  # another thread loaded it while we waited
            return sys.modules[name]
        parent, _, tail = name.rpartition(".")
        if parent not in sys.modules:
            import_(parent)
            if name in sys.modules:  # the parent's import loaded it
                return sys.modules[name]
        found = _bytecode(name)
        if found is None:
            return _generic(name, import_)
        source, cached, pkg, code = found
        loader = SourceFileLoader(name, source)
        spec = _bootstrap.ModuleSpec(name, loader, origin=source, is_package=pkg)
        spec.has_location = True
        spec.cached = cached
        module = type(sys)(name)
        module.__spec__ = spec
        module.__loader__ = loader
        module.__file__ = source
        module.__cached__ = cached
        if pkg:
            spec.submodule_search_locations = [source.rpartition("/")[0]]
            module.__path__ = spec.submodule_search_locations
            module.__package__ = name
        else:
            module.__package__ = parent
        # while the body runs, a thread that finds the module in sys.modules (one the
        # body started) waits for the import lock instead of using it half-executed:
        # the import statement sees this flag and takes the module's lock, which needs
        # the import lock first
        spec._initializing = True
        sys.modules[name] = module
        try:
            exec(code, module.__dict__)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        finally:
            spec._initializing = False
        loaded.append(name)
        module = sys.modules[name]  # a module may replace itself, as importlib allows
        setattr(sys.modules[parent], tail, module)
        return module
    finally:
        _imp.release_lock()


def install():
    """Route pyrunc's submodules through the shortcut (idempotent)."""
    global _generic, _root
    if _generic is not None:
        return
    current = _bootstrap._find_and_load
    code = getattr(current, "__code__", None)
    # the call this relies on: a future CPython that changes it keeps its own path
    if code is None or code.co_varnames[:2] != ("name", "import_"):
        return
    import pyrunc

    global bundle_dir
    _root = pyrunc.__path__[0].rpartition("/")[0]
    if bundle_dir is None:
        bundle_dir = _root + "/pyrunc/__pycache__"
    _generic = current
    _bootstrap._find_and_load = _find_and_load
    preload("boot")


def preload(group):
    """Read the bundle of `group` (see the module's docstring); nothing if there is none.
    Only once the shortcut is installed, and only code the interpreter would make: a
    bundle is compiled without optimisation, so under -O it is ignored."""
    if _generic is None or sys.flags.optimize:
        return
    try:
        fd = _open(bundle_dir + "/" + group + _BUNDLE_SUFFIX, O_RDONLY | O_CLOEXEC)
    except OSError:
        return
    try:
        data = _read(fd, _BUNDLE_MAX)
    except OSError:
        return
    finally:
        _close(fd)
    if len(data) >= _BUNDLE_MAX or data[:4] != MAGIC_NUMBER or data[4:8] != _BUNDLE_MARK:
        return
    try:
        entries = _loads(memoryview(data)[8:])
    except (EOFError, ValueError, TypeError):
        return
    if type(entries) is dict:
        bundled.update(entries)


def write_bundle(root, group, names, directory=None):
    """Write the bundle `preload(group)` reads: the code of these pyrunc modules, compiled
    from their sources under `root` (the directory holding the pyrunc package) as
    importlib compiles them, into `directory` (default: the package's __pycache__).
    Returns its path.  For `make install` (pyrunc/launcher.py) and tests."""
    import os

    entries = {}
    for name in names:
        base = root + "/" + name.replace(".", "/")
        pkg = os.path.isfile(base + "/__init__.py")  # a package wins, as in _bytecode
        source = _where(base, pkg)[0]
        st = os.stat(source)
        with open(source, "rb") as f:
            text = f.read()
        code = compile(text, source, "exec", dont_inherit=True, optimize=0)
        entries[name] = (pkg,) + _stamp(st) + (code,)
    import marshal

    data = MAGIC_NUMBER + _BUNDLE_MARK + marshal.dumps(entries)
    cache = directory or root + "/pyrunc/__pycache__"
    os.makedirs(cache, exist_ok=True)
    path = cache + "/" + group + _BUNDLE_SUFFIX
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path
