"""pyimage's exceptions.  Every message is one lowercase line: operation, object, cause.

The CLI prints `pyimage: <message>` and exits non-zero; nothing else reaches the user.
"""


class PyimageError(Exception):
    """Base class; str(err) is the whole user-facing line."""


class UsageError(PyimageError):
    """bad command-line input"""


class ReferenceError_(PyimageError):
    """an image reference that cannot be parsed"""


class RegistryError(PyimageError):
    """an error answer from a registry (HTTP status + distribution error codes)"""

    def __init__(self, msg, status=None, codes=(), temporary=False):
        super().__init__(msg)
        self.status = status
        self.codes = tuple(codes)
        self.temporary = temporary


class AuthError(RegistryError):
    """authentication refused (wrong credentials, token endpoint failure)"""


class NotFound(RegistryError):
    """manifest or blob unknown to the registry"""


class DigestMismatch(PyimageError):
    """content whose digest or size differs from what its descriptor says"""


class LayerError(PyimageError):
    """a layer that cannot be applied: corrupt stream, hostile tar entry"""


class StoreError(PyimageError):
    """the local image store is missing something or is damaged"""


class Interrupted(BaseException):
    """SIGTERM or SIGHUP arrived: raised in the main thread like KeyboardInterrupt, so
    the same cleanup runs (a BaseException: no `except Exception` may swallow it)"""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


class defer_signals:
    """Around cleanup code: a signal arriving inside is held back (cli's handler asks
    `deferring()`), so removing a half-made bundle is never cut short; it is raised as
    Interrupted at the end unless another exception is already on its way out."""
    depth = 0
    pending = None

    def __enter__(self):
        defer_signals.depth += 1
        return self

    def __exit__(self, exc_type, exc, tb):
        defer_signals.depth -= 1
        if defer_signals.depth == 0 and defer_signals.pending is not None:
            signum, defer_signals.pending = defer_signals.pending, None
            if exc_type is None:
                raise Interrupted(signum)
        return False

    @staticmethod
    def deferring(signum):
        if defer_signals.depth > 0:
            defer_signals.pending = signum
            return True
        return False


MAX_SHOWN = 300     # characters of image-controlled text quoted in a message


def printable(text, limit=None):
    """`text` safe for a terminal: control characters, format characters (bidi
    overrides) and unpaired surrogates (undecodable bytes of a tar name) escaped as
    \\xNN / \\uNNNN, cut to `limit` characters.  Every message line goes through it,
    since names, tags, paths and media types come from the image or the registry."""
    s = str(text)
    if limit is not None and len(s) > limit:
        s = s[:limit] + "..."
    if s.isprintable():
        return s
    out = []
    for ch in s:
        if ch.isprintable():
            out.append(ch)
        else:
            o = ord(ch)
            if 0xdc80 <= o <= 0xdcff:       # a byte that was not utf-8 (surrogateescape)
                out.append("\\x%02x" % (o - 0xdc00))
            elif o < 0x100:
                out.append("\\x%02x" % o)
            elif o < 0x10000:
                out.append("\\u%04x" % o)
            else:
                out.append("\\U%08x" % o)
    return "".join(out)


def show(text):
    """image-controlled text quoted inside a message: escaped and cut short"""
    return printable(text, MAX_SHOWN)
