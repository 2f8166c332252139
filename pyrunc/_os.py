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
pays for the import only on the paths that need it.  The two path helpers the short verbs
need (join, abspath) are here, with os.path's results.
"""
from posix import *  # noqa: F401,F403 (the system calls, as os re-exports them)
from posix import _exit  # noqa: F401

# posix.environ has bytes keys; os.environ (str) is built by os itself
del environ  # noqa: F821


def __getattr__(name):
    import os

    return getattr(os, name)


def join(a, b):
    """os.path.join(a, b) for a relative b"""
    return a + b if a.endswith("/") else a + "/" + b


def abspath(p):
    """os.path.abspath(p) without posixpath when p is already absolute and normal"""
    if p == "/" or (p.startswith("/") and not p.endswith("/") and "//" not in p
                    and "/./" not in p + "/" and "/../" not in p + "/"):
        return p
    import os

    return os.path.abspath(p)
