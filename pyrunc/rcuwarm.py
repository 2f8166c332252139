"""Start the kernel's cgroup-migration grace period early, in the background.

Moving a process between cgroups (a write to `cgroup.procs`) takes the kernel's global
`cgroup_threadgroup_rwsem` for writing.  That is a per-cpu rwsem: a writer first flips
its rcu_sync from the idle state, which costs a full RCU grace period (13 ms on this
2-core VM, measured with strace on both pyrunc and runc).  Once the flip is done, and
for one more grace period after the last writer leaves, further writers enter at once.

Most of the time nobody pays it: children join v1 hierarchies themselves by a
thread-only move, which skips the lock (csrc/child/util.c), and are cloned straight
into their cgroup2 directory.  `exec` into a container with a user or cgroup
namespace cannot clone into cgroup2 (the kernel refuses it after those setns calls),
so its parent moves the process and pays the grace period.  Nothing in the grace
period depends on *which* migration asked for it, so a thread asks for it as soon as
that is known (pyrunc/process.py): it writes our own pid into the cgroup we are
already in.  The kernel takes the lock, sees the task is already there
and moves nothing (same css_set: no attach callbacks run), but the grace period has
started while the main thread spawns the child.  When the main thread then writes the new process's pid, the wait is over or shorter.

Best effort by design: any failure (no v1 hierarchy, not root, an unexpected mount
layout) only means the real write waits as before.  On pure cgroup2 the init is
created in its cgroup by clone3(CLONE_INTO_CGROUP) and no migration happens, so
nothing is started.  The thread only blocks in write(2) with the GIL released; it is
never joined (the launcher leaves with os._exit).
"""
from pyrunc import _os as os

_started = False


def _target():
    """cgroup.procs of the v1 cgroup this process is in, or None"""
    try:
        fd = os.open("/proc/self/cgroup", os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.read(fd, 8192)
        finally:
            os.close(fd)
    except OSError:
        return None
    for line in data.decode("ascii", "replace").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        ctrls, path = parts[1], parts[2]
        if not ctrls or ctrls.startswith("name="):
            continue  # the cgroup2 line, or a named hierarchy: may not be mounted
        # a co-mounted hierarchy ("cpu,cpuacct") is mounted under its joined name
        return "/sys/fs/cgroup/%s%s/cgroup.procs" % (ctrls, path.rstrip("/"))
    return None


# The grace period that returns the lock to its idle state starts when the last
# writer leaves; a writer arriving before it ends does not wait.  Re-writing every
# KEEP seconds (well under one grace period) keeps the lock warm until the main thread
# has done its own writes and calls stop(); LIMIT bounds it if it never does.
KEEP = 0.002
LIMIT = 0.5
_stop = False


def _warm(path, pid):
    import time

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        deadline = time.monotonic() + LIMIT
        while not _stop and time.monotonic() < deadline:
            os.write(fd, pid)
            time.sleep(KEEP)
    except OSError:
        pass
    finally:
        os.close(fd)


def stop():
    """the caller's own migrations are done: let the lock go idle"""
    global _stop
    _stop = True


def start():
    global _started
    if _started:
        return
    _started = True
    path = _target()
    if path is None:
        return
    import _thread

    try:
        _thread.start_new_thread(_warm, (path, b"%d" % os.getpid()))
    except RuntimeError:
        pass
