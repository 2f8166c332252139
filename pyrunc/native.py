"""The compiled core (pyrunc._native): loaded once, version-checked.

Like cryptography's binding: the version string compiled into the .so must match the
Python package, so a stale build fails loudly instead of misreading a plan whose
layout changed.
"""
from pyrunc import __version__
from pyrunc.errors import PyruncError

try:
    from pyrunc._native import ffi, lib
except ImportError as err:  # pragma: no cover - only on a broken install
    raise PyruncError("load pyrunc._native: %s (run `make install`)" % err) from None

_built = ffi.string(lib.prc_version()).decode()
if _built != __version__:  # pragma: no cover
    raise PyruncError("pyrunc._native is version %s but pyrunc is %s: rebuild with `make install`"
                      % (_built, __version__))

__all__ = ["ffi", "lib"]
