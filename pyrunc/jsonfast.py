"""JSON without the `json` package.

`import json` costs about 10 ms here: json.decoder and json.encoder import `re`, and
`re` imports `enum`.  Every pyrunc command reads or writes JSON, so the hot path uses
the C accelerator `_json` directly: its scanner is what json.loads runs anyway (same
grammar, same errors), and the encoder below only has to handle the plain data pyrunc
writes (dicts, lists, str, int, float, bool, None).
"""
import _json
import sys

__all__ = ["loads", "dumps", "JSONError"]


class JSONError(ValueError):
    pass


def _nan(name):
    return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


# the attributes _json.make_scanner reads from its context object, on an instance of
# types.SimpleNamespace (sys.implementation's type: no `types` import): every command
# imports this module, and a class statement costs ~0.1 million instructions
_scan = _json.make_scanner(type(sys.implementation)(
    strict=True, object_hook=None, object_pairs_hook=None, parse_float=float, parse_int=int,
    parse_constant=_nan))
_WS = " \t\n\r"


def _lineno(text, pos):
    line = text.count("\n", 0, pos) + 1
    col = pos - text.rfind("\n", 0, pos)
    return "line %d column %d" % (line, col)


def loads(text):
    """Parse a JSON document (str or bytes); raise JSONError with line and column."""
    if isinstance(text, (bytes, bytearray)):
        # a BOM is skipped, as the utf-8-sig codec would (which is a module to import)
        bom = 3 if text[:3] == b"\xef\xbb\xbf" else 0
        try:
            text = str(text[bom:] if bom else text, "utf-8")
        except UnicodeDecodeError as err:
            raise JSONError("invalid utf-8 at byte %d" % (err.start + bom)) from None
    n = len(text)
    i = 0
    while i < n and text[i] in _WS:
        i += 1
    if i == n:
        raise JSONError("empty document")
    try:
        obj, end = _scan(text, i)
    except StopIteration as err:
        raise JSONError("unexpected character at %s" % _lineno(text, err.value)) from None
    except ValueError as err:  # json.JSONDecodeError comes from the pure-Python module
        raise _decode_error(err, text) from None
    except SystemError:
        # _json reports most syntax errors (an unterminated string, a missing comma)
        # by raising json.decoder.JSONDecodeError, which it looks up in sys.modules
        # only: when json.decoder was never imported (our hot path) it returns NULL
        # with no exception set, and the interpreter turns that into a SystemError.
        # Only on this error path: scan again with a stand-in json.decoder.
        raise _rescan_error(text, i) from None
    except RecursionError:
        raise JSONError("nesting too deep") from None
    while end < n and text[end] in _WS:
        end += 1
    if end != n:
        raise JSONError("extra data at %s" % _lineno(text, end))
    return obj


def _decode_error(err, text):
    if _DecodeError is not None and isinstance(err, _DecodeError):
        msg = err.args[0].lower()  # "unterminated string starting at"
        if msg.endswith(" at"):
            msg = msg[:-3]
    else:  # the real JSONDecodeError: "msg: line L column C (char N)"
        msg = str(err).split(": line")[0].lower()
    pos = getattr(err, "pos", None)
    where = _lineno(text, pos) if pos is not None else "?"
    return JSONError("%s at %s" % (msg, where))


def _decode_error_class():
    """what _json raises through the stand-in json.decoder: (msg, doc, pos); made on
    the error path only (a class costs every command ~0.1 million instructions)"""
    global _DecodeError

    class _DecodeError(ValueError):
        def __init__(self, msg, doc, pos):
            super().__init__(msg)
            self.pos = pos

    return _DecodeError


_DecodeError = None


def _rescan_error(text, i):
    mods = sys.modules
    if "json.decoder" in mods:  # the real one: the SystemError had another cause
        return JSONError("invalid document")
    stand_in = type(sys)("json.decoder")
    stand_in.JSONDecodeError = _DecodeError or _decode_error_class()
    mods["json.decoder"] = stand_in
    try:
        _scan(text, i)
    except StopIteration as err:
        return JSONError("unexpected character at %s" % _lineno(text, err.value))
    except ValueError as err:
        return _decode_error(err, text)
    except RecursionError:
        return JSONError("nesting too deep")
    except Exception:
        pass
    finally:
        # never leave it there: a later `import json` must find the real module
        if mods.get("json.decoder") is stand_in:
            del mods["json.decoder"]
    return JSONError("invalid document")


_enc = _json.encode_basestring


def _dump(obj, out, indent, level):
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, str):
        out.append(_enc(obj))
    elif isinstance(obj, int):
        out.append(int.__repr__(obj))
    elif isinstance(obj, float):
        out.append(float.__repr__(obj))
    elif isinstance(obj, dict):
        if not obj:
            out.append("{}")
            return
        if indent is None:
            out.append("{")
            first = True
            for k, v in obj.items():
                if not first:
                    out.append(",")
                first = False
                out.append(_enc(str(k)))
                out.append(":")
                _dump(v, out, None, 0)
            out.append("}")
        else:
            pad = "\n" + indent * (level + 1)
            out.append("{")
            first = True
            for k, v in obj.items():
                if not first:
                    out.append(",")
                first = False
                out.append(pad)
                out.append(_enc(str(k)))
                out.append(": ")
                _dump(v, out, indent, level + 1)
            out.append("\n" + indent * level + "}")
    elif isinstance(obj, (list, tuple)):
        if not obj:
            out.append("[]")
            return
        if indent is None:
            out.append("[")
            for i, v in enumerate(obj):
                if i:
                    out.append(",")
                _dump(v, out, None, 0)
            out.append("]")
        else:
            pad = "\n" + indent * (level + 1)
            out.append("[")
            for i, v in enumerate(obj):
                if i:
                    out.append(",")
                out.append(pad)
                _dump(v, out, indent, level + 1)
            out.append("\n" + indent * level + "]")
    else:
        raise TypeError("cannot encode %s as JSON" % type(obj).__name__)


def _default(obj):
    raise TypeError("cannot encode %s as JSON" % type(obj).__name__)


# Compact output comes from _json's C encoder (what json.dumps runs without indent):
# create writes state.json up to three times, and this is 3x faster than _dump.
# No circular-reference markers: pyrunc only encodes trees it built.
_compact = _json.make_encoder(None, _default, _enc, None, ":", ",", False, False, True)


def dumps(obj, indent=None):
    """Compact JSON, or pretty-printed with `indent` spaces (as runc prints state)."""
    if indent is None:
        return "".join(_compact(obj, 0))
    out = []
    _dump(obj, out, None if indent is None else " " * indent, 0)
    return "".join(out)
