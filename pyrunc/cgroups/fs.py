"""cgroupfs access: mount discovery, the container's directories, file I/O.

Every cgroup file pyrunc touches is opened relative to a directory fd, never by a
path string walked from /: the fd of each hierarchy's mount point is opened once and
checked against the superblock /proc/self/mountinfo names (st_dev), the container's
directory is reached from it by a cleaned relative path (no "..", and cgroupfs
cannot hold symlinks or foreign files), and interface files are plain names opened
with dir_fd.  That is runc's "one root handle" (opencontainers/cgroups file.go,
openat2 + RESOLVE_BENEATH) at the price of one fstat per hierarchy, without openat2.

A fake tree for unit tests: `prefix` is a directory standing for "/" that holds
proc/self/mountinfo, proc/self/cgroup and the mount points.  A fake mkdir gives the
new directory empty copies of its parent's interface files (the kernel makes them
appear), and cgroup.controllers inherits the parent's cgroup.subtree_control, so
code that probes for a file sees what it would see on a kernel with that layout.
Nothing here pretends that the kernel accepted a value: fake writes land in files
the test then reads back.

Hot path: os and errno only.
"""
import errno
from pyrunc import _os as os

from pyrunc.errors import PyruncError

O_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
O_RD = os.O_RDONLY | os.O_CLOEXEC
O_WR = os.O_WRONLY | os.O_CLOEXEC

# what runc 1.1 joins on a v1 host (libcontainer/cgroups/fs subsystems); other
# hierarchies (misc, named ones but name=systemd) are left alone, as runc does
V1_CONTROLLERS = frozenset(("cpuset", "devices", "memory", "cpu", "cpuacct", "pids", "blkio", "hugetlb",
                            "net_cls", "net_prio", "perf_event", "freezer", "rdma", "name=systemd"))


class CgroupError(PyruncError):
    """A cgroup operation failed; the message names the resource, the file and the cause.
    `errno` is the kernel's error when there was one (0 otherwise)."""

    def __init__(self, message, errno=0):
        super().__init__(message)
        self.errno = errno


def strerror(err):
    return os.strerror(err).lower()


def parse_keyed(text):
    """a flat keyed file ("key value" lines: cpu.stat, memory.stat, memory.events,
    cpuacct.stat, hugetlb.*.events ...) as {key: int}"""
    out = {}
    for line in text.split("\n"):
        k, _, v = line.partition(" ")
        if v:
            out[k] = int(v)
    return out


def read_text(path):
    return os.read_file(path).decode("utf-8", "surrogateescape")


def _unescape(s):
    # mountinfo escapes space, tab, newline and backslash as \ooo
    if "\\" not in s:
        return s
    out = []
    i = 0
    while i < len(s):
        if s[i] == "\\" and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mounts(prefix="", text=None):
    """[(mount point, mount root, version, controllers, (major, minor))] of the cgroup
    hierarchies runc would use, first mount of each superblock only (later ones are
    bind mounts, e.g. inside a container's rootfs).  `text`: /proc/self/mountinfo as
    already read."""
    if text is None:
        text = read_text(prefix + "/proc/self/mountinfo")
    out = []
    seen = set()
    for line in text.split("\n"):
        i = line.find(" - cgroup")
        if i < 0:
            continue
        tail = line[i + 3:].split(" ")
        fstype = tail[0]
        if fstype == "cgroup2":
            ctrls = ()
        elif fstype == "cgroup":
            ctrls = tuple(o for o in tail[2].split(",") if o in V1_CONTROLLERS) if len(tail) > 2 else ()
            if not ctrls:
                continue
        else:
            continue
        head = line[:i].split(" ")
        dev = head[2]
        if dev in seen:
            continue
        seen.add(dev)
        major, _, minor = dev.partition(":")
        out.append((_unescape(head[4]), _unescape(head[3]), 2 if fstype == "cgroup2" else 1, ctrls,
                    (int(major), int(minor))))
    return out


def own_cgroups(prefix=""):
    """{frozenset(controllers) or None (v2): path} from /proc/self/cgroup"""
    own = {}
    for line in read_text(prefix + "/proc/self/cgroup").split("\n"):
        if not line:
            continue
        _, ctrls, path = line.split(":", 2)
        own[frozenset(ctrls.split(",")) if ctrls else None] = path
    return own


def clean(path):
    """runc's utils.CleanPath: an absolute path is normalised; a relative one is
    normalised as if rooted, so it cannot climb out with "..". Returns it without the
    leading slash, and whether it was absolute."""
    if not path:
        return "", False
    absolute = path.startswith("/")
    parts = []
    for p in path.split("/"):
        if p == "" or p == ".":
            continue
        if p == "..":
            if parts:
                parts.pop()
            continue
        parts.append(p)
    return "/".join(parts), absolute


def join(a, b):
    return a + "/" + b if a and b else a or b


class Dir:
    """One cgroup directory, held as an fd; `path` is only for messages."""

    __slots__ = ("fd", "path", "fake")

    def __init__(self, fd, path, fake=False):
        self.fd = fd
        self.path = path
        self.fake = fake

    def _open(self, name, flags, what, value=None):
        try:
            return os.open(name, flags, dir_fd=self.fd)
        except OSError as err:
            if value is None:
                raise CgroupError("%s: open %s/%s: %s" % (what, self.path, name, strerror(err.errno)),
                                  err.errno) from None
            raise CgroupError("%s: write %s to %s/%s: %s"
                              % (what, value, self.path, name, strerror(err.errno)), err.errno) from None

    def write(self, name, value, what):
        """write one value; the error names `what` (a config field), the file and errno"""
        if self.fake and name.rpartition("/")[2] == "cgroup.subtree_control":
            return _fake_subtree_control(self.path, name, value)
        fd = self._open(name, O_WR | (os.O_TRUNC if self.fake else 0), what, value)
        try:
            os.write(fd, value.encode())
        except OSError as err:
            raise CgroupError("%s: write %s to %s/%s: %s"
                              % (what, value, self.path, name, strerror(err.errno)), err.errno) from None
        finally:
            os.close(fd)

    def write_lines(self, name, values, what):
        """several writes through one open file (devices.allow, io.max, ...): each
        write(2) is one command to the kernel"""
        fd = self._open(name, O_WR | (os.O_APPEND if self.fake else 0), what, values[0] if values else "")
        try:
            for v in values:
                try:
                    os.write(fd, (v + "\n").encode() if self.fake else v.encode())
                except OSError as err:
                    raise CgroupError("%s: write %s to %s/%s: %s"
                                      % (what, v, self.path, name, strerror(err.errno)), err.errno) from None
        finally:
            os.close(fd)

    def read(self, name, what="read cgroup"):
        fd = self._open(name, O_RD, what)
        try:
            data = os.read_all(fd)
        except OSError as err:
            raise CgroupError("%s: read %s/%s: %s" % (what, self.path, name, strerror(err.errno)),
                              err.errno) from None
        finally:
            os.close(fd)
        return data.decode()

    def read_opt(self, name):
        """the file's text, or None when the kernel does not have it"""
        try:
            fd = os.open(name, O_RD, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError:
            return None
        try:
            data = os.read_all(fd)
        except OSError:
            return None
        finally:
            os.close(fd)
        return data.decode()

    def read_keyed(self, name):
        """a flat keyed file as {key: int} (parse_keyed); {} if missing"""
        return parse_keyed(self.read_opt(name) or "")

    def read_int(self, name):
        """an integer file ("max" is the largest u64, as runc reports it); 0 if missing"""
        t = self.read_opt(name)
        if t is None:
            return 0
        t = t.strip()
        if t == "max":
            return 18446744073709551615
        try:
            return int(t)
        except ValueError:
            return 0

    def exists(self, name):
        try:
            os.stat(name, dir_fd=self.fd, follow_symlinks=False)
            return True
        except OSError:
            return False


def mkdir(rootfd, rel, fake=None):
    """mkdir rel (relative to rootfd); returns the directories made (parent first),
    [] if it existed.  Raises OSError.  `fake`: the fake mount point's path."""
    try:
        os.mkdir(rel, 0o755, dir_fd=rootfd)
    except FileExistsError:
        return []
    except FileNotFoundError:
        made = []
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            p = "/".join(parts[:i])
            try:
                os.mkdir(p, 0o755, dir_fd=rootfd)
            except FileExistsError:
                continue
            made.append(p)
            if fake:
                _fake_populate(fake, p)
        return made
    if fake:
        _fake_populate(fake, rel)
    return [rel]


def _fake_subtree_control(base, name, value):
    """the fake kernel's cgroup.subtree_control: "+a -b" edits the enabled set, which
    the children see as their cgroup.controllers"""
    path = os.path.join(base, name)
    with open(path) as f:
        have = f.read().split()
    with open(os.path.join(os.path.dirname(path), "cgroup.controllers")) as f:
        avail = f.read().split()
    for tok in value.split():
        c = tok[1:]
        if tok.startswith("+") and c not in avail:
            raise CgroupError("enable controllers: write %s to %s: no such file or directory" % (value, path),
                              errno.ENOENT)
        if tok.startswith("+") and c not in have:
            have.append(c)
        elif tok.startswith("-") and c in have:
            have.remove(c)
    text = " ".join(sorted(have))
    with open(path, "w") as f:
        f.write(text)
    d = os.path.dirname(path)
    for n in os.listdir(d):
        if os.path.isdir(os.path.join(d, n)):
            with open(os.path.join(d, n, "cgroup.controllers"), "w") as f:
                f.write(text)


def _fake_populate(mnt, rel):
    parent = os.path.dirname(os.path.join(mnt, rel))
    child = os.path.join(mnt, rel)
    for name in os.listdir(parent):
        src = os.path.join(parent, name)
        if not os.path.isfile(src):
            continue
        data = b""
        if name == "cgroup.controllers":
            try:
                with open(os.path.join(parent, "cgroup.subtree_control"), "rb") as f:
                    data = f.read()
            except OSError:
                pass
        with open(os.path.join(child, name), "wb") as f:
            f.write(data)


def rmdir(rootfd, rel, fake=None):
    """rmdir, raising OSError.  A fake directory loses its interface files first but,
    like a cgroup, refuses (EBUSY) while it has children or a pid in cgroup.procs."""
    if fake:
        path = os.path.join(fake, rel)
        if not os.path.isdir(path):
            raise FileNotFoundError(errno.ENOENT, "no such directory", path)
        names = os.listdir(path)
        if any(os.path.isdir(os.path.join(path, n)) for n in names):
            raise OSError(errno.EBUSY, "busy", path)
        try:
            with open(os.path.join(path, "cgroup.procs"), "rb") as f:
                if f.read().strip():
                    raise OSError(errno.EBUSY, "busy", path)
        except FileNotFoundError:
            pass
        for n in names:
            os.unlink(os.path.join(path, n))
    os.rmdir(rel, dir_fd=rootfd)
