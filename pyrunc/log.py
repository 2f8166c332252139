"""runc-compatible logging: --log FILE (append, created on every call), text or json.

Callers read this file: containerd takes the last record with level "error" and wants
RFC 3339 times; podman decodes the whole file as one JSON object on failure.  So:
nothing is written on success (unless --debug), exactly one error record on failure,
and the same message also goes to stderr.
"""
from pyrunc import _os as os
import time

_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}


class Log:
    __slots__ = ("fd", "json", "debug_on", "to_stderr_is_log")

    def __init__(self, path=None, fmt="text", debug=False):
        self.json = fmt == "json"
        self.debug_on = debug
        self.fd = -1
        self.to_stderr_is_log = path is None
        if path is not None:
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def _record(self, level, msg):
        # imported here: a command that writes no record and reads no JSON (the
        # shim's second `delete --force`, of a container already gone) skips _json
        from pyrunc import jsonfast

        t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if self.json:
            return jsonfast.dumps({"level": level, "msg": msg, "time": t}) + "\n"
        return 'time="%s" level=%s msg=%s\n' % (t, level, jsonfast.dumps(msg))

    def write(self, level, msg):
        if level == "debug" and not self.debug_on:
            return
        if self.fd >= 0:
            os.write(self.fd, self._record(level, msg).encode("utf-8", "replace"))
        elif level != "error":
            # no --log: warnings and debug go to stderr as records (runc's default
            # --log is /dev/stderr); errors are printed once, plainly, by error()
            os.write(2, self._record(level, msg).encode("utf-8", "replace"))

    def debug(self, msg):
        self.write("debug", msg)

    def warn(self, msg):
        self.write("warning", msg)

    def error(self, msg):
        """the error record, and the plain message on stderr"""
        if self.fd >= 0:
            os.write(self.fd, self._record("error", msg).encode("utf-8", "replace"))
        elif self.json:
            os.write(2, self._record("error", msg).encode("utf-8", "replace"))
            return
        # one line, whatever a config string quoted in the message holds
        msg = msg.replace("\r", "\\r").replace("\n", "\\n")
        try:
            os.write(2, (msg + "\n").encode("utf-8", "replace"))
        except OSError:
            pass


_log = None


def get():
    global _log
    if _log is None:
        _log = Log()
    return _log


def setup(path, fmt, debug):
    global _log
    _log = Log(path, fmt, debug)
    return _log
