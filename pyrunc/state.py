"""The state root: <root>/<id>/state.json (+ exec.fifo while created), locking, status.

Status is never stored: it is derived from the init process every time, as runc does.
A pid that is gone, a zombie, or a pid reused by another process (its start time
differs from the one recorded at create) is `stopped`.  state.json is written to a
temporary file and renamed, so a reader never sees half of it.
"""
from pyrunc import _os as os

from pyrunc.errors import NotFoundError, PyruncError, StateError

DEFAULT_ROOT = "/run/pyrunc"
STATE_FILE = "state.json"
FIFO = "exec.fifo"

_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def check_id(cid):
    # runc: ^[\w+-\.]+$, and not "." or ".." (they would name the root or its parent)
    if not cid or cid in (".", "..") or not _ID_CHARS.issuperset(cid) or len(cid) > 1024:
        raise PyruncError("invalid container ID format: %r" % cid)


def default_root():
    """runc's rule: $XDG_RUNTIME_DIR/pyrunc for a rootless caller (not root, or root
    inside a user namespace unless $USER is root), else /run/pyrunc.  Podman sets
    XDG_RUNTIME_DIR to "" for rootful containers.  posix.environ (bytes): os.environ
    would import os (see pyrunc/_os.py)."""
    import posix

    env = posix.environ
    xdg = env.get(b"XDG_RUNTIME_DIR")
    if os.geteuid() == 0:
        if not xdg or env.get(b"USER") == b"root":
            return DEFAULT_ROOT
        from pyrunc.userns import running_in_userns

        if not running_in_userns():
            return DEFAULT_ROOT
    if xdg:
        return os.join(xdg.decode("utf-8", "surrogateescape"), "pyrunc")
    return DEFAULT_ROOT


def _root_hint(root, err):
    """what an unprivileged caller of the default root should do instead"""
    if err.errno in (1, 13, 30) and os.geteuid() != 0 and root == DEFAULT_ROOT:
        return " (not root: set XDG_RUNTIME_DIR or pass --root DIR)"
    return ""


def now_rfc3339():
    import time

    ns = time.time_ns()
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + ".%09dZ" % frac


def proc_start_time(pid):
    """(state letter, start time in clock ticks) of pid, or None if it does not exist"""
    # os.open/os.read: three system calls, where open() makes eight
    try:
        fd = os.open("/proc/%d/stat" % pid, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)  # at most ~1 KiB: 52 numbers and a 16-byte comm
    except OSError:
        return None
    finally:
        os.close(fd)
    # comm may contain spaces and parentheses: split after the last ')'
    rest = data[data.rindex(b")") + 2:].split()
    return rest[0].decode(), int(rest[19])


class ContainerDir:
    """<root>/<id>: open with a lock held for the lifetime of the object."""

    __slots__ = ("root", "id", "path", "fd", "written")

    def __init__(self, root, cid, fd):
        self.root = root
        self.id = cid
        self.path = os.join(root, cid)
        self.fd = fd
        # whether state.json may exist (see write); create() makes a fresh directory
        self.written = True

    @classmethod
    def make(cls, root, cid):
        check_id(cid)
        try:
            if not os.isdir(root):  # one stat, without importing os for makedirs
                os.makedirs(root, 0o711, exist_ok=True)
        except OSError as err:
            raise PyruncError("create state root %s: %s%s" % (root, os.strerror(err.errno).lower(),
                                                              _root_hint(root, err))) from None
        path = os.join(root, cid)
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise StateError("container with given ID already exists: %s" % cid) from None
        except OSError as err:
            raise PyruncError("create state directory %s: %s%s" % (path, os.strerror(err.errno).lower(),
                                                                   _root_hint(root, err))) from None
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        _flock(fd, True)
        d = cls(root, cid, fd)
        d.written = False
        return d

    @classmethod
    def open(cls, root, cid, lock=True):
        check_id(cid)
        path = os.join(root, cid)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFoundError("container does not exist: %s" % cid) from None
        if lock:
            _flock(fd, True)
        return cls(root, cid, fd)

    def read(self):
        try:
            fd = os.open(STATE_FILE, os.O_RDONLY | os.O_CLOEXEC, dir_fd=self.fd)
        except FileNotFoundError:
            # a directory without state: a create that is still running (it holds the
            # lock, so a locked open never sees this) or one that crashed
            raise NotFoundError("container does not exist: %s" % self.id) from None
        try:
            # one read of the whole file (its size from fstat), then whatever a
            # concurrent writer added: chunks joined once, linear in the size (a
            # growing bytes object was quadratic: a 64 MiB state took minutes)
            chunks = [os.read(fd, os.fstat(fd).st_size + 1)]
            while chunks[-1]:
                chunks.append(os.read(fd, 1 << 20))
            data = b"".join(chunks)
        finally:
            os.close(fd)
        # imported here, not at the top: `delete --force` of a container that is
        # gone (the shim's second delete) reads no JSON, and _json is a shared library
        from pyrunc import jsonfast

        try:
            return jsonfast.loads(data)
        except jsonfast.JSONError as err:
            raise StateError("read state of %s: %s" % (self.id, err)) from None

    def write(self, state):
        from pyrunc import jsonfast

        data = jsonfast.dumps(state).encode()
        tmp = ".state.json.%d" % os.getpid()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600, dir_fd=self.fd)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        if self.written:
            # a later record (create writes up to three): swap it in and drop the old
            # one, instead of renaming over it (host.c prc_rename_exchange: on ext4 a
            # replacing rename starts writeback, ~85 us, and the final unlink waits)
            from pyrunc.native import lib

            r = lib.prc_rename_exchange(self.fd, tmp.encode(), STATE_FILE.encode())
            if r == 0:
                os.unlink(tmp, dir_fd=self.fd)
                return
            # ENOENT: no record yet; EINVAL, EOPNOTSUPP, ENOSYS: a filesystem or
            # kernel without RENAME_EXCHANGE.  Whatever it was, the plain rename below
            # still replaces the record atomically (and says what fails, if anything)
        os.rename(tmp, STATE_FILE, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        self.written = True

    def make_fifo(self):
        os.mkfifo(FIFO, 0o622, dir_fd=self.fd)
        # mkfifo applied our umask: runc's fifo is exactly 0622
        os.chmod(FIFO, 0o622, dir_fd=self.fd)

    def has_fifo(self):
        try:
            os.stat(FIFO, dir_fd=self.fd, follow_symlinks=False)
            return True
        except FileNotFoundError:
            return False

    def remove(self):
        """remove the directory and what we put in it"""
        for name in os.listdir(self.fd):
            try:
                os.unlink(name, dir_fd=self.fd)
            except IsADirectoryError:
                pass
            except FileNotFoundError:
                pass
        try:
            os.rmdir(self.path)
        except FileNotFoundError:
            pass

    def unlock(self):
        _flock(self.fd, False)

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _flock(fd, lock):
    # imported here: `state` and `list` read without the lock
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX if lock else fcntl.LOCK_UN)


def status_of(state, cdir):
    """creating | created | running | paused | stopped, from the init process and the
    fifo; an unfinished record is "creating" while its create lives, else "stopped"
    (a killed create, which `delete --force` removes)"""
    if state.get("creating"):
        return "creating" if creator_alive(state) else "stopped"
    pid = state.get("pid", 0)
    if pid <= 0:
        return "stopped"
    info = proc_start_time(pid)
    if info is None or info[0] in ("Z", "X") or info[1] != state.get("init_start"):
        return "stopped"
    # paused first: runc reports a frozen created container as paused
    cg = state.get("cgroup")
    if cg:
        try:
            if paused(cg):
                return "paused"
        except (OSError, PyruncError):
            pass
    if cdir.has_fifo():
        return "created"
    return "running"


def list_containers(root):
    """[(id, state dict, status)] of every container under root"""
    out = []
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return out
    for name in names:
        if name.startswith("."):
            continue
        try:
            cdir = ContainerDir.open(root, name, lock=False)
        except (PyruncError, OSError):
            continue
        try:
            st = cdir.read()
            out.append((name, st, status_of(st, cdir)))
        except (PyruncError, OSError):
            continue
        finally:
            cdir.close()
    return out


def paused(cg):
    """cgroups.Manager.paused() of the manager `cg` describes, without importing the
    cgroup package (2 million instructions) for the plain layouts: `state`, `kill` and
    `start` ask it every time.  The same choice of freezer as Manager._freezer: the
    first v1 hierarchy with the freezer controller unless the layout is unified, else
    the cgroup2 one; the same check that the mount is still the cgroupfs create saw."""
    if cg.get("systemd") or "h" not in cg:
        from pyrunc.cgroups import load_manager

        return load_manager(cg).paused()
    h = v2 = None
    for e in cg["h"]:
        if e[2] == 2:
            v2 = e
        elif h is None and "freezer" in e[3]:
            h = e
    if h is None or cg.get("unified", False):
        h = v2
    if h is None:
        return False
    mnt, rel, version, _, _, dev, _ = h
    fd = open_cgroup_mount(cg.get("prefix", "") + mnt, None if cg.get("prefix") else dev)
    if fd < 0:
        return False  # Manager: CgroupError, which status_of takes as not paused
    try:
        name = "freezer.state" if version == 1 else "cgroup.freeze"
        try:
            f = os.open(rel + "/" + name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=fd)
        except OSError:
            return False
        try:
            text = os.read(f, 64)
        finally:
            os.close(f)
    finally:
        os.close(fd)
    return text.strip() == (b"FROZEN" if version == 1 else b"1")


def open_cgroup_mount(mnt, dev):
    """An O_PATH fd of the cgroup mount `mnt` of a state record, or -1 when it is no
    longer the cgroupfs create saw (dev: its device numbers as recorded; None: not
    checked), as cgroups._H.open_root checks it.  OSError when it cannot be opened."""
    fd = os.open(mnt, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    if dev is not None:
        st_dev = os.fstat(fd).st_dev
        if (os.major(st_dev), os.minor(st_dev)) != tuple(dev):
            os.close(fd)
            return -1
    return fd


def oci_state(cid, st, status):
    """the OCI state document of `state` (runc's field order, owner "" as runc 1.1)"""
    out = {
        "ociVersion": st["ociVersion"],
        "id": cid,
        "pid": 0,
        "status": status,
        "bundle": st["bundle"],
        "rootfs": st["rootfs"],
        "created": st["created"],
    }
    if status != "stopped":
        out["pid"] = st["pid"]
    if st.get("annotations"):
        out["annotations"] = st["annotations"]
    out["owner"] = ""
    return out


def check_startable(st, cdir):
    status = status_of(st, cdir)
    if status == "stopped":
        raise StateError("cannot start a container that has stopped")
    if status == "creating":
        raise StateError("cannot start a container that is still being created")
    if status != "created":
        raise StateError("cannot start an already running container")


def release_init(cdir, pid, start=None):
    """`start`: read the fifo the created init writes one byte to, then exec's"""
    import select

    # The pidfd first: opening the fifo releases the init, which may exec, exit and be
    # reaped by its parent (a shim, conmon) before a pidfd_open after it, and a start
    # that succeeded would report "stopped" (seen under containerd and podman with
    # short commands on a loaded machine).
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise StateError("cannot start a container that has stopped") from None
    if start is not None:
        # the pidfd pins a process: the init (its start time as recorded), not a
        # process that reused its pid since the status check
        info = proc_start_time(pid)
        if info is None or info[1] != start or info[0] in ("Z", "X"):
            os.close(pidfd)
            raise StateError("cannot start a container that has stopped")
    try:
        fd = os.open(FIFO, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=cdir.fd)
    except FileNotFoundError:
        os.close(pidfd)
        raise StateError("cannot start an already running container") from None
    try:
        # The init opens the fifo for writing (blocking until a reader exists: us)
        # and writes one byte.  If it dies instead, its pidfd becomes readable.
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        while True:
            events = dict(poller.poll())
            if fd in events:
                data = os.read(fd, 1)
                if data:
                    break
                if pidfd in events:
                    raise StateError("cannot start a container that has stopped")
            elif pidfd in events:
                raise StateError("cannot start a container that has stopped")
    finally:
        os.close(fd)
        os.close(pidfd)
    os.unlink(FIFO, dir_fd=cdir.fd)


def kill_init(st, cdir, sig):
    """`kill` without --all: signal the init of a container that is not stopped"""
    if status_of(st, cdir) == "stopped":
        raise StateError("container not running")
    signal_init(st["pid"], st["init_start"], sig)


def signal_init(pid, start, sig):
    """signal the init through a pidfd, after checking it is still the same process
    (`start`: its start time recorded at create)"""
    import _signal

    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise StateError("container not running") from None
    try:
        info = proc_start_time(pid)
        if info is None or info[1] != start or info[0] in ("Z", "X"):
            raise StateError("container not running")
        try:
            _signal.pidfd_send_signal(pidfd, sig)
        except ProcessLookupError:
            raise StateError("container not running: no such process") from None
    finally:
        os.close(pidfd)


def write_pid_file(path, pid):
    """the decimal host pid, no newline (containerd Atoi's it), written atomically"""
    path = os.abspath(path)
    d, _, name = path.rpartition("/")
    tmp = os.join(d or "/", ".%s.%d" % (name, os.getpid()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)


# ---- a create in progress, or killed half-way (see Container._create) ----

FORCE_WAIT = 1.0


def self_id():
    """[our pid, our start time]: who is creating (see creator_alive)"""
    info = proc_start_time(os.getpid())
    return [os.getpid(), info[1] if info else 0]


def creator_alive(st):
    """whether the `create` that wrote this unfinished record still runs"""
    c = st.get("creator") or (0, 0)
    info = proc_start_time(c[0]) if c[0] > 0 else None
    return info is not None and info[1] == c[1] and info[0] not in ("Z", "X")


def lock_state(cdir, force):
    """Take the container's lock and return its state.  Never wait for a dead create:
    the clone of a killed `create` (the init before its exec) shares the locked open
    file and would hold the lock forever.  force (delete --force): wait at most
    FORCE_WAIT for a live holder too, then go on without the lock."""
    import fcntl
    import time

    try:
        fcntl.flock(cdir.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return cdir.read()
    except BlockingIOError:
        pass
    deadline = time.monotonic() + FORCE_WAIT
    delay = 0.001
    while True:
        try:
            st = cdir.read()
        except NotFoundError:
            st = None  # a create between mkdir and its first record: it is alive
        if st is not None and st.get("creating") and not creator_alive(st):
            return st  # the lock is held by orphans of a killed create: go on
        if force and time.monotonic() > deadline:
            if st is None:
                raise NotFoundError("container does not exist: %s" % cdir.id)
            return st
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
        try:
            fcntl.flock(cdir.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return cdir.read()
        except BlockingIOError:
            pass
