"""Spec -> the flat native plan (struct prc_plan): the only module that fills cffi structs.

Everything the child needs is computed here, in Python, before the clone: flag tables,
paths, capability masks, the device list, the exact mounts.  The child then only walks
arrays.  Every cffi buffer is appended to `Plan.keep` so that it outlives the spawn
(the child reads its copy of this memory).
"""
from pyrunc import _os as os

from pyrunc.errors import ConfigError
from pyrunc.spec import sysctl_dotted, sysctl_path
from pyrunc.native import ffi, lib
from pyrunc.tables import (JOIN_ORDER, MOUNT_FLAGS, RECURSIVE_ATTRS, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID,
                           MS_RDONLY, MS_REC, MS_RELATIME, MS_REMOUNT, MS_SHARED, MS_SLAVE, NAMESPACES,
                           PROPAGATION)

S_IFCHR = 0o020000
S_IFBLK = 0o060000
S_IFIFO = 0o010000

# the nodes every container gets (runc's specconv AllowedDevices with a path)
DEFAULT_DEVICES = (
    ("/dev/null", "c", 1, 3), ("/dev/zero", "c", 1, 5), ("/dev/full", "c", 1, 7),
    ("/dev/tty", "c", 5, 0), ("/dev/random", "c", 1, 8), ("/dev/urandom", "c", 1, 9),
)
DEFAULT_SYMLINKS = (
    ("/dev/fd", "/proc/self/fd"), ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"), ("/dev/stderr", "/proc/self/fd/2"),
)

# keyring permission bits (linux/key.h): search by the owner, by anyone
KEY_USR_SEARCH = 0x00080000
KEY_OTH_SEARCH = 0x00000008


def session_keyring(cid):
    """the session keyring a container's processes join (runc's name)"""
    return "_ses." + cid


def session_keyring_perm(spec):
    """what the init adds to its new keyring's permissions (runc): search by its owner,
    and with a user namespace (new or joined) by anyone, since `exec` arrives there as
    a host uid the namespace may not map"""
    return KEY_OTH_SEARCH if "user" in spec.namespaces else KEY_USR_SEARCH


_cap_last = None


def cap_last():
    global _cap_last
    if _cap_last is None:
        # posix calls, not open(): a buffered file object costs five more system calls
        # (fstat twice, ioctl, lseek twice) for a file of three bytes
        try:
            fd = os.open("/proc/sys/kernel/cap_last_cap", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _cap_last = int(os.read(fd, 64))
            finally:
                os.close(fd)
        except OSError:
            _cap_last = 40
    return _cap_last


class Plan:
    """A filled struct prc_plan plus everything it points to."""

    __slots__ = ("c", "keep", "ns_fds", "exec_path", "argv_items")

    def __init__(self):
        self.c = ffi.new("struct prc_plan *")
        self.keep = []
        self.ns_fds = []

    def s(self, text):
        """a C string that lives as long as the plan"""
        if text is None:
            return ffi.NULL
        # surrogateescape: command-line words that are not UTF-8 (exec ID CMD ...) go
        # back to their bytes; config strings were checked (spec.check_strings)
        buf = ffi.new("char[]", text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text)
        self.keep.append(buf)
        return buf

    def strv(self, items, extra_slot=False):
        bufs = [ffi.NULL if x is None else self.s(x) for x in items]
        arr = ffi.new("char *[]", ([ffi.NULL] if extra_slot else []) + bufs + [ffi.NULL])
        self.keep.append(arr)
        return arr

    def join_cgroups(self, joins):
        """[(O_PATH fd, path)] of cgroup v1 directories the child joins itself
        (csrc/child/util.c: a thread-only move, no grace period)"""
        if not joins:
            return
        fds = ffi.new("int[]", [fd for fd, _ in joins])
        self.keep.append(fds)
        self.c.cgroup_join_fds = fds
        self.c.cgroup_join_paths = self.strv([p for _, p in joins])
        self.c.n_cgroup_join = len(joins)

    def leave_arenas_out(self):
        """Let the spawn leave Python's arenas out of the child's copy of our memory
        (csrc/child/spawn.c nofork says why and how).  Only in the pyrunc command: a
        library caller may have a thread that forks (subprocess) during the clone,
        and that child would miss them.  Plan buffers of 64 KiB or more may be
        mappings of their own (malloc's threshold is 128 KiB and up): named, kept."""
        import pyrunc

        if not pyrunc._command:
            return
        big = [o for o in self.keep if ffi.sizeof(o) >= 65536]
        if big:
            arr = ffi.new("unsigned long[]", [x for o in big
                                              for x in (int(ffi.cast("uintptr_t", o)), ffi.sizeof(o))])
            self.keep.append(arr)
            self.c.plan_spans = arr
            self.c.n_plan_spans = len(big)
        self.c.nofork_arenas = 1

    def close(self):
        for fd in self.ns_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.ns_fds = []


def parse_mount_options(options):
    """runc's parseMountOptions: (flags, propagation, data, (attr_set, attr_clr))"""
    flags = 0
    prop = 0
    data = []
    attr_set = attr_clr = 0
    for o in options:
        f = MOUNT_FLAGS.get(o)
        if f is not None:
            clear, bit = f
            if clear:
                flags &= ~bit
            else:
                flags |= bit
            continue
        p = PROPAGATION.get(o)
        if p is not None:
            prop = p
            continue
        r = RECURSIVE_ATTRS.get(o)
        if r is not None:
            attr_set = (attr_set & ~r[1]) | r[0]
            attr_clr = (attr_clr & ~r[0]) | r[1]
            continue
        if o in ("tmpcopyup", "idmap", "ridmap"):
            continue  # _expand_mounts looks for these (tmpcopyup: tmpfs only, as runc)
        data.append(o)
    return flags, prop, ",".join(data), (attr_set, attr_clr)


def _mount(plan, arr, i, source, target, fstype, flags, data, prop=0, kind=0, extra=0, remount=0,
           attrs=(0, 0), tree_fd=-1, label=None):
    m = arr[i]
    m.tree_fd = tree_fd
    m.label = plan.s(label)
    m.source = plan.s(source)
    m.target = plan.s(target)
    m.fstype = plan.s(fstype)
    m.data = plan.s(data) if data else ffi.NULL
    m.flags = flags
    m.propagation = prop
    m.remount_flags = remount
    m.kind = kind
    m.extra = extra
    m.attr_set, m.attr_clr = attrs


# runc labels every filesystem it mounts with linux.mountLabel except these, whose
# kernels refuse or ignore a context= option (binds take no data at all); mqueue's
# root inode is labelled instead
UNLABELED_FS = ("proc", "sysfs", "cgroup", "cgroup2", "securityfs", "selinuxfs")


def _expand_mounts(spec, cgroups, fds, mount_label=None):
    """config mounts -> tuples for _mount, with cgroup mounts made concrete"""
    out = []
    cgroupns = "cgroup" in spec.namespaces
    roots = None  # the rootfs path as written and resolved, for the first bind that needs it
    for m in spec.mounts:
        flags, prop, data, attrs = parse_mount_options(m.options)
        extra = lib.PRC_MNTX_RECURSIVE if attrs != (0, 0) else 0
        if m.type == "bind" or flags & MS_BIND:
            src = m.source or ""
            if not src:
                raise ConfigError("config.json: mount %s: bind mount needs a source" % m.destination)
            if not src.startswith("/"):
                src = os.join(spec.bundle, src)
            if roots is None:
                roots = {spec.root_path, os.path.realpath(spec.root_path)}
            in_root = _inside_rootfs(roots, src)
            if in_root is not None:
                # a path of the image: the image decides where its symlinks lead, so
                # the child resolves it inside the root (on the host they would reach
                # any host directory), and sees there whether it is a file
                if m.uid_mappings is not None or "idmap" in m.options or "ridmap" in m.options:
                    raise ConfigError("config.json: mount %s: an idmapped bind of a path inside the "
                                      "rootfs is not supported" % m.destination)
                extra |= lib.PRC_MNTX_SRC_IN_ROOT
                src = in_root
            else:
                try:
                    st = os.stat(src)
                except OSError as err:
                    raise ConfigError("mount source %s for %s: %s" % (
                        src, m.destination, os.strerror(err.errno).lower())) from None
                if (st.st_mode & 0o170000) != 0o040000:
                    extra |= lib.PRC_MNTX_FILE
            rest = flags & ~(MS_BIND | MS_REC | MS_REMOUNT)
            if rest:
                extra |= lib.PRC_MNTX_REMOUNT
            fd = _idmap_tree(spec, m, src, flags & MS_REC, fds) if in_root is None else -1
            if fd < 0 and in_root is None and "user" in spec.namespaces:
                fd = _source_tree(m, src, flags & MS_REC, fds)
            if fd >= 0:
                extra |= lib.PRC_MNTX_IDMAP
            out.append((src, m.destination, None, MS_BIND | (flags & MS_REC), None, prop,
                        lib.PRC_MNT_BIND, extra, rest, attrs, fd))
        elif m.uid_mappings is not None or "idmap" in m.options or "ridmap" in m.options:
            raise ConfigError("config.json: mount %s: idmapped mounts are only supported for bind mounts"
                              % m.destination)
        elif m.type in ("cgroup", "cgroup2"):
            out.extend(_cgroup_mounts(m, flags, cgroupns, cgroups))
        else:
            if m.type == "devpts" and m.destination == "/dev/pts":
                extra |= lib.PRC_MNTX_DEVPTS
            if m.type == "tmpfs" and "tmpcopyup" in m.options:
                extra |= lib.PRC_MNTX_TMPCOPYUP
            label = None
            if mount_label and m.type == "mqueue":
                extra |= lib.PRC_MNTX_LABEL  # no context= there (csrc/child/mount.c)
                label = mount_label
            elif mount_label and m.type not in UNLABELED_FS:
                # SELinux's mount option: every inode of this superblock gets the label
                ctx = 'context="%s"' % mount_label
                data = data + "," + ctx if data else ctx
            out.append((m.source or m.type or "none", m.destination, m.type or "none", flags,
                        data, prop, lib.PRC_MNT_FS, extra, 0, attrs, -1, label))
    return out


def _inside_rootfs(roots, src):
    """src as a path inside the rootfs ("/a/b"), or None when it is outside.  Lexical:
    symlinks under the rootfs are the image's and are never resolved here"""
    src = os.path.normpath(src)
    for r in roots:
        if src == r:
            return "/"
        if src.startswith(r.rstrip("/") + "/"):
            return src[len(r.rstrip("/")):]
    return None


def _map_text(maps):
    return "".join("%d %d %d\n" % (x.container_id, x.host_id, x.size) for x in maps)


def _idmap_tree(spec, m, src, recursive, fds):
    """the detached idmapped tree fd an idmapped bind needs, or -1.  runc's rules:
    mappings on the mount imply "idmap"; "idmap"/"ridmap" without them take the
    container's own user namespace mappings.  Bind mounts only (others are refused).
    A throwaway user namespace carries the mappings; the tree keeps what it needs."""
    want = m.uid_mappings is not None or "idmap" in m.options or "ridmap" in m.options
    if not want:
        return -1
    uids, gids = m.uid_mappings, m.gid_mappings
    if uids is None:
        if "user" not in spec.namespaces or not spec.uid_mappings:
            raise ConfigError("config.json: mount %s: idmap without mappings needs a user namespace "
                              "with uidMappings" % m.destination)
        uids, gids = spec.uid_mappings, spec.gid_mappings
    if not uids or not gids:
        raise ConfigError("config.json: mount %s: idmapped mount mappings must not be empty" % m.destination)
    userns = lib.prc_userns_fd(_map_text(uids).encode(), _map_text(gids).encode())
    if userns < 0:
        raise ConfigError("create user namespace for idmapped mount %s: %s" % (
            m.destination, os.strerror(-userns).lower()))
    try:
        tree = lib.prc_idmap_tree(src.encode(), int(bool(recursive)), int("ridmap" in m.options), userns)
    finally:
        os.close(userns)
    if tree < 0:
        raise ConfigError("idmap mount %s on %s: %s" % (src, m.destination, os.strerror(-tree).lower()))
    fds.append(tree)  # the plan's: closed with it, once the child has its copy
    return tree


def _source_tree(m, src, recursive, fds):
    """A bind source for a container with a user namespace: a detached copy made here,
    which the child attaches with move_mount.  Inside its user namespace the child may
    no longer reach the source (a directory only our uid may search), as runc solves
    by opening the sources before nsexec joins the namespace.  -1 where we may not make
    one (no CAP_SYS_ADMIN: rootless), and the child binds the path as before."""
    tree = lib.prc_idmap_tree(src.encode(), int(bool(recursive)), 0, -1)
    if tree < 0:
        if -tree in (1, 38):  # EPERM, ENOSYS
            return -1
        raise ConfigError("open bind source %s for %s: %s" % (src, m.destination, os.strerror(-tree).lower()))
    fds.append(tree)  # the plan's: closed with it, once the child has its copy
    return tree


def _mount_point_of(path):
    """the mount point of the mount that holds path (the longest matching prefix)"""
    path = os.path.realpath(path)
    best = "/"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) > len(best):
                best = mp
    return best


def _cgroup_hierarchies(text=None):
    """(mount point, fstype, super options) of every cgroup mount of the host; `text`:
    /proc/self/mountinfo as the cgroup manager read it"""
    if text is None:
        text = os.read_file("/proc/self/mountinfo").decode("utf-8", "surrogateescape")
    out = []
    for line in text.split("\n"):
        # " - " separates the optional fields from the filesystem's; a space inside a
        # field is escaped (\040), so it cannot occur earlier in the line
        i = line.find(" - cgroup")
        if i < 0:
            continue
        tail = line[i + 3:].split(" ")
        if tail[0] in ("cgroup", "cgroup2"):
            out.append((line[:i].split(" ")[4], tail[0], tail[2] if len(tail) > 2 else ""))
    return out


def _cgroup_mounts(m, flags, cgroupns, cgroups):
    """
    A "cgroup" mount is a view of the container's own cgroups at m.destination.
    cgroup2 alone (pure v2): one mount.  v1/hybrid: a tmpfs with one directory per
    hierarchy.  With a cgroup namespace each hierarchy is mounted fresh (the kernel
    shows the namespace root); without one, the container's cgroup directories are
    bind-mounted (what runc does), so the container never sees its siblings.
    """
    ro = flags & MS_RDONLY
    base = flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME)
    hier = _cgroup_hierarchies(getattr(cgroups, "mountinfo", None))
    root = "/sys/fs/cgroup"
    paths = getattr(cgroups, "paths", None) or {}
    unified_only = len(hier) == 1 and hier[0][1] == "cgroup2"
    if unified_only:
        if cgroupns:
            return [("cgroup2", m.destination, "cgroup2", base | ro, None, 0, lib.PRC_MNT_FS, 0, 0)]
        src = paths.get(hier[0][0], hier[0][0])
        return [(src, m.destination, None, MS_BIND | MS_REC, None, 0, lib.PRC_MNT_BIND,
                 lib.PRC_MNTX_REMOUNT, base | ro)]
    out = [("tmpfs", m.destination, "tmpfs", base, "mode=755", 0, lib.PRC_MNT_FS, 0, 0)]
    for mnt, fstype, opts in hier:
        if not mnt.startswith(root + "/"):
            continue
        name = mnt[len(root) + 1:]
        dest = m.destination + "/" + name
        if cgroupns:
            data = None if fstype == "cgroup2" else ",".join(
                o for o in opts.split(",") if o not in ("rw", "ro"))
            out.append((fstype, dest, fstype, base | ro, data, 0, lib.PRC_MNT_FS, 0, 0))
        else:
            src = paths.get(mnt, mnt)
            out.append((src, dest, None, MS_BIND | MS_REC, None, 0, lib.PRC_MNT_BIND,
                        lib.PRC_MNTX_REMOUNT, base | ro))
    if ro:
        # the tmpfs itself becomes read-only once its directories exist: a remount of
        # that very mount (a bind would take the HOST's path as its source and cover
        # the hierarchies just mounted in the container's tmpfs)
        out.append((None, m.destination, None, MS_REMOUNT | MS_BIND | base | MS_RDONLY, None, 0,
                    lib.PRC_MNT_FS, 0, 0))
    return out


def build(spec, *, wait_mode, fifo_dirfd=-1, preserve_fds=0, no_pivot=False, cgroups=None,
          seccomp=None, lsm=None, mount_label=None, keyring=None):
    """lsm: pyrunc.lsm.exec_attr's answer; mount_label: pyrunc.lsm.mount_label's;
    keyring: the session keyring the init makes and joins (session_keyring()), or None"""
    plan = Plan()
    c = plan.c
    c.abi = lib.PRC_ABI_VERSION
    c.mode = lib.PRC_MODE_INIT
    c.wait_mode = wait_mode
    c.sync_fd = -1
    c.stub_fd = -1
    c.fifo_dirfd = fifo_dirfd
    c.preserve_fds = preserve_fds
    c.cgroup_fd = -1
    c.setsid = 1
    if keyring is not None:
        c.session_keyring = plan.s(keyring)
        c.keyring_perm = session_keyring_perm(spec)
    # without these the child skips the HOOKS round trip (two context switches)
    hooks = spec.hooks
    c.sync_hooks = int("prestart" in hooks or "createRuntime" in hooks or "createContainer" in hooks)

    try:
        _namespaces(plan, spec)
    except BaseException:
        plan.close()
        raise
    userns = "user" in spec.namespaces and spec.namespaces["user"] is None

    # rootfs
    c.rootfs = plan.s(spec.root_path)
    if spec.rootfs_propagation:
        prop = PROPAGATION.get(spec.rootfs_propagation)
        if prop is None:
            raise ConfigError('config.json: linux.rootfsPropagation: unknown propagation "%s"'
                              % spec.rootfs_propagation)
        c.rootfs_propagation = prop
        if prop & MS_SHARED:
            c.rootfs_parent = plan.s(_mount_point_of(spec.root_path))
    else:
        c.rootfs_propagation = MS_SLAVE | MS_REC
    c.readonly_root = int(spec.root_readonly)
    c.no_pivot = int(no_pivot)

    mounts = _expand_mounts(spec, cgroups, plan.ns_fds, mount_label)
    for i, t in enumerate(mounts):
        if t[1] == "/dev" and t[6] == lib.PRC_MNT_FS and t[3] & MS_RDONLY:
            # a read-only /dev: writable while the nodes and submounts are made, then
            # remounted as asked (csrc/child/mount.c, prc_finish_rootfs), as runc
            mounts[i] = t[:3] + (t[3] & ~MS_RDONLY,) + t[4:]
            c.dev_ro_flags = t[3] & ~(MS_REMOUNT | MS_BIND | MS_REC)
            c.dev_ro_data = plan.s(t[4]) if t[4] else ffi.NULL
    arr = ffi.new("struct prc_mount[]", max(len(mounts), 1))
    plan.keep.append(arr)
    for i, t in enumerate(mounts):
        _mount(plan, arr, i, *t)
    c.mounts = arr
    c.n_mounts = len(mounts)

    # /dev: unless the config bind-mounts a whole /dev, create the default nodes and links
    setup_dev = not any(m.destination == "/dev" and (m.type == "bind" or "bind" in m.options
                                                      or "rbind" in m.options)
                        for m in spec.mounts)
    devices = {}
    if setup_dev:
        for path, t, major, minor in DEFAULT_DEVICES:
            devices[path] = (path, S_IFCHR | 0o666, major, minor, 0, 0)
    for d in spec.devices:
        ftype = {"c": S_IFCHR, "u": S_IFCHR, "b": S_IFBLK, "p": S_IFIFO}[d.type]
        devices[d.path] = (d.path, ftype | (d.file_mode & 0o7777), d.major, d.minor, d.uid, d.gid)
    # mknod needs CAP_MKNOD in the initial user namespace: in a new user namespace, or
    # when we are root only inside one (rootless podman runs us so), bind-mount the
    # host's nodes instead, as runc does
    bind = userns
    if devices and not bind:
        from pyrunc.userns import rootless

        bind = rootless()
    darr = ffi.new("struct prc_device[]", max(len(devices), 1))
    plan.keep.append(darr)
    for i, (path, mode, major, minor, uid, gid) in enumerate(devices.values()):
        dv = darr[i]
        dv.path = plan.s(path)
        dv.mode = mode
        dv.major = major
        dv.minor = minor
        dv.uid = uid
        dv.gid = gid
        dv.bind = int(bind)
    c.devices = darr
    c.n_devices = len(devices)

    links = []
    if setup_dev:
        links.extend(DEFAULT_SYMLINKS)
        if os.exists("/proc/kcore"):
            links.append(("/dev/core", "/proc/kcore"))
        if any(m.destination == "/dev/pts" and m.type == "devpts" for m in spec.mounts):
            links.append(("/dev/ptmx", "pts/ptmx"))
    larr = ffi.new("struct prc_kv[]", max(len(links), 1))
    plan.keep.append(larr)
    for i, (k, v) in enumerate(links):
        larr[i].key = plan.s(k)
        larr[i].value = plan.s(v)
    c.symlinks = larr
    c.n_symlinks = len(links)

    c.masked_paths = plan.strv(spec.masked_paths)
    c.n_masked = len(spec.masked_paths)
    c.readonly_paths = plan.strv(spec.readonly_paths)
    c.n_readonly = len(spec.readonly_paths)
    sysctls = list(spec.sysctl.items())
    sarr = ffi.new("struct prc_kv[]", max(len(sysctls), 1))
    plan.keep.append(sarr)
    for i, (k, v) in enumerate(sysctls):
        sarr[i].key = plan.s(sysctl_path(sysctl_dotted(k)))
        sarr[i].value = plan.s(v)
    c.sysctls = sarr
    c.n_sysctls = len(sysctls)
    c.hostname = plan.s(spec.hostname) if spec.hostname else ffi.NULL
    c.domainname = plan.s(spec.domainname) if spec.domainname else ffi.NULL

    _process(plan, spec.process, userns)
    c.personality = -1
    if spec.personality:
        domain = spec.personality.get("domain")
        if domain not in ("LINUX", "LINUX32"):
            raise ConfigError('config.json: linux.personality.domain: unknown domain "%s"' % domain)
        c.personality = 0 if domain == "LINUX" else 0x0008

    _seccomp(plan, seccomp)
    _lsm(plan, lsm)
    return plan


def _seccomp(plan, seccomp):
    c = plan.c
    c.seccomp_fd = -1
    if seccomp is None:
        return
    # a copy in cffi's (malloc'd) memory, not a view of the bytes object: a small one
    # sits in Python's arenas, which the spawn may leave out of the child (leave_arenas_out)
    buf = ffi.new("char[]", seccomp.program)
    plan.keep.append(buf)
    c.seccomp_prog = buf
    c.seccomp_len = len(seccomp.program) // 8
    c.seccomp_flags = seccomp.flags
    c.seccomp_notify = int(seccomp.notify)
    if c.no_new_privs and not seccomp.notify and c.seccomp_len:
        # the stub loads it (csrc/stub/exec_stub.c): then the final execve is the only
        # system call made under the filter, as with runc.  The memfd is closed here
        # after the spawn, with the namespace fds; the child has its copy.
        fd = os.memfd_create("pyrunc-seccomp")
        plan.ns_fds.append(fd)
        os.write(fd, seccomp.program)
        c.seccomp_fd = fd
        old = c.argv            # [path slot, args..., NULL]
        n = len(plan.argv_items)
        marker = ffi.new("char[]", 1)   # "": never a path, tells the stub to load a filter
        arr = ffi.new("char *[]", [marker, ffi.NULL] + [old[i] for i in range(n + 1)] + [ffi.NULL])
        plan.keep.append(marker)
        plan.keep.append(arr)
        param = ffi.new("char[]", 64)
        plan.keep.append(param)
        c.stub_param = param
        arr[1] = param          # (the child fills it; set here for _lsm's copy)
        c.stub_argv = arr
        c.argv = arr + 2


def _lsm(plan, lsm):
    """the LSM label in front of the stub's argv (csrc/stub/exec_stub.c): "", "lsm",
    a buffer the child fills with the attr directory's fd, the file name, the value,
    then what the stub would have got without it"""
    if lsm is None:
        return
    c = plan.c
    attr_dir, name, value, keyring_label = lsm
    inner = c.stub_argv if c.stub_argv else c.argv
    n = 0
    while inner[n] != ffi.NULL:
        n += 1
    fdbuf = ffi.new("char[]", 16)
    plan.keep.append(fdbuf)
    arr = ffi.new("char *[]", [plan.s(""), plan.s("lsm"), fdbuf, plan.s(name), plan.s(value)]
                  + [inner[i] for i in range(n)] + [ffi.NULL])
    plan.keep.append(arr)
    c.lsm_argv = arr
    c.lsm_attr_dir = plan.s(attr_dir)
    if keyring_label is not None and c.session_keyring != ffi.NULL:
        c.keyring_label = plan.s(keyring_label)


def _process(plan, p, userns):
    c = plan.c
    c.cwd = plan.s(p.cwd)
    c.argv = plan.strv(p.args, extra_slot=True)
    plan.argv_items = p.args
    home = not any(e.startswith("HOME=") for e in p.env)
    # a spare NULL slot at the end: the child adds HOME there (runc's default, from the
    # container's /etc/passwd, which only the child can read safely)
    c.envp = plan.strv(p.env + [None] if home else p.env)
    if home:
        c.home_slot = len(p.env)
        hb = ffi.new("char[]", lib.PRC_PATH_MAX + 8)
        plan.keep.append(hb)
        c.home_buf = hb
    else:
        c.home_slot = -1
    path_env = None
    for e in p.env:
        if e.startswith("PATH="):
            path_env = e[5:]
    c.path_env = plan.s(path_env) if path_env is not None else ffi.NULL
    buf = ffi.new("char[]", lib.PRC_PATH_MAX)
    plan.keep.append(buf)
    plan.exec_path = buf
    c.exec_path = buf
    c.argv[0] = buf
    c.uid = p.uid
    c.gid = p.gid
    groups = ffi.new("unsigned int[]", p.additional_gids or [0])
    plan.keep.append(groups)
    c.groups = groups
    c.n_groups = len(p.additional_gids)
    # runc: an unprivileged caller's user namespace has setgroups denied (or may have),
    # and the image's supplementary groups are silently not set there
    c.set_groups = int(os.geteuid() == 0)
    c.cap_bounding = p.caps["bounding"]
    c.cap_effective = p.caps["effective"]
    c.cap_inheritable = p.caps["inheritable"]
    c.cap_permitted = p.caps["permitted"]
    c.cap_ambient = p.caps["ambient"]
    c.set_caps = 1
    c.cap_last = cap_last()
    c.no_new_privs = int(p.no_new_privileges)
    rl = ffi.new("struct prc_rlimit[]", max(len(p.rlimits), 1))
    plan.keep.append(rl)
    for i, (res, soft, hard) in enumerate(p.rlimits):
        rl[i].resource = res
        rl[i].soft = soft
        rl[i].hard = hard
    c.rlimits = rl
    c.n_rlimits = len(p.rlimits)
    c.umask = p.umask if p.umask is not None else -1
    c.terminal = int(p.terminal)
    if p.terminal and p.console_size:
        # a winsize holds 16-bit values
        c.console_rows, c.console_cols = (min(v, 0xffff) for v in p.console_size)
    if p.ioprio is not None:
        c.set_ioprio = 1
        c.ioprio = p.ioprio
    if p.sched is not None:
        c.set_sched = 1
        (c.sched_policy, c.sched_flags, c.sched_nice, c.sched_priority,
         c.sched_runtime, c.sched_deadline, c.sched_period) = p.sched


def _namespaces(plan, spec):
    c = plan.c
    flags = 0
    joins = []
    for t, path in spec.namespaces.items():
        flag, _ = NAMESPACES[t]
        if path is None:
            flags |= flag
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            raise ConfigError("open %s namespace %s: %s" % (t, path, os.strerror(err.errno).lower())) from None
        plan.ns_fds.append(fd)
        joins.append((JOIN_ORDER.index(t), flag, fd))
    joins.sort()
    arr = ffi.new("struct prc_nsjoin[]", max(len(joins), 1))
    plan.keep.append(arr)
    for i, (_, flag, fd) in enumerate(joins):
        arr[i].nstype = flag
        arr[i].fd = fd
    c.joins = arr
    c.n_joins = len(joins)
    c.clone_flags = flags
    c.userns = int("user" in spec.namespaces and spec.namespaces["user"] is None)
    c.dumpable_until_go = int(bool(c.userns) and os.geteuid() != 0)
    if spec.time_offsets and spec.namespaces.get("time", 1) is None:
        lines = []
        for clock in ("monotonic", "boottime"):
            off = spec.time_offsets.get(clock)
            if off:
                lines.append("%s %d %d\n" % (clock, int(off.get("secs", 0)), int(off.get("nanosecs", 0))))
        c.timens_offsets = plan.s("".join(lines))
    else:
        c.timens_offsets = ffi.NULL


def build_exec(proc, init_pid, ns_types, *, seccomp=None, preserve_fds=0, lsm=None, keyring=None):
    """A plan for a process joining a running container: setns into each of its
    namespaces (through stage-1, which also makes a pid namespace take effect), then
    the same process setup as the init, and the exec at once.  keyring: the
    container's session keyring, joined by name (None: keep the caller's)."""
    plan = Plan()
    c = plan.c
    c.abi = lib.PRC_ABI_VERSION
    c.mode = lib.PRC_MODE_EXEC
    c.wait_mode = lib.PRC_WAIT_NONE
    c.sync_fd = -1
    c.stub_fd = -1
    c.fifo_dirfd = -1
    c.preserve_fds = preserve_fds
    c.cgroup_fd = -1
    c.setsid = 1
    c.personality = -1
    if keyring is not None:
        c.session_keyring = plan.s(keyring)
    joins = []
    try:
        for t in ns_types:
            flag, name = NAMESPACES[t]
            path = "/proc/%d/ns/%s" % (init_pid, name)
            # joining our own namespace (e.g. the container shares the host's time ns)
            # is harmless but setns(user) into our own user ns fails with EINVAL: skip
            if os.stat(path).st_ino == os.stat("/proc/self/ns/" + name).st_ino:
                continue
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            plan.ns_fds.append(fd)
            joins.append((JOIN_ORDER.index(t), flag, fd))
    except OSError as err:
        plan.close()
        raise ConfigError("open namespaces of %d: %s" % (init_pid, os.strerror(err.errno).lower())) from None
    joins.sort()
    arr = ffi.new("struct prc_nsjoin[]", max(len(joins), 1))
    plan.keep.append(arr)
    for i, (_, flag, fd) in enumerate(joins):
        arr[i].nstype = flag
        arr[i].fd = fd
    c.joins = arr
    c.n_joins = len(joins)
    c.timens_offsets = ffi.NULL
    c.userns = 0
    _process(plan, proc, False)
    _seccomp(plan, seccomp)
    _lsm(plan, lsm)
    return plan
