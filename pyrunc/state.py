"""The state root: <root>/<id>/state.json (+ exec.fifo while created), locking, status.

Status is never stored: it is derived from the init process every time, as runc does.
A pid that is gone, a zombie, or a pid reused by another process (its start time
differs from the one recorded at create) is `stopped`.  state.json is written to a
temporary file and renamed, so a reader never sees half of it.
"""
import fcntl
import os
import time

from pyrunc import jsonfast
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
    # runc ignores XDG_RUNTIME_DIR as root outside a user namespace; podman sets it to ""
    if os.geteuid() == 0:
        return DEFAULT_ROOT
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return os.path.join(xdg, "pyrunc")
    return DEFAULT_ROOT


def now_rfc3339():
    ns = time.time_ns()
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + ".%09dZ" % frac


def proc_start_time(pid):
    """(state letter, start time in clock ticks) of pid, or None if it does not exist"""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'
    rest = data[data.rindex(b")") + 2:].split()
    return rest[0].decode(), int(rest[19])


class ContainerDir:
    """<root>/<id>: open with a lock held for the lifetime of the object."""

    __slots__ = ("root", "id", "path", "fd")

    def __init__(self, root, cid, fd):
        self.root = root
        self.id = cid
        self.path = os.path.join(root, cid)
        self.fd = fd

    @classmethod
    def make(cls, root, cid):
        check_id(cid)
        try:
            os.makedirs(root, 0o711, exist_ok=True)
        except OSError as err:
            raise PyruncError("create state root %s: %s" % (root, os.strerror(err.errno).lower())) from None
        path = os.path.join(root, cid)
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise StateError("container with given ID already exists: %s" % cid) from None
        except OSError as err:
            raise PyruncError("create state directory %s: %s" % (path, os.strerror(err.errno).lower())) from None
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return cls(root, cid, fd)

    @classmethod
    def open(cls, root, cid, lock=True):
        check_id(cid)
        path = os.path.join(root, cid)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFoundError("container does not exist: %s" % cid) from None
        if lock:
            fcntl.flock(fd, fcntl.LOCK_EX)
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
        try:
            return jsonfast.loads(data)
        except jsonfast.JSONError as err:
            raise StateError("read state of %s: %s" % (self.id, err)) from None

    def write(self, state):
        data = jsonfast.dumps(state).encode()
        tmp = ".state.json.%d" % os.getpid()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600, dir_fd=self.fd)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.rename(tmp, STATE_FILE, src_dir_fd=self.fd, dst_dir_fd=self.fd)

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
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def status_of(state, cdir):
    """created | running | paused | stopped, from the init process and the fifo"""
    pid = state.get("pid", 0)
    if pid <= 0:
        return "stopped"
    info = proc_start_time(pid)
    if info is None or info[0] in ("Z", "X") or info[1] != state.get("init_start"):
        return "stopped"
    # paused first: runc reports a frozen created container as paused
    cg = state.get("cgroup")
    if cg:
        from pyrunc.cgroups import load_manager

        try:
            if load_manager(cg).paused():
                return "paused"
        except (OSError, PyruncError):
            pass
    if cdir.has_fifo():
        return "created"
    return "running"


def write_pid_file(path, pid):
    """the decimal host pid, no newline (containerd Atoi's it), written atomically"""
    path = os.path.abspath(path)
    d, name = os.path.split(path)
    tmp = os.path.join(d, ".%s.%d" % (name, os.getpid()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)
