"""checkpoint and restore with CRIU, the way runc 1.1 does it.

runc talks to criu over its RPC protocol: `criu swrk 3`, where fd 3 is one end of a
SOCK_SEQPACKET socketpair; one datagram is one criu_req or criu_resp protobuf message
(pyrunc/criu_rpc.py).  During a dump or restore criu asks back with NOTIFY messages
("setup-namespaces", "post-restore", "orphan-pts-master"...) and waits for our NOTIFY
answer, so hooks, the console and the state file happen at the right moments.

What criu cannot find out by itself, the runtime tells it, as runc does:
- every bind mount from the host is an "external" mount (ext_mnt): at dump its key is
  its path in the container, at restore that key maps to the source on the host;
  without a cgroup namespace our /sys/fs/cgroup is bind mounts of the container's own
  cgroup directories: external too;
- masked files are binds of the host's /dev/null: recorded as "/dev/null", which the
  restore maps back to /dev/null;
- device nodes: key = value = their path (runc does it for nodes it bind-mounts);
- a network or pid namespace the container joined by path is external (criu leaves
  it alone at dump, and gets it back as an inherited fd at restore); other namespaces
  joined by path are joined again (join_ns);
- the cgroups: criu freezes through the container's freezer cgroup; at restore criu
  itself is put in the container's cgroups (created and limited first), so the tasks
  it restores land there (cg_root names them for v1 hierarchies);
- the restore root: the bundle's rootfs bind-mounted on <state dir>/criu-root (criu
  needs a mount point whose parent is not over-mounted);
- stdio: descriptors.json in the image directory lists what fds 0-2 of the init were;
  pipes among them are handed to the restored task as our own fds 0-2 (inherit_fd),
  with a terminal criu sends the pty master back (orphan-pts-master) and we pass it to
  --console-socket.

Errors are one line: what criu refused, criu's own first error line, and its log.  A
failed checkpoint leaves the container running (criu resumes it); a failed restore
removes everything it made: restored processes, cgroups, the criu-root mount, state.
"""
import os
from errno import ENOSYS

from pyrunc import criu_rpc as R
from pyrunc import log as _log
from pyrunc.errors import PyruncError, StateError, UsageError

DESCRIPTORS = "descriptors.json"
CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
MS_BIND = 0x1000
MS_REC = 0x4000
MNT_DETACH = 2


class CriuError(PyruncError):
    pass


# ---- talking to criu ----

class Session:
    """One `criu swrk` process and its socket."""

    def __init__(self, criu, log_path=None, stdio=None, extra_fds=()):
        import _socket

        self.log_path = log_path
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
        self.sock = a
        null = None
        if stdio is None:
            null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
            stdio = (null, null, null)
        # dup everything we hand over above the target numbers first: a dup2 onto the
        # same number would keep close-on-exec (and the targets may hold our own fds)
        srcs = list(stdio) + [b.fileno()] + list(extra_fds)
        high = [_dup_high(fd) for fd in srcs]
        actions = [(os.POSIX_SPAWN_DUP2, fd, i) for i, fd in enumerate(high)]
        try:
            self.pid = os.posix_spawnp(criu, [criu, "swrk", "3"], _criu_env(), file_actions=actions)
        except OSError as err:
            a.close()
            raise CriuError("exec %s: %s" % (criu, os.strerror(err.errno).lower())) from None
        finally:
            for fd in high:
                os.close(fd)
            if null is not None:
                os.close(null)
            # ours closed: if criu dies, our reads see EOF instead of hanging
            b.close()
        self.status = None

    def send(self, msg):
        self.sock.send(R.encode("criu_req", msg))

    def recv(self):
        """(criu_resp dict, [fds passed with it])"""
        import _socket
        import array

        data, anc, _, _ = self.sock.recvmsg(10 * 4096, _socket.CMSG_SPACE(16 * 4))
        fds = []
        for level, typ, payload in anc:
            if level == _socket.SOL_SOCKET and typ == _socket.SCM_RIGHTS:
                a = array.array("i")
                a.frombytes(payload[:len(payload) - len(payload) % 4])
                fds.extend(a)
        if not data:
            code = os.waitstatus_to_exitcode(self.wait())
            how = "killed by signal %d" % -code if code < 0 else "exit status %d" % code
            raise CriuError("criu exited without an answer (%s)%s" % (how, self._see_log()))
        return R.decode("criu_resp", data), fds

    def wait(self):
        if self.status is None:
            try:
                self.sock.shutdown(1)  # SHUT_WR: criu reads EOF and exits
            except OSError:
                pass
            self.status = os.waitpid(self.pid, 0)[1]
            self.sock.close()
        return self.status

    def kill(self):
        if self.status is None:
            try:
                os.kill(self.pid, 9)
            except ProcessLookupError:
                pass
            self.wait()

    def _cause(self, resp):
        """': <criu's own error line> (log: PATH)', the line from cr_errmsg (criu 3.15+)
        or else from the log, the errno when there is nothing else"""
        msg = (resp.get("cr_errmsg") or "").strip().splitlines()
        text = msg[0] if msg else (first_error(self.log_path) if self.log_path else None)
        if text and "): " in text and text.startswith("Error ("):
            text = text.split("): ", 1)[1]
        if not text and resp.get("cr_errno"):
            text = os.strerror(resp["cr_errno"]).lower()
        out = ": " + text.strip() if text else ""
        return out + (" (log: %s)" % self.log_path if self.log_path else "")

    def _see_log(self):
        if not self.log_path:
            return ""
        first = first_error(self.log_path)
        return (": %s" % first if first else "") + " (log: %s)" % self.log_path

    def request(self, req, notify=None):
        """send req, answer criu's notifications through notify(script, pid, fds), and
        return the final answer; criu's refusal is a CriuError naming it and its log"""
        self.send(req)
        what = R.REQ_TYPES.get(req["type"], str(req["type"]))
        while True:
            resp, fds = self.recv()
            try:
                if not resp.get("success"):
                    raise CriuError("criu refused %s%s" % (what, self._cause(resp)))
                if resp.get("type") != R.NOTIFY:
                    return resp
                n = resp.get("notify") or {}
                if notify is not None:
                    notify(n.get("script", ""), n.get("pid", 0), fds)
            finally:
                for fd in fds:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self.send({"type": R.NOTIFY, "notify_success": True})


def _dup_high(fd):
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64)


def _criu_env():
    env = dict(os.environ)
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return env


def first_error(log_path):
    """criu's first "Error (file:line): text" line of its log, shortened, or None"""
    try:
        with open(log_path, errors="replace") as f:
            for line in f:
                i = line.find("Error (")
                if i >= 0:
                    text = line[i:].strip()
                    j = text.find("): ")
                    if j > 0:
                        text = text[j + 3:]
                    return text[:200]
    except OSError:
        pass
    return None


def _one_shot(criu, req):
    s = Session(criu)
    try:
        return s.request(req)
    finally:
        s.wait()


def criu_version(criu):
    """criu's version as runc counts it (3.17.1 -> 31701)"""
    try:
        resp = _one_shot(criu, {"type": R.VERSION})
    except CriuError as err:
        raise CriuError("criu version check failed: %s" % err) from None
    v = resp.get("version") or {}
    return v.get("major_number", 0) * 10000 + v.get("minor_number", 0) * 100 + v.get("sublevel", 0)


def check_features(criu, opts, **want):
    """FEATURE_CHECK (criu 3.8+): refuse what criu or its kernel lacks"""
    try:
        resp = _one_shot(criu, {"type": R.FEATURE_CHECK, "opts": opts, "features": want})
    except CriuError as err:
        raise CriuError("criu feature check failed: %s" % err) from None
    have = resp.get("features") or {}
    missing = [k for k, v in want.items() if v and not have.get(k)]
    if missing:
        raise CriuError("criu is missing features: %s" % ", ".join(k.replace("_", "-") for k in missing))


# ---- shared pieces ----

def image_paths(opts, create=True):
    """(image dir, parent path) as runc's prepareImagePaths: ./checkpoint by default,
    --parent-path relative to the image dir and an existing directory.  (runc makes
    the image directory for restore too; we do not leave one behind there.)"""
    image = os.path.abspath(opts.image_path or "checkpoint")
    try:
        if create:
            os.makedirs(image, 0o700, exist_ok=True)
    except OSError as err:
        raise PyruncError("create image directory %s: %s" % (image, os.strerror(err.errno).lower())) from None
    parent = opts.parent_path or ""
    if parent:
        if parent.startswith("/"):
            raise UsageError("--parent-path must be relative")
        real = os.path.join(image, parent)
        if not os.path.isdir(real):
            why = "not a directory" if os.path.exists(real) else "no such file or directory"
            raise UsageError("invalid --parent-path: %s: %s" % (real, why))
    return image, parent


def page_server(value):
    addr, _, port = value.rpartition(":")
    addr = addr.strip("[]")
    if not addr or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError("use --page-server ADDRESS:PORT to specify page server")
    return {"address": addr, "port": int(port)}


def cg_mode(value):
    if not value:
        return None
    if value not in ("soft", "full", "strict"):
        raise UsageError("invalid manage cgroups mode: %s" % value)
    return R.CG_MODES[value]


def empty_ns_mask(values):
    # runc: the network namespace is always "empty" (runc does not manage network
    # devices), and network is the only one --empty-ns may add
    mask = CLONE_NEWNET
    for ns in values or ():
        if ns != "network":
            raise UsageError('namespace "%s" is not supported' % ns)
        mask |= CLONE_NEWNET
    return mask


def _open_dir(path, what):
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as err:
        raise PyruncError("create %s %s: %s" % (what, path, os.strerror(err.errno).lower())) from None
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _config_file(spec, o):
    # runc: annotation org.criu.config names a criu config file ("" for none);
    # without it, /etc/criu/runc.conf (criu ignores a file that does not exist)
    if "org.criu.config" in spec.annotations:
        if spec.annotations["org.criu.config"]:
            o["config_file"] = spec.annotations["org.criu.config"]
    else:
        o["config_file"] = "/etc/criu/runc.conf"


def _is_bind(m):
    return m.type == "bind" or "bind" in m.options or "rbind" in m.options


def _secure_dest(rootfs, dest):
    """dest as criu sees it: symlinks in the rootfs resolved inside the rootfs (runc
    uses securejoin for the same)"""
    parts = [p for p in dest.split("/") if p]
    out = []
    links = 0
    while parts:
        p = parts.pop(0)
        if p == ".":
            continue
        if p == "..":
            if out:
                out.pop()
            continue
        host = os.path.join(rootfs, *out, p)
        try:
            target = os.readlink(host)
        except OSError:
            out.append(p)
            continue
        links += 1
        if links > 255:
            return dest
        if target.startswith("/"):
            out = []
        parts = [x for x in target.split("/") if x] + parts
    return "/" + "/".join(out)


def _cgroup_binds(spec, m, paths):
    """[(destination, host directory)]: the binds our cgroup mount is made of (plan.py's
    _cgroup_mounts) when there is no cgroup namespace; real mounts otherwise"""
    if "cgroup" in spec.namespaces:
        return []
    from pyrunc.plan import _cgroup_hierarchies

    hier = _cgroup_hierarchies()
    if len(hier) == 1 and hier[0][1] == "cgroup2":
        return [(m.destination, paths.get(hier[0][0], hier[0][0]))]
    out = []
    for mnt, _, _ in hier:
        if mnt.startswith("/sys/fs/cgroup/"):
            out.append((m.destination + "/" + mnt[len("/sys/fs/cgroup/"):], paths.get(mnt, mnt)))
    return out


def dump_ext_mounts(spec, rootfs, pid, cgroup_paths):
    """ext_mnt of a dump: every mount criu must record as external, keyed by its
    path in the container (runc's addCriuDumpMount and addMaskPaths)"""
    out = []
    for m in spec.mounts:
        if _is_bind(m):
            d = _secure_dest(rootfs, m.destination)
            out.append({"key": d, "val": d})
        elif m.type in ("cgroup", "cgroup2"):
            for dest, _ in _cgroup_binds(spec, m, cgroup_paths):
                out.append({"key": dest, "val": dest})
    for p in spec.masked_paths:
        # masked files are binds of the host's /dev/null; masked directories are
        # read-only tmpfs mounts, which criu dumps itself
        try:
            s = os.stat("/proc/%d/root%s" % (pid, p))
        except FileNotFoundError:
            continue
        if (s.st_mode & 0o170000) != 0o040000:
            out.append({"key": p, "val": "/dev/null"})
    for d in _devices(spec):
        out.append({"key": d, "val": d})
    return out


def restore_ext_mounts(spec, cgroup_paths):
    """ext_mnt of a restore: what each external key of the dump is on this host
    (runc's addCriuRestoreMount)"""
    out = []
    for m in spec.mounts:
        if _is_bind(m):
            src = m.source if m.source.startswith("/") else os.path.join(spec.bundle, m.source)
            out.append({"key": _secure_dest(spec.root_path, m.destination), "val": src})
        elif m.type in ("cgroup", "cgroup2"):
            for dest, src in _cgroup_binds(spec, m, cgroup_paths):
                out.append({"key": dest, "val": src})
    if spec.masked_paths:
        out.append({"key": "/dev/null", "val": "/dev/null"})
    for d in _devices(spec):
        out.append({"key": d, "val": d})
    return out


def _devices(spec):
    from pyrunc.plan import DEFAULT_DEVICES

    return [d[0] for d in DEFAULT_DEVICES] + [d.path for d in spec.devices]


def _ext_ns(spec, version, t):
    """the path of a network/pid namespace joined by path that criu can treat as
    external (netns: criu 3.11, pidns: criu 3.15), or None"""
    path = spec.namespaces.get(t)
    if not path:
        return None
    if version < (31100 if t == "network" else 31500):
        return None
    return path


_NS_KEY = {"network": ("net", "extRootNetNS"), "pid": ("pid", "extRootPidNS")}
_NS_NAME = {"mount": "mnt", "network": "net", "uts": "uts", "ipc": "ipc", "user": "user",
            "pid": "pid", "cgroup": "cgroup", "time": "time"}


# ---- checkpoint ----

def checkpoint(g, opts, cid):
    from pyrunc import jsonfast
    from pyrunc import spec as _spec
    from pyrunc.container import Container

    criu = g.criu or "criu"
    mode = cg_mode(opts.manage_cgroups_mode)
    empty = empty_ns_mask(opts.empty_ns)
    status_fd = int(opts.status_fd) if opts.status_fd not in (None, "") else -1
    c = Container.load(g.root, cid)
    try:
        image, parent = image_paths(opts)
        status = c.status()
        if status in ("created", "stopped"):
            raise StateError("container cannot be checkpointed in %s state" % status)
        st = c.st
        pid = st["pid"]
        spec = _spec.load(st["bundle"])
        rootfs = st["rootfs"]
        version = criu_version(criu)
        if version < 30000:
            raise CriuError("criu version %d must be 30000 or higher" % version)

        fds = []
        try:
            img_fd = _open_dir(image, "image directory")
            fds.append(img_fd)
            o = {"images_dir_fd": img_fd, "log_level": 4, "log_file": "dump.log", "root": rootfs,
                 "manage_cgroups": True, "notify_scripts": True, "pid": pid,
                 "shell_job": opts.shell_job, "leave_running": opts.leave_running,
                 "tcp_established": opts.tcp_established, "ext_unix_sk": opts.ext_unix_sk,
                 "file_locks": opts.file_locks, "empty_ns": empty, "orphan_pts_master": True,
                 "auto_dedup": opts.auto_dedup, "lazy_pages": opts.lazy_pages}
            work = image
            if opts.work_path:
                work = os.path.abspath(opts.work_path)
                wfd = _open_dir(work, "work directory")
                fds.append(wfd)
                o["work_dir_fd"] = wfd
            _config_file(spec, o)
            ext = []
            for t in ("network", "pid"):
                path = _ext_ns(spec, version, t)
                if path:
                    # --external <type>[<inode>]:<key>; restore hands it back under the key
                    ext.append("%s[%d]:%s" % (_NS_KEY[t][0], os.stat(path).st_ino, _NS_KEY[t][1]))
            if ext:
                o["external"] = ext
            if st.get("cgroup"):
                cg = c._cgroups()
                h, v = cg._freezer()
                if h is not None and (v == 1 or version >= 31400):
                    o["freeze_cgroup"] = h.path
            if opts.page_server:
                o["ps"] = page_server(opts.page_server)
            if parent:
                o["parent_img"] = parent
                o["track_mem"] = True
            if mode is not None:
                o["manage_cgroups_mode"] = mode
            if opts.pre_dump:
                check_features(criu, o, mem_track=True)
                rtype = R.PRE_DUMP
            else:
                rtype = R.DUMP
            if opts.lazy_pages:
                check_features(criu, o, lazy_pages=True)
                if status_fd >= 0:
                    import fcntl

                    try:
                        fl = fcntl.fcntl(status_fd, fcntl.F_GETFL)
                    except OSError as err:
                        raise UsageError("invalid --status-fd argument %d: %s" % (
                            status_fd, os.strerror(err.errno).lower())) from None
                    if not fl & (os.O_WRONLY | os.O_RDWR):
                        raise UsageError("invalid --status-fd argument %d: not writable" % status_fd)
            if not opts.pre_dump:
                paths = c._cgroups().paths if st.get("cgroup") else {}
                o["ext_mnt"] = dump_ext_mounts(spec, rootfs, pid, paths)
                descs = []
                for i in range(3):
                    try:
                        descs.append(os.readlink("/proc/%d/fd/%d" % (pid, i)))
                    except OSError:
                        descs.append("/dev/null")
                _write(os.path.join(image, DESCRIPTORS), jsonfast.dumps(descs).encode())

            if status_fd >= 0 and opts.lazy_pages and version < 31500:
                o["status_fd"] = status_fd  # older criu writes to it itself

            def notify(script, npid, nfds):
                if script == "status-ready" and status_fd >= 0:
                    try:
                        os.write(status_fd, b"\0")
                    except OSError as err:
                        _log.get().warn("write to status fd: %s" % os.strerror(err.errno).lower())

            s = Session(criu, os.path.join(work, "dump.log"))
            try:
                s.request({"type": rtype, "opts": o}, notify)
            finally:
                code = s.wait()
            if code != 0 and rtype != R.PRE_DUMP:
                # pre-dump: criu waits for a following dump that never comes (runc
                # starts one criu per pre-dump too): its exit status is not news
                raise CriuError("criu failed: exit status %d (log: %s)" % (
                    os.waitstatus_to_exitcode(code), os.path.join(work, "dump.log")))
        finally:
            for fd in fds:
                os.close(fd)
        if not (opts.leave_running or opts.pre_dump):
            # criu killed the tasks: the container goes, as with runc's destroy
            # (poststop hooks, cgroups, state)
            c.delete(force=True)
    finally:
        c.close()
    return 0


def _write(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


# ---- restore ----

def _libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _mount_bind(src, dst):
    import ctypes

    libc = _libc()
    if libc.mount(os.fsencode(src), os.fsencode(dst), None, MS_BIND | MS_REC, None) < 0:
        e = ctypes.get_errno()
        raise PyruncError("bind %s on %s: %s" % (src, dst, os.strerror(e).lower()))


def _umount(path):
    _libc().umount2(os.fsencode(path), MNT_DETACH)


def _make_mountpoints(spec, rootfs):
    """create missing mount points in the rootfs, as create would, except under a
    tmpfs (criu restores a tmpfs with its content); a restore on a fresh copy of the
    rootfs needs them.  Bind sources decide between a directory and a file."""
    tmpfs = [m.destination for m in spec.mounts if m.type == "tmpfs"]
    for m in spec.mounts:
        if m.type in ("cgroup", "cgroup2"):
            continue  # /sys is mounted over it anyway
        if any(m.destination.startswith(t + "/") for t in tmpfs):
            continue
        dest = rootfs + _secure_dest(rootfs, m.destination)
        if os.path.lexists(dest):
            continue
        src = m.source or ""
        if _is_bind(m) and src and not os.path.isdir(src if src.startswith("/") else os.path.join(spec.bundle, src)):
            os.makedirs(os.path.dirname(dest), 0o755, exist_ok=True)
            os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o755))
        else:
            os.makedirs(dest, 0o755, exist_ok=True)


class _Restore:
    """what a failed restore takes back"""

    def __init__(self):
        self.cdir = None
        self.cg = None
        self.root_mount = None
        self.root_dir = None
        self.pid = 0
        self.fds = []
        self.console = None
        self.pty = -1

    def close_fds(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        if self.console is not None:
            self.console.close()
            self.console = None

    def unmount_root(self):
        if self.root_mount:
            _umount(self.root_mount)
            self.root_mount = None
        if self.root_dir:
            try:
                os.rmdir(self.root_dir)
            except OSError:
                pass
            self.root_dir = None

    def undo(self):
        self.close_fds()
        if self.pty >= 0:
            os.close(self.pty)
            self.pty = -1
        if self.pid > 0:
            try:
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        if self.cg is not None:
            try:
                self.cg.kill_all(9)
            except (OSError, PyruncError):
                pass
            try:
                self.cg.destroy()
            except (OSError, PyruncError) as err:
                _log.get().warn("cleanup cgroups: %s" % err)
        self.unmount_root()
        if self.cdir is not None:
            self.cdir.remove()
            self.cdir.close()


def _join_session_keyring(spec, cid):
    from pyrunc import plan as _plan
    from pyrunc.native import lib

    name = _plan.session_keyring(cid)
    r = lib.prc_session_keyring(name.encode(), _plan.session_keyring_perm(spec))
    if r < 0 and r != -ENOSYS:  # a kernel without keys: nothing to inherit, as runc
        raise PyruncError("restore: join session keyring %s: %s" % (name, os.strerror(-r).lower()))


def restore(g, opts, cid):
    from pyrunc import container as _ct
    from pyrunc import jsonfast
    from pyrunc import spec as _spec
    from pyrunc import state as _state

    criu = g.criu or "criu"
    image, _ = image_paths(opts, create=False)
    mode = cg_mode(opts.manage_cgroups_mode)
    empty = empty_ns_mask(opts.empty_ns)
    bundle = os.path.abspath(opts.bundle or ".")
    _state.check_id(cid)
    spec = _spec.load(bundle)
    terminal = spec.process.terminal
    if terminal and opts.detach and opts.console_socket is None:
        raise PyruncError("cannot allocate tty if pyrunc will detach without setting console socket")
    if opts.console_socket is not None and not terminal:
        raise PyruncError("cannot use console socket if pyrunc will not detach or allocate tty")
    try:
        with open(os.path.join(image, DESCRIPTORS), "rb") as f:
            descs = jsonfast.loads(f.read())
    except FileNotFoundError:
        raise PyruncError("restore: %s: no checkpoint there (no %s)" % (image, DESCRIPTORS)) from None
    except (OSError, jsonfast.JSONError) as err:
        raise PyruncError("restore: read %s: %s" % (os.path.join(image, DESCRIPTORS), err)) from None
    if "cgroup" in spec.namespaces and spec.namespaces["cgroup"]:
        raise PyruncError("restore: a cgroup namespace joined by path is not supported by criu")
    version = criu_version(criu)
    if version < 30000:
        raise CriuError("criu version %d must be 30000 or higher" % version)
    if (opts.lsm_profile or opts.lsm_mount_context) and version < 31600:
        raise CriuError("--lsm-profile and --lsm-mount-context need criu 3.16 or newer")

    u = _Restore()
    u.cdir = cdir = _state.ContainerDir.make(g.root, cid)
    try:
        if opts.console_socket is not None:
            u.console = _ct._connect_console(opts.console_socket)
        from pyrunc.cgroups import create_manager

        cg = create_manager(spec.cgroups_path, cid, systemd=g.systemd_cgroup)
        cg.create()
        u.cg = cg
        cg.set(spec.resources or {})

        # criu wants a mount point for root, whose parent is not over-mounted
        root = os.path.join(cdir.path, "criu-root")
        os.mkdir(root, 0o755)
        u.root_dir = root
        root = os.path.realpath(root)
        _make_mountpoints(spec, spec.root_path)
        _mount_bind(spec.root_path, root)
        u.root_mount = root

        img_fd = _open_dir(image, "image directory")
        u.fds.append(img_fd)
        o = {"images_dir_fd": img_fd, "evasive_devices": True, "log_level": 4, "log_file": "restore.log",
             "rst_sibling": True, "root": root, "manage_cgroups": True, "notify_scripts": True,
             "shell_job": opts.shell_job, "ext_unix_sk": opts.ext_unix_sk,
             "tcp_established": opts.tcp_established, "file_locks": opts.file_locks, "empty_ns": empty,
             "orphan_pts_master": True, "auto_dedup": opts.auto_dedup, "lazy_pages": opts.lazy_pages}
        if opts.lsm_profile:
            o["lsm_profile"] = opts.lsm_profile
        if opts.lsm_mount_context:
            o["lsm_mount_context"] = opts.lsm_mount_context
        work = image
        if opts.work_path:
            work = os.path.abspath(opts.work_path)
            wfd = _open_dir(work, "work directory")
            u.fds.append(wfd)
            o["work_dir_fd"] = wfd
        _config_file(spec, o)

        extra = []
        inherit = []
        join = []
        for t, path in spec.namespaces.items():
            if not path:
                continue
            if t in ("network", "pid"):
                if _ext_ns(spec, version, t) is None:
                    continue
                try:
                    nfd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except OSError as err:
                    raise PyruncError("restore: namespace %s: %s" % (path, os.strerror(err.errno).lower())) from None
                u.fds.append(nfd)
                # fds 0-2 are stdio, 3 the swrk socket: extra ones from 4 on
                inherit.append({"key": _NS_KEY[t][1], "fd": 4 + len(extra)})
                extra.append(nfd)
            else:
                join.append({"ns": _NS_NAME[t], "ns_file": path})
        if join:
            o["join_ns"] = join

        o["ext_mnt"] = restore_ext_mounts(spec, cg.paths)
        if mode is not None:
            o["manage_cgroups_mode"] = mode
        for i, d in enumerate(descs[:3]):
            if isinstance(d, str) and "pipe:" in d:
                inherit.append({"key": d, "fd": i})
        if inherit:
            o["inherit_fd"] = inherit

        st = {"ociVersion": spec.oci_version, "id": cid, "pid": 0, "init_start": 0, "bundle": bundle,
              "rootfs": spec.root_path, "created": _state.now_rfc3339(), "annotations": spec.annotations,
              "cgroup": cg.to_state(), "hooks": _ct._hooks_raw(spec), "namespaces": sorted(spec.namespaces),
              "systemd": g.systemd_cgroup, "restored": True}

        def notify(script, pid, fds):
            if script == "setup-namespaces":
                # runc runs prestart and createRuntime hooks here, with the restored pid
                hs = spec.hooks
                state = {"ociVersion": spec.oci_version, "id": cid, "status": "creating", "pid": pid,
                         "bundle": bundle}
                if spec.annotations:
                    state["annotations"] = spec.annotations
                for phase in ("prestart", "createRuntime"):
                    if phase in hs:
                        _ct._run_hooks(phase, hs[phase], state)
            elif script == "orphan-pts-master":
                if not fds:
                    raise CriuError("criu sent no pty master")
                if u.console is not None:
                    _ct._send_console(u.console, fds[0])
                else:
                    u.pty = os.dup(fds[0])  # foreground: we proxy it
            elif script == "post-restore":
                u.pid = pid
                start = _state.proc_start_time(pid)
                st["pid"] = pid
                st["init_start"] = start[1] if start else 0
                cdir.write(st)

        # stdio: with a terminal criu gets /dev/null (the pty comes back through
        # orphan-pts-master); else ours, which the restored pipes inherit
        stdio = None if terminal else (0, 1, 2)
        # criu forks what it restores from itself, and those processes keep its session
        # keyring: ours, the caller's, whose keys they would possess (runc leaves it so).
        # Join the container's own first, as a created container's init does; the
        # restore's prestart and createRuntime hooks then run in it too.
        _join_session_keyring(spec, cid)
        s = Session(criu, os.path.join(work, "restore.log"), stdio=stdio, extra_fds=extra)
        try:
            # criu joins the container's cgroups: what it restores lands there
            cg.apply(s.pid)
            if not cg.unified:
                roots = []
                for line in _read("/proc/%d/cgroup" % s.pid).splitlines():
                    _, ctrls, path = line.split(":", 2)
                    for ctrl in ctrls.split(","):
                        if ctrl:
                            roots.append({"ctrl": ctrl, "path": path})
                o["cg_root"] = roots
            s.request({"type": R.RESTORE, "opts": o}, notify)
        except BaseException:
            s.kill()
            raise
        code = s.wait()
        if code != 0:
            raise CriuError("criu failed: exit status %d (log: %s)" % (
                os.waitstatus_to_exitcode(code), os.path.join(work, "restore.log")))
        if u.pid <= 0:
            raise CriuError("criu restored no process (log: %s)" % os.path.join(work, "restore.log"))
        u.close_fds()
        u.unmount_root()
        if opts.pid_file:
            _state.write_pid_file(opts.pid_file, u.pid)
    except BaseException:
        u.undo()
        raise
    pid, pty = u.pid, u.pty
    cdir.unlock()
    if opts.detach:
        if pty >= 0:
            os.close(pty)
        cdir.close()
        return 0
    # foreground, as `run`: the restored init is our child (rst_sibling)
    c = _ct.Container(g.root, cid, cdir, st)
    forwarded = _ct.forward_signals(pid)
    try:
        code = _ct.wait_exit_code(pid, pty)
        c.st["pid"] = 0  # reaped: the container has stopped
        c.delete(force=True)
        return code
    finally:
        _ct.restore_signals(forwarded)
        c.close()


def _read(path):
    with open(path) as f:
        return f.read()
