"""Image -> OCI runtime bundle: DIR/config.json + DIR/rootfs.

config.json starts from the defaults `pyrunc spec` writes (runc's, see BASE_SPEC),
with the image config on top, the way umoci's convert does it: Entrypoint + Cmd,
Env (image values replace defaults of the same name), WorkingDir, User (names looked up
in the rootfs's /etc/passwd and /etc/group, read without leaving the rootfs), labels
and StopSignal as annotations.  Differences from `runc spec`, on purpose: no terminal
(an image's command is not interactive unless asked) and a writable root (images write
into /tmp, /var/...), as umoci does.

Two ways to make rootfs:
* copy (default): the layers are applied in order into DIR/rootfs.
* shared: every layer is unpacked once into the store (.pyimage/layers/<chain id>):
  layer n is applied through an overlay mount of layers 1..n-1 with its own directory
  as the upper one, so what it deletes becomes overlayfs whiteouts and what it changes
  of lower files is copied up (containerd's overlay snapshotter works this way; the
  directory depends on the layers below, hence the chain id).  DIR/rootfs is then an
  overlay mount of them with the container's own DIR/upper on top, so a second bundle
  of a cached image is a mkdir, a config.json and one mount(2).

A bundle is complete once config.json exists: it is written last, and on failure
everything this call created is removed.
"""
import copy
import json
import os

from . import space, unpack
from .rmtree import rmtree
from .errors import LayerError, PyimageError, defer_signals, show

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# exactly what `pyrunc spec` writes (runc 1.1's defaults with pyrunc's ociVersion and
# hostname); a copy, because pyimage never imports pyrunc: the bundle on disk is the
# only contract.  tests/image/test_pull_bundle.py compares it with `pyrunc spec`.
BASE_SPEC = {
    "ociVersion": "1.2.0",
    "process": {
        "terminal": True,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": ["PATH=" + DEFAULT_PATH, "TERM=xterm"],
        "cwd": "/",
        "capabilities": {k: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                         for k in ("bounding", "effective", "permitted", "ambient")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "pyrunc",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                        "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}


# --- users and groups --------------------------------------------------------------

def read_in_rootfs(rootfs, path, limit=16 << 20):
    """contents of `path` inside rootfs, resolving every symlink inside it; None if absent"""
    a = unpack.Applier.__new__(unpack.Applier)
    a.root = rootfs
    a.root_fd = os.open(rootfs, unpack.O_DIR)
    a.cache = {"": a.root_fd}
    a.alias = {}
    a.owned = []
    a.layer_name = "rootfs"
    try:
        comps = [c for c in path.split("/") if c]
        links = 0
        while True:
            parent, base = "/".join(comps[:-1]), comps[-1]
            try:
                pfd = a.dir_fd(parent, create=False)
            except LayerError:
                return None
            if pfd is None:
                return None
            try:
                fd = os.open(base, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=pfd)
            except FileNotFoundError:
                return None
            except OSError as e:
                import errno
                if e.errno != errno.ELOOP or links > unpack.MAX_LINKS:
                    return None
                links += 1
                target = os.readlink(base, dir_fd=pfd)
                comps = ([] if target.startswith("/") else comps[:-1]) + [c for c in target.split("/") if c]
                # resolve '..' lexically inside the rootfs
                out = []
                for c in comps:
                    if c == "..":
                        if out:
                            out.pop()
                    elif c != ".":
                        out.append(c)
                comps = out
                if not comps:
                    return None
                continue
            with os.fdopen(fd, "rb") as f:
                import stat
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    return None
                return f.read(limit)
    finally:
        a.close()


def _table(data):
    rows = []
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def _id(text):
    """a uid/gid field: ASCII digits within 32 bits, else None (str.isdigit() takes
    '²', and int() refuses strings of thousands of digits)"""
    if 0 < len(text) <= 10 and text.isascii() and text.isdigit():
        n = int(text)
        if n < 1 << 32:
            return n
    return None


def resolve_user(spec, rootfs, what):
    """image User ("name", "uid", "uid:gid", "name:group") -> (uid, gid, additional gids)"""
    spec = (spec or "").strip()
    if not spec:
        return 0, 0, []
    user, _, group = spec.partition(":")
    passwd = _table(read_in_rootfs(rootfs, "/etc/passwd"))
    groups = _table(read_in_rootfs(rootfs, "/etc/group"))
    uid = gid = None
    name = None
    if user.isdigit():
        uid = _id(user)
        if uid is None:
            raise PyimageError("%s: user %s: not a valid uid" % (what, show(repr(user))))
        for r in passwd:
            if len(r) >= 4 and r[2] == user:
                name, gid = r[0], _id(r[3])
                break
    else:
        for r in passwd:
            if len(r) >= 4 and r[0] == user:
                name = user
                uid = _id(r[2])
                gid = _id(r[3])
                break
        if uid is None:
            raise PyimageError("%s: user %s not found in the image's /etc/passwd" % (what, show(repr(user))))
    if group:
        if group.isdigit():
            gid = _id(group)
            if gid is None:
                raise PyimageError("%s: group %s: not a valid gid" % (what, show(repr(group))))
        else:
            for r in groups:
                if len(r) >= 3 and r[0] == group and _id(r[2]) is not None:
                    gid = _id(r[2])
                    break
            else:
                raise PyimageError("%s: group %s not found in the image's /etc/group" % (what, show(repr(group))))
    if gid is None:
        gid = 0 if not group else gid
    extra = []
    if name and not group:
        seen = {gid}
        for r in groups:
            if len(r) >= 4 and name in r[3].split(","):
                g = _id(r[2])
                if g is not None and g not in seen:
                    seen.add(g)
                    extra.append(g)
    return uid, gid, extra


def make_config(img_config, rootfs, what, platform=None):
    spec = copy.deepcopy(BASE_SPEC)
    c = img_config.get("config") or {}
    proc = spec["process"]
    proc["terminal"] = False
    spec["root"]["readonly"] = False
    args = list(c.get("Entrypoint") or []) + list(c.get("Cmd") or [])
    if args:
        proc["args"] = args
    # image values replace defaults (and earlier values) of the same name, in place:
    # one dict from name to position, so a million-entry Env is one pass
    env = list(proc["env"])
    at = {e.partition("=")[0]: n for n, e in enumerate(env)}
    for kv in c.get("Env") or []:
        k = kv.partition("=")[0]
        n = at.get(k)
        if n is None:
            at[k] = len(env)
            env.append(kv)
        else:
            env[n] = kv
    proc["env"] = env
    if c.get("WorkingDir"):
        proc["cwd"] = c["WorkingDir"] if c["WorkingDir"].startswith("/") else "/" + c["WorkingDir"]
    uid, gid, extra = resolve_user(c.get("User"), rootfs, what)
    proc["user"] = {"uid": uid, "gid": gid}
    if extra:
        proc["user"]["additionalGids"] = extra
    ann = {}
    for k, v in (c.get("Labels") or {}).items():
        ann[k] = v if isinstance(v, str) else json.dumps(v)
    if c.get("StopSignal"):
        ann["org.opencontainers.image.stopSignal"] = c["StopSignal"]
    if c.get("ExposedPorts"):
        ann["org.opencontainers.image.exposedPorts"] = ",".join(sorted(c["ExposedPorts"]))
    for key, field in (("os", "os"), ("architecture", "architecture"), ("created", "created"),
                       ("author", "author")):
        if img_config.get(field):
            ann["org.opencontainers.image." + key] = str(img_config[field])
    if ann:
        spec["annotations"] = ann
    return spec


def write_config(bundle_dir, spec):
    path = os.path.join(bundle_dir, "config.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(spec, f, indent="\t")
        f.write("\n")
    os.replace(tmp, path)


# --- bundle creation ---------------------------------------------------------------

def check_dir(bundle_dir):
    """fail before any download when DIR cannot become a bundle (prepare_dir checks
    again when it is made: this is only to answer early)"""
    bundle_dir = os.path.abspath(bundle_dir)
    if os.path.lexists(bundle_dir):
        if not os.path.isdir(bundle_dir):
            raise PyimageError("bundle %s: exists and is not a directory" % bundle_dir)
        if os.listdir(bundle_dir):
            raise PyimageError("bundle %s: directory is not empty" % bundle_dir)
    elif not os.path.isdir(os.path.dirname(bundle_dir)):
        raise PyimageError("bundle %s: parent directory does not exist" % bundle_dir)


def prepare_dir(bundle_dir):
    """make sure DIR is new or empty; returns True if we created it"""
    try:
        os.mkdir(bundle_dir, 0o711)
        return True
    except FileExistsError:
        if not os.path.isdir(bundle_dir):
            raise PyimageError("bundle %s: exists and is not a directory" % bundle_dir) from None
        if os.listdir(bundle_dir):
            raise PyimageError("bundle %s: directory is not empty" % bundle_dir) from None
        return False
    except OSError as e:
        raise PyimageError("bundle %s: %s" % (bundle_dir, e.strerror.lower())) from None


def cleanup_dir(bundle_dir, created):
    rootfs = os.path.join(bundle_dir, "rootfs")
    if is_mountpoint(rootfs):
        umount(rootfs)
    if created:
        rmtree(bundle_dir, ignore_errors=True)
    else:
        for name in os.listdir(bundle_dir):
            p = os.path.join(bundle_dir, name)
            if os.path.isdir(p) and not os.path.islink(p):
                rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)


def bundle_copy(puller, img, bundle_dir, warn=None):
    """apply every layer into bundle_dir/rootfs while they download"""
    tmp_root = os.path.join(bundle_dir, ".rootfs.partial")
    os.mkdir(tmp_root, 0o755)
    store = puller.store
    with store.writer_lock():
        pipe = puller.pipeline(img)
        try:
            ap = unpack.Applier(tmp_root, warn=warn)
            try:
                for i, l in enumerate(img.layers):
                    _apply(ap, pipe, i, "layer %s" % l["digest"])
                    if puller.progress:
                        puller.progress.state(i, "applied")
                ap.finish()
            finally:
                ap.close()
            pipe.wait_downloads()
        finally:
            pipe.close()
        if img.client is not None:
            puller.commit(img)
    os.rename(tmp_root, os.path.join(bundle_dir, "rootfs"))
    return os.path.join(bundle_dir, "rootfs")


def _apply(ap, pipe, i, name):
    """layer i into the applier; a layer refused for what it holds is not kept"""
    try:
        ap.apply(pipe.next_chunk(i), name)
    except (LayerError, space.NoSpace) as e:
        if not any(e is x for x in pipe.errors):    # else another layer's, passed on
            pipe.reject(i)
        raise


def unpack_layers_shared(puller, img, warn=None):
    """make sure every layer of img is unpacked in the store; returns their dirs,
    bottom first"""
    from . import manifest as mf
    store = puller.store
    dirs = [store.layer_dir(c) for c in mf.chain_ids(img.diff_ids)]
    missing = [i for i, d in enumerate(dirs) if not os.path.isdir(d)]
    if os.geteuid() != 0:
        raise PyimageError("bundle --shared: needs root (overlay mounts)")
    need_pull = img.client is not None or any(not store.has_blob(l["digest"], l["size"]) for l in img.layers)
    if not missing and not need_pull:
        return dirs
    with store.writer_lock():
        pipe = puller.pipeline(img, want=missing)
        try:
            for i in missing:
                _unpack_one(store, pipe, img, i, dirs, warn)
                if puller.progress:
                    puller.progress.state(i, "unpacked")
            pipe.wait_downloads()
        finally:
            pipe.close()
        if need_pull:
            puller.commit(img)
    return dirs


def _unpack_one(store, pipe, img, i, dirs, warn):
    """layer i into dirs[i]: directly for the bottom layer, else through an overlay of
    dirs[:i] with a fresh upper directory"""
    tag = "%d-%d" % (os.getpid(), i)
    upper = "%s.tmp-%s" % (dirs[i], tag)
    work = os.path.join(store.tmp, "work-" + tag)
    merged = os.path.join(store.tmp, "merged-" + tag)
    mounted = False
    try:
        os.mkdir(upper, 0o755)
        target = upper
        if i > 0:
            os.mkdir(work, 0o700)
            os.mkdir(merged, 0o755)
            mount_overlay(list(reversed(dirs[:i])), upper, work, merged)
            mounted = True
            target = merged
        ap = unpack.Applier(target, warn=warn)
        try:
            _apply(ap, pipe, i, "layer %s" % img.layers[i]["digest"])
            ap.finish()
        finally:
            ap.close()
        if mounted:
            umount(merged, detach=False)
            mounted = False
        try:
            os.rename(upper, dirs[i])
        except OSError:
            if not os.path.isdir(dirs[i]):
                raise
            rmtree(upper, ignore_errors=True)   # unpacked meanwhile by another pyimage
    finally:
        if mounted:
            umount(merged)
        for d in (upper, work, merged):
            if os.path.lexists(d):
                rmtree(d, ignore_errors=True)


def bundle_shared(puller, img, bundle_dir, warn=None):
    dirs = unpack_layers_shared(puller, img, warn)
    rootfs = os.path.join(bundle_dir, "rootfs")
    upper = os.path.join(bundle_dir, "upper")
    work = os.path.join(bundle_dir, "work")
    for d in (rootfs, upper, work):
        os.mkdir(d, 0o755)
    if not dirs:
        # an image without layers: the upper dir alone is the rootfs
        mount_overlay([os.path.join(bundle_dir, "work")], upper, work, rootfs, empty=True)
        return rootfs
    mount_overlay(list(reversed(dirs)), upper, work, rootfs)
    return rootfs


# --- mounts ------------------------------------------------------------------------

_libc = None


def _mount_call(*args):
    global _libc
    import ctypes
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc, ctypes


def mount_overlay(lowers, upper, work, target, empty=False):
    libc, ctypes = _mount_call()
    if empty:
        # overlay needs one lower layer: an empty directory
        os.mkdir(lowers[0] + ".empty")
        lowers = [lowers[0] + ".empty"]
    opts = "lowerdir=%s,upperdir=%s,workdir=%s" % (":".join(lowers), upper, work)
    if len(opts) >= MOUNT_DATA_MAX:
        _mount_overlay_fsconfig(libc, ctypes, lowers, upper, work, target)
        return
    if libc.mount(b"overlay", target.encode(), b"overlay", 0, opts.encode()) != 0:
        err = ctypes.get_errno()
        raise PyimageError("mount overlay on %s: %s" % (target, os.strerror(err).lower()))


# mount(2) passes its options in one page: with ~100-byte layer paths that is about 40
# layers, and images may have 127.  The new mount API takes the lower layers one at a
# time ("lowerdir+", Linux 6.8): fsopen, fsconfig per option, fsmount, move_mount.
# These syscalls have one number on every architecture but alpha (allocated after 5.1).
MOUNT_DATA_MAX = 4000
SYS_MOVE_MOUNT, SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 429, 430, 431, 432
FSOPEN_CLOEXEC = FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE = 1, 6
MOVE_MOUNT_F_EMPTY_PATH = 4
AT_FDCWD = -100


def _mount_overlay_fsconfig(libc, ctypes, lowers, upper, work, target):
    import errno
    sc = libc.syscall
    sc.restype = ctypes.c_long
    L, I, S = ctypes.c_long, ctypes.c_int, ctypes.c_char_p

    def fail(what):
        err = ctypes.get_errno()
        hint = " (%d layers need the kernel's lowerdir+, Linux 6.8)" % len(lowers) if err == errno.EINVAL else ""
        raise PyimageError("mount overlay on %s: %s: %s%s" % (target, what, os.strerror(err).lower(), hint))

    fs = sc(L(SYS_FSOPEN), S(b"overlay"), I(FSOPEN_CLOEXEC))
    if fs < 0:
        fail("fsopen")
    mnt = -1
    try:
        # the first lowerdir+ is the topmost, as the first entry of lowerdir=
        for key, val in [("lowerdir+", l) for l in lowers] + [("upperdir", upper), ("workdir", work)]:
            if sc(L(SYS_FSCONFIG), I(fs), I(FSCONFIG_SET_STRING), S(key.encode()), S(val.encode()), I(0)) < 0:
                fail("fsconfig %s" % key)
        if sc(L(SYS_FSCONFIG), I(fs), I(FSCONFIG_CMD_CREATE), S(None), S(None), I(0)) < 0:
            fail("fsconfig create")
        mnt = sc(L(SYS_FSMOUNT), I(fs), I(FSMOUNT_CLOEXEC), I(0))
        if mnt < 0:
            fail("fsmount")
        if sc(L(SYS_MOVE_MOUNT), I(mnt), S(b""), I(AT_FDCWD), S(target.encode()), I(MOVE_MOUNT_F_EMPTY_PATH)) < 0:
            fail("move_mount")
    finally:
        os.close(fs)
        if mnt >= 0:
            os.close(mnt)


def umount(target, detach=True):
    libc, ctypes = _mount_call()
    if libc.umount2(target.encode(), 2 if detach else 0) != 0:      # MNT_DETACH
        err = ctypes.get_errno()
        raise PyimageError("unmount %s: %s" % (target, os.strerror(err).lower()))


def mount_points():
    """mount points of this mount namespace, innermost last (mountinfo's octal
    escapes undone)"""
    out = []
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 4:
                    out.append(_unescape(parts[4]))
    except OSError:
        pass
    return out


def _unescape(field):
    if b"\\" not in field:
        return field.decode("utf-8", "surrogateescape")
    import re
    return re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field).decode("utf-8", "surrogateescape")


def is_mountpoint(path):
    real = os.path.realpath(path)
    return real in mount_points()


def make_bundle(puller, img, bundle_dir, shared=False, warn=None):
    bundle_dir = os.path.abspath(bundle_dir)
    created = prepare_dir(bundle_dir)
    try:
        if shared:
            rootfs = bundle_shared(puller, img, bundle_dir, warn)
        else:
            rootfs = bundle_copy(puller, img, bundle_dir, warn)
        spec = make_config(img.config, rootfs, "bundle %s" % img.ref)
        write_config(bundle_dir, spec)
    except BaseException:
        with defer_signals():       # a Ctrl-C now must not leave half a bundle
            cleanup_dir(bundle_dir, created)
        raise
    return bundle_dir


def remove_bundle(bundle_dir):
    """unmount a shared bundle's rootfs and delete the bundle directory"""
    bundle_dir = os.path.abspath(bundle_dir)
    if not os.path.isdir(bundle_dir):
        raise PyimageError("remove bundle %s: no such directory" % bundle_dir)
    rootfs = os.path.join(bundle_dir, "rootfs")
    if is_mountpoint(rootfs):
        umount(rootfs)
    rmtree(bundle_dir)

