"""Parent side of the sync protocol with the child (see csrc/include/pyrunc_api.h).

Record types and stage names mirror the header; tests/unit/test_sync_codec.py checks
that both agree.
"""
from pyrunc import _os as os

from pyrunc.errors import InitError
from pyrunc.native import ffi, lib

MSG_PID = 1
MSG_GO = 2
MSG_HOOKS = 3
MSG_HOOKS_DONE = 4
MSG_PTY = 5
MSG_SECCOMP_FD = 6
MSG_READY = 7
MSG_START = 8
MSG_ERROR = 9

STAGES = {
    1: "spawn", 2: "setns", 3: "timens", 4: "clone", 5: "sync", 6: "userns", 7: "hostname",
    8: "rootfs", 9: "mount", 10: "devices", 11: "pivot_root", 12: "masked paths",
    13: "readonly paths", 14: "sysctl", 15: "rlimits", 16: "process", 17: "terminal",
    18: "seccomp", 19: "user", 20: "capabilities", 21: "cwd", 22: "fds", 23: "exec", 24: "wait",
    25: "cgroup",
    26: "lsm",
    27: "network",
}


class Channel:
    """One end of the SOCK_SEQPACKET socketpair, with reusable buffers."""

    __slots__ = ("fd", "_msg", "_fd")

    def __init__(self, fd):
        self.fd = fd
        self._msg = ffi.new("struct prc_msg *")
        self._fd = ffi.new("int *")

    def send(self, mtype, value=0, fd=-1):
        m = self._msg
        m.type = mtype
        m.value = value
        m.err = 0
        m.stage = 0
        r = lib.prc_sync_send(self.fd, m, fd)
        if r < 0:
            raise InitError("container init: send %d: %s" % (mtype, os.strerror(-r).lower()),
                            lib.PRC_STAGE_SYNC, -r)

    def recv(self):
        """(type, value, fd); type 0 on EOF (the child exited without a word)"""
        r = lib.prc_sync_recv(self.fd, self._msg, self._fd)
        if r == -104:
            # ECONNRESET: the child closed its end with a record of ours unread (it
            # failed while our GO was on its way).  The kernel says so first, once;
            # what the child sent before it closed is still queued behind it.
            r = lib.prc_sync_recv(self.fd, self._msg, self._fd)
        if r == -32:  # EPIPE: our marker for EOF
            return 0, 0, -1
        if r < 0:
            raise InitError("container init: receive: %s" % os.strerror(-r).lower(),
                            lib.PRC_STAGE_SYNC, -r)
        m = self._msg
        if m.type == MSG_ERROR:
            raise error_from(m)
        return m.type, m.value, self._fd[0]

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def error_from(m):
    text = ffi.string(m.text).decode("utf-8", "replace")
    if m.err:
        text = "%s: %s" % (text, os.strerror(m.err).lower())
    return InitError(text, m.stage, m.err)
