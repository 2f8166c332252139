"""OCI hooks: the container state as JSON on stdin, args and env as given, timeout.

Hooks are started with os.posix_spawn (no `subprocess` import on the create path; it
costs ~18 ms) and awaited through a pidfd, so a timeout needs no signals or threads.
Their stdout and stderr are captured and quoted in the error when they fail.
"""
from pyrunc import _os as os

from pyrunc import jsonfast
from pyrunc.errors import PyruncError


class HookError(PyruncError):
    pass


# runtime-spec (runtime.md, lifecycle): a failing poststart or poststop hook is logged
# as a warning and "the remaining hooks and lifecycle continue as if the hook had
# succeeded"; a failure in any other phase stops there and fails the operation
_KEEP_GOING = ("poststart", "poststop")


def run(phase, hooks, state, ns_fds=None, cwd=None, seccomp=None):
    """Run every hook of `phase` in order; a failure raises HookError (for poststart
    and poststop only after the remaining hooks ran, with every failure in one line).
    With ns_fds, each hook first joins those namespaces (createContainer), then goes
    to cwd and loads the seccomp filter (a seccomp.Prepared) when given."""
    payload = jsonfast.dumps(state).encode()
    failed = []
    for i, hook in enumerate(hooks):
        try:
            _run_one(phase, i, hook, payload, ns_fds, cwd, seccomp)
        except HookError as err:
            if phase not in _KEEP_GOING:
                raise
            failed.append(str(err))
    if failed:
        raise HookError("; ".join(failed))


def _spawn(hook, argv, rin, wout, ns_fds, cwd=None, seccomp=None):
    if ns_fds is None:
        return os.posix_spawn(hook.path, argv, _env(hook.env), file_actions=[
            (os.POSIX_SPAWN_DUP2, rin, 0),
            (os.POSIX_SPAWN_DUP2, wout, 1),
            (os.POSIX_SPAWN_DUP2, wout, 2),
        ])
    from pyrunc.native import ffi, lib

    keep = [ffi.new("char[]", a.encode()) for a in argv]
    env = [ffi.new("char[]", e.encode()) for e in hook.env if "=" in e]
    prog = ffi.from_buffer(seccomp.program) if seccomp is not None else ffi.NULL
    n = len(seccomp.program) // 8 if seccomp is not None else 0
    pid = lib.prc_spawn_in_ns2(ffi.new("int[]", ns_fds or [0]), len(ns_fds), hook.path.encode(),
                               ffi.new("char *[]", keep + [ffi.NULL]),
                               ffi.new("char *[]", env + [ffi.NULL]), rin, wout,
                               cwd.encode() if cwd else ffi.NULL, prog, n,
                               seccomp.flags if seccomp is not None else 0)
    if pid < 0:
        raise OSError(-pid, os.strerror(-pid))
    return pid


def _run_one(phase, i, hook, payload, ns_fds, cwd=None, seccomp=None):
    import select

    what = "%s hook #%d (%s)" % (phase, i, hook.path)
    argv = hook.args or [hook.path]
    rin, win = os.pipe()
    rout, wout = os.pipe()
    try:
        if ns_fds is not None and not os.access(hook.path, os.X_OK):
            raise HookError("run %s: %s" % (what, "no such file or directory"
                                            if not os.path.exists(hook.path) else "permission denied"))
        try:
            pid = _spawn(hook, argv, rin, wout, ns_fds, cwd, seccomp)
        except OSError as err:
            raise HookError("run %s: %s" % (what, os.strerror(err.errno).lower())) from None
        os.close(rin)
        rin = -1
        os.close(wout)
        wout = -1
        try:
            os.write(win, payload)
        except (BrokenPipeError, BlockingIOError):
            pass  # the hook does not read its stdin: allowed
        os.close(win)
        win = -1
        pidfd = os.pidfd_open(pid)
        output = b""
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.register(rout, select.POLLIN)
        deadline = None if hook.timeout is None else _now() + hook.timeout
        exited = False
        out_open = True
        try:
            while not exited or out_open:
                timeout = None if deadline is None else max(0, int((deadline - _now()) * 1000))
                events = poller.poll(timeout)
                if not events and deadline is not None and _now() >= deadline:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    raise HookError("%s: timed out after %d seconds" % (what, hook.timeout))
                for fd, _ in events:
                    if fd == pidfd:
                        exited = True
                        poller.unregister(pidfd)
                    else:
                        chunk = os.read(rout, 65536)
                        if chunk:
                            output = (output + chunk)[-4096:]
                        else:
                            out_open = False
                            poller.unregister(rout)
                if exited and out_open:
                    # the hook is gone; a grandchild may still hold the pipe: stop here
                    break
        finally:
            os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            code = os.waitstatus_to_exitcode(status)
            if code >= 0:
                why = "exit status %d" % code
            else:
                import signal

                # "bad system call" for a hook that its seccomp filter killed (runc's words)
                why = "killed by signal %d (%s)" % (-code, (signal.strsignal(-code) or "?").lower())
            text = output.decode("utf-8", "replace").strip().replace("\n", " ")
            raise HookError("%s: error running hook: %s%s" % (what, why, (": " + text) if text else ""))
    finally:
        for fd in (rin, win, rout, wout):
            if fd >= 0:
                os.close(fd)


def _env(env):
    out = {}
    for e in env:
        k, sep, v = e.partition("=")
        if sep:
            out[k] = v
    return out


def _now():
    import time

    return time.monotonic()
