"""`os` for pyrunc's hot path, without importing os.

`import os` costs every command about 5 million instructions (1.5 ms, a fifth of the
interpreter's whole start-up): os.py imports `_collections_abc` (its ABC classes alone
are 3 million), `stat` and `posixpath`, and builds `os.environ`.  A pyrunc verb's work is
system calls, and every one of them lives in the built-in `posix` module, which os only
re-exports.  So modules on the hot path write

    from pyrunc import _os as os

and get posix's functions and constants under their usual names.  Anything else (os.path,
os.environ, os.makedirs, os.fsencode, os.SEEK_SET, ...) comes from the real os module,
imported on first use by the module `__getattr__` below: code may use all of os, and
pays for the import only on the paths that need it.  The helpers the hot path needs
(join, normpath, abspath, exists, isdir, and getenv for os.environ.get) are here, with
os.path's results (tests/unit/test_os_shim.py compares them).
"""
from posix import *  # noqa: F401,F403 (the system calls, as os re-exports them)
from posix import _exit  # noqa: F401

# posix.environ has bytes keys and values; os.environ (str) is built by os itself
_environb = environ  # noqa: F405
del environ


def __getattr__(name):
    import os

    return getattr(os, name)


def join(a, b):
    """os.path.join(a, b)"""
    if b.startswith("/") or not a:
        return b
    return a + b if a.endswith("/") else a + "/" + b


def normpath(p):
    """os.path.normpath(p): "." and empty components dropped, ".." folded, two
    leading slashes kept (POSIX leaves "//" implementation-defined), three made one"""
    if not p:
        return "."
    lead = 2 if p.startswith("//") and not p.startswith("///") else 1 if p.startswith("/") else 0
    comps = []
    for c in p.split("/"):
        if not c or c == ".":
            continue
        if c != ".." or (not lead and not comps) or (comps and comps[-1] == ".."):
            comps.append(c)
        elif comps:
            comps.pop()
    return "/" * lead + "/".join(comps) or "."


def abspath(p):
    """os.path.abspath(p)"""
    if not p.startswith("/"):
        p = join(getcwd(), p)  # noqa: F405 (posix.getcwd)
    return normpath(p)


def exists(p):
    """os.path.exists(p)"""
    try:
        stat(p)  # noqa: F405 (posix.stat)
    except (OSError, ValueError):
        return False
    return True


def isdir(p):
    """os.path.isdir(p)"""
    try:
        return stat(p).st_mode & 0o170000 == 0o040000  # noqa: F405 (posix.stat; S_IFDIR)
    except (OSError, ValueError):
        return False


def read_all(fd):
    """everything left to read on fd, as bytes (one read per 64 KiB, joined once)"""
    chunks = []
    while True:
        b = read(fd, 65536)  # noqa: F405 (posix.read)
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


def read_file(path):
    """the whole file at path, as bytes: posix calls, not open(), whose buffered file
    object costs five more system calls (fstat twice, ioctl, lseek twice)"""
    fd = open(path, O_RDONLY | O_CLOEXEC)  # noqa: F405 (posix.open)
    try:
        return read_all(fd)
    finally:
        close(fd)  # noqa: F405


def getenv(name, default=None):
    """os.environ.get(name, default), from posix's bytes environment (the same
    start-up snapshot os.environ copies)"""
    import sys

    v = _environb.get(name.encode())
    if v is None:
        return default
    return v.decode(sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())
