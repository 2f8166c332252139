"""cgroups: one manager over every mounted hierarchy, v1, v2 or hybrid.

    m = create_manager(linux.cgroupsPath or None, container id, systemd=False)
    m.create(); m.set(linux.resources); m.apply(pid)      # every `pyrunc create/run`
    m.to_state() -> dict; load_manager(dict)              # later commands
    m.destroy(); m.pids(); m.freeze(); m.thaw(); m.paused(); m.kill_all(sig)
    m.stats(); m.update(resources); m.v2_dirfd()

The factory reads /proc/self/mountinfo once.  Every v1 hierarchy runc knows (cpu,
memory, ..., name=systemd) and the cgroup2 mount become one `_H` each; the container
gets a directory in all of them.  Modes:
  v1      only v1 hierarchies;
  hybrid  v1 hierarchies plus cgroup2 (here at /sys/fs/cgroup/unified); limits go to
          v1, except for a controller that only cgroup2 offers (hugetlb on this host),
          which is enabled and set there; devices fall back to eBPF on cgroup2 when no
          v1 devices hierarchy exists;
  v2      cgroup2 alone; all controllers are enabled down to the container's parent.

Paths, as runc 1.1 does them (libcontainer/cgroups/fs/paths.go, fs2/defaultpath.go,
and observed here with runc 1.1.5):
  absolute cgroupsPath   <mount point>/<path> in every hierarchy;
  relative cgroupsPath   v1: <our own cgroup in that hierarchy>/<path>;
  or none (= the id)     v2: <the PARENT of our own cgroup>/<path> (ours holds
                         processes, so it could not enable controllers for a child);
                         hybrid's cgroup2: <mount point>/<path>, like an absolute one.
"../" cannot climb out of a relative path (runc's CleanPath).

Hot path (create_manager/create/set/apply/destroy): os and errno, the fs module and
only the controller modules a config needs.  Stats, freezing, update and eBPF code are
imported when used.
"""
from pyrunc import _os as os

from pyrunc.cgroups import fs
from pyrunc.cgroups.fs import CgroupError
from pyrunc.state import open_cgroup_mount

__all__ = ["CgroupError", "Manager", "create_manager", "load_manager"]

_R = "linux.resources."
U64_MAX = 18446744073709551615


def create_manager(cgroups_path, container_id, systemd=False, *, prefix="", rootless=None):
    """A manager for the container's cgroups (nothing is created yet).  `prefix`: a
    fake root for unit tests (see fs.py).  `rootless`: runc's rules for a caller that
    may not own the hierarchies (see Manager.create); None: pyrunc/userns.py decides,
    and only when a permission error makes it matter (root pays nothing)."""
    if systemd:
        from pyrunc.cgroups import systemd as _systemd

        return _systemd.create_manager(cgroups_path, container_id, prefix=prefix)
    if cgroups_path:
        inner, absolute = fs.clean(cgroups_path)
    else:
        # runc: Name = the container id, Parent = "", i.e. a relative path
        inner, absolute = fs.clean(container_id)[0], False
    try:
        mountinfo = fs.read_text(prefix + "/proc/self/mountinfo")
        ms = fs.mounts(prefix, mountinfo)
    except OSError as err:
        raise CgroupError("cgroups: read /proc/self/mountinfo: %s" % fs.strerror(err.errno)) from None
    if not ms:
        raise CgroupError("cgroups: no cgroup filesystem is mounted")
    unified = all(m[2] == 2 for m in ms)
    if unified and len(ms) > 1:
        ms = ms[:1]
    own = None
    hs = []
    for mnt, mroot, version, ctrls, dev in ms:
        if absolute or (version == 2 and not unified):
            rel = inner
        else:
            if own is None:
                try:
                    own = fs.own_cgroups(prefix)
                except OSError as err:
                    raise CgroupError("cgroups: read /proc/self/cgroup: %s" % fs.strerror(err.errno)) from None
            mine = own.get(None if version == 2 else frozenset(ctrls), "/")
            # /proc/self/cgroup is relative to the namespace root, the mount may show a
            # subtree (nested containers): make it relative to the mount (runc does too)
            if mroot != "/" and (mine == mroot or mine.startswith(mroot + "/")):
                mine = mine[len(mroot):]
            mine = fs.clean(mine)[0]
            if version == 2:
                mine = mine.rpartition("/")[0]
            rel = fs.join(mine, inner)
        if not rel:
            raise CgroupError("linux.cgroupsPath %r: the root cgroup of %s cannot be a container's cgroup"
                              % (cgroups_path or "", mnt))
        hs.append(_H(prefix + mnt, rel, version, ctrls, dev, mroot))
    m = Manager(hs, unified, prefix)
    m.rootless = rootless
    m.explicit = bool(cgroups_path)
    # the mount table as this create saw it: plan.py binds the container's cgroups from
    # it instead of reading it again (a manager lives for one command)
    m.mountinfo = mountinfo
    return m


def load_manager(state):
    """the manager described by Manager.to_state() (for every later command)"""
    if state.get("systemd"):
        from pyrunc.cgroups import systemd as _systemd

        return _systemd.load_manager(state)
    if "h" not in state:
        # the foundation's format: {"paths": {mnt: [dir, version, ctrls]}, "made": [dirs]}
        hs = []
        made = state.get("made") or []
        for mnt, (path, version, ctrls) in state.get("paths", {}).items():
            rel = path[len(mnt):].strip("/")
            h = _H(mnt, rel, version, tuple(c for c in ctrls if c in fs.V1_CONTROLLERS), None, "/")
            h.made = [d[len(mnt):].strip("/") for d in made if d.startswith(mnt + "/")]
            hs.append(h)
        return Manager(hs, all(h.version == 2 for h in hs), "")
    prefix = state.get("prefix", "")
    hs = []
    for mnt, rel, version, ctrls, made, dev, mroot in state["h"]:
        h = _H(prefix + mnt, rel, version, tuple(ctrls), tuple(dev) if dev else None, mroot)
        h.made = list(made)
        hs.append(h)
    m = Manager(hs, state.get("unified", False), prefix)
    m.resources = state.get("resources") or {}
    m.rootless = state.get("rootless")
    return m


class _H:
    """One hierarchy: where it is mounted, the container's directory in it (`rel`,
    relative to the mount point), and what create() made there."""

    __slots__ = ("mnt", "rel", "version", "ctrls", "dev", "mroot", "made", "rootfd", "dir")

    def __init__(self, mnt, rel, version, ctrls, dev, mroot):
        self.mnt = mnt
        self.rel = rel
        self.version = version
        self.ctrls = ctrls
        self.dev = dev
        self.mroot = mroot
        self.made = []
        self.rootfd = -1
        self.dir = None

    @property
    def path(self):
        return self.mnt + "/" + self.rel

    def open_root(self, fake):
        if self.rootfd >= 0:
            return self.rootfd
        try:
            fd = open_cgroup_mount(self.mnt, None if fake else self.dev)
        except OSError as err:
            raise CgroupError("open cgroup mount %s: %s" % (self.mnt, fs.strerror(err.errno)), err.errno) from None
        if fd < 0:
            raise CgroupError("open cgroup mount %s: it is no longer the cgroup filesystem "
                              "/proc/self/mountinfo listed" % self.mnt)
        self.rootfd = fd
        return fd

    def open_dir(self, fake):
        """the container's directory as a Dir (opened on first use)"""
        d = self.dir
        if d is None:
            rootfd = self.open_root(fake)
            try:
                fd = os.open(self.rel, fs.O_PATH_DIR, dir_fd=rootfd)
            except OSError as err:
                raise CgroupError("open cgroup %s: %s" % (self.path, fs.strerror(err.errno)), err.errno) from None
            d = self.dir = fs.Dir(fd, self.path, bool(fake))
        return d

    def close(self):
        if self.dir is not None:
            os.close(self.dir.fd)
            self.dir = None
        if self.rootfd >= 0:
            os.close(self.rootfd)
            self.rootfd = -1


def _any(sec, keys):
    for k in keys:
        v = sec.get(k)
        if v:
            return True
    return False


# (resource key, controller, module, predicate "the section asks for something")
# in runc's order.  A predicate only looks at the config, so a controller that is not
# mounted is an error only when the config actually asks something of it.
_CPU_KEYS = ("shares", "quota", "period", "burst", "realtimeRuntime", "realtimePeriod")
_V1_STEPS = (
    ("cpu", "cpuset", "cpuset", lambda s: _any(s, ("cpus", "mems"))),
    ("memory", "memory", "memory", lambda s: _any(s, ("limit", "reservation", "swap", "kernel", "kernelTCP",
                                                       "disableOOMKiller"))
     or s.get("swappiness") not in (None, -1) or s.get("useHierarchy") is not None),
    ("cpu", "cpu", "cpu", lambda s: _any(s, _CPU_KEYS) or s.get("idle") is not None),
    ("pids", "pids", "pids", lambda s: bool(s.get("limit"))),
    ("blockIO", "blkio", "blkio", lambda s: _any(s, ("weight", "leafWeight", "weightDevice", "throttleReadBpsDevice",
                                                     "throttleWriteBpsDevice", "throttleReadIOPSDevice",
                                                     "throttleWriteIOPSDevice"))),
    ("hugepageLimits", "hugetlb", "hugetlb", bool),
    ("network", "net_cls", "net_cls", lambda s: s.get("classID") is not None),
    ("network", "net_prio", "net_prio", lambda s: bool(s.get("priorities"))),
    ("rdma", "rdma", "rdma", bool),
)
# cgroup v2 has no swappiness, oom_control, use_hierarchy, realtime budget, net_cls
# or net_prio: runc ignores those fields there, and so do we (realtime excepted: a
# container asking for an RT budget would only fail later, in sched_setscheduler)
_V2_STEPS = (
    ("pids", "pids", "pids", lambda s: bool(s.get("limit"))),
    ("memory", "memory", "memory", lambda s: _any(s, ("limit", "reservation", "swap"))),
    ("blockIO", "io", "io", lambda s: _any(s, ("weight", "weightDevice", "throttleReadBpsDevice",
                                               "throttleWriteBpsDevice", "throttleReadIOPSDevice",
                                               "throttleWriteIOPSDevice"))),
    ("cpu", "cpu", "cpu", lambda s: _any(s, _CPU_KEYS) or s.get("idle") is not None),
    ("cpu", "cpuset", "cpuset", lambda s: _any(s, ("cpus", "mems"))),
    ("hugepageLimits", "hugetlb", "hugetlb", bool),
    ("rdma", "rdma", "rdma", bool),
)
# v1 name -> v2 name, for hybrid hosts where a controller is only on cgroup2
_V2_NAME = {"blkio": "io"}
_MODULES = {}


def _module(version, name):
    key = (version, name)
    mod = _MODULES.get(key)
    if mod is None:
        mod = _MODULES[key] = __import__("pyrunc.cgroups.v%d.%s" % (version, name), fromlist=["set"])
    return mod


class Manager:
    """cgroupfs manager (see the module docstring)."""

    __slots__ = ("hs", "v2", "by_ctrl", "unified", "prefix", "resources", "_v2c", "_into", "device_program",
                 "_child_joins", "rootless", "explicit", "dropped", "_sub", "mountinfo")

    def __init__(self, hs, unified, prefix=""):
        self.hs = hs
        self.unified = unified
        self.prefix = prefix
        self.v2 = None
        self.by_ctrl = {}
        for h in hs:
            if h.version == 2:
                self.v2 = h
            else:
                for c in h.ctrls:
                    self.by_ctrl.setdefault(c, h)
        self.resources = {}
        self._v2c = None
        self._into = False
        self._child_joins = False
        self.rootless = False
        self.explicit = False
        self.dropped = []  # hierarchies a rootless caller could not use (see create)
        self.mountinfo = None  # create_manager's read of /proc/self/mountinfo
        self._sub = {}  # exec --cgroup: hierarchy -> sub-path joined instead (sub_cgroups)
        self.device_program = None  # the last eBPF device program (instructions), for tests

    # ---- description ----

    @property
    def mode(self):
        return "v2" if self.unified else "hybrid" if self.v2 is not None else "v1"

    @property
    def paths(self):
        """{mount point: the container's directory} (plan.py bind-mounts these)"""
        n = len(self.prefix)
        return {h.mnt[n:]: h.path[n:] for h in self.hs}

    def to_state(self):
        n = len(self.prefix)
        st = {"h": [[h.mnt[n:], h.rel, h.version, list(h.ctrls), h.made, list(h.dev) if h.dev else None, h.mroot]
                    for h in self.hs],
              "unified": self.unified, "resources": self.resources}
        if self.rootless:  # None (undecided) is not saved: nothing was dropped
            st["rootless"] = True
        if self.prefix:
            st["prefix"] = self.prefix
        return st

    def close(self):
        for h in self.hs:
            h.close()

    # ---- lifecycle ----

    def create(self):
        """mkdir the container's directory in every hierarchy; remember what was made.
        On failure, what was made is removed again.

        Rootless (runc's fs and fs2 managers): a hierarchy the caller may not write is
        left out when the config names no cgroupsPath; set() then fails only if a
        limit needs it.  With a cgroupsPath the permission error stands."""
        fake = self.prefix
        try:
            for h in list(self.hs):
                rootfd = h.open_root(fake)
                try:
                    made = fs.mkdir(rootfd, h.rel, h.mnt if fake else None)
                except OSError as err:
                    if err.errno in (1, 13, 30) and not self.explicit and self._rootless():  # EPERM EACCES EROFS
                        self._drop(h)
                        continue
                    raise CgroupError("create cgroup %s: %s" % (h.path, fs.strerror(err.errno)), err.errno) from None
                h.made.extend(made)
                h.open_dir(fake)
                if made and "cpuset" in h.ctrls:
                    self._cpuset_init(h, made)
            if self.unified and self.v2 is not None:
                self._v2_enable(None)
        except BaseException:
            try:
                self.destroy()
            except CgroupError:
                pass
            raise

    def _rootless(self):
        if self.rootless is None:
            from pyrunc.userns import rootless

            self.rootless = rootless()
        return self.rootless

    def _drop(self, h):
        h.close()
        self.hs.remove(h)
        self.dropped.append(h)
        if h is self.v2:
            self.v2 = None
        for c in h.ctrls:
            if self.by_ctrl.get(c) is h:
                del self.by_ctrl[c]

    def _cpuset_init(self, h, made):
        """A new v1 cpuset has empty cpus and mems and refuses tasks: give it its
        parent's.  Existing ancestors that are still empty get them too (runc's
        ensureParent), from the nearest one that has values."""
        root = fs.Dir(h.rootfd, h.mnt, bool(self.prefix))
        p = made[0].rpartition("/")[0]
        chain = list(made)
        while True:
            cpus = root.read(fs.join(p, "cpuset.cpus"), _R + "cpu.cpus").strip()
            mems = root.read(fs.join(p, "cpuset.mems"), _R + "cpu.mems").strip()
            if (cpus and mems) or not p:
                break
            chain.insert(0, p)
            p = p.rpartition("/")[0]
        for d in chain:
            root.write(fs.join(d, "cpuset.cpus"), cpus or "\n", _R + "cpu.cpus")
            root.write(fs.join(d, "cpuset.mems"), mems or "\n", _R + "cpu.mems")

    def apply(self, pid):
        """put pid into the container's cgroup in every hierarchy"""
        s = str(pid)
        fake = self.prefix
        for h in self.hs:
            if h is self.v2 and self._into and self._in_v2(pid):
                continue  # clone3(CLONE_INTO_CGROUP) already put it there
            if h is not self.v2 and self._child_joins:
                continue  # the child joined it itself (v1_join_dirs)
            d = h.open_dir(fake)
            rel = self._sub.get(h)
            try:
                if rel:
                    d.write(rel + "/cgroup.procs", s, "join cgroup")
                else:
                    d.write("cgroup.procs", s, "join cgroup")
            except CgroupError as err:
                where = h.path + ("/" + rel if rel else "")
                raise CgroupError("add pid %d to cgroup %s: %s" % (pid, where, fs.strerror(err.errno)),
                                  err.errno) from None

    def _in_v2(self, pid):
        try:
            text = fs.read_text("/proc/%d/cgroup" % pid)
        except OSError:
            return False
        want = fs.join(self.v2.mroot.strip("/"), self.v2.rel)
        if self._sub.get(self.v2):
            want = fs.join(want, self._sub[self.v2])
        for line in text.split("\n"):
            if line.startswith("0::"):
                return line[3:].strip("/") == want
        return False

    def v2_dirfd(self):
        """an O_PATH fd of the cgroup2 directory for clone3(CLONE_INTO_CGROUP), or None;
        apply() then skips the cgroup2 write when the child is already there (the write
        costs an RCU grace period, ~12 ms, on a pure cgroup2 host)"""
        if self.v2 is None or self.prefix:
            return None
        d = self.v2.open_dir("")
        self._into = True
        if self._sub.get(self.v2):
            return self.sub_dir_fd(self.v2, self._sub[self.v2])
        return d.fd

    def set_is_atomic(self):
        """Whether set() can run while the container's init is already in its cgroups
        and building its rootfs: on cgroup2 alone the device rules are one BPF program,
        swapped in by one call.  cgroup v1's devices.deny and devices.allow are
        rewritten rule by rule, first "deny all": an init there could meet that moment
        and fail its mknod or its open of /dev/null."""
        return self.unified

    def placed_by_clone(self):
        """whether the init is in every container cgroup as it starts, so that apply()
        has nothing to write: it joins the v1 ones itself (v1_join_dirs) and clone3
        creates it in the cgroup2 one (v2_dirfd; only the child can tell that clone3
        did, csrc/child/init.c)"""
        if self.prefix or self._sub:
            return False
        v1 = any(h is not self.v2 for h in self.hs)
        return (self._child_joins or not v1) and (self.v2 is None or self._into)

    def v1_join_dirs(self):
        """[(O_PATH fd, path)] of the container's directory in every v1 hierarchy, for
        a child that joins them itself by writing "0" to `tasks` (csrc/child/init.c
        explains why that costs no RCU grace period); apply() then skips them"""
        if self.prefix:
            return []
        out = [(self.sub_dir_fd(h, self._sub[h]), h.path + "/" + self._sub[h]) if self._sub.get(h)
               else (h.open_dir("").fd, h.path) for h in self.hs if h is not self.v2]
        self._child_joins = bool(out)
        return out

    def sub_cgroups(self, specs):
        """exec --cgroup: ["PATH" | "CTRL[,CTRL...]:PATH", ...] -> {hierarchy: relative
        sub-path} (runc's syntax: a bare PATH is for every hierarchy, "/" is the
        container's own cgroup).  Raises CgroupError for a path leaving the container's
        cgroup or an unknown controller."""
        out = {}
        for spec in specs:
            ctrls, sep, path = spec.rpartition(":")
            # relative to the container's cgroup, and never above it (an absolute
            # path is clamped at the container's cgroup, as "/" names it)
            if path and os.normpath(path).split("/")[0] == "..":
                raise CgroupError("exec --cgroup %s: %s is not a sub cgroup path" % (spec, path))
            rel = os.normpath("/" + path).lstrip("/") if path else ""
            if not sep:
                for h in self.hs:
                    out[h] = rel
                continue
            for c in ctrls.split(","):
                h = self.by_ctrl.get(c)
                if h is None and c and self.v2 is not None and self.unified:
                    h = self.v2
                if h is None:
                    raise CgroupError("exec --cgroup %s: unknown controller %s" % (spec, c))
                out[h] = rel
        self._sub = {h: rel for h, rel in out.items() if rel}
        return self._sub

    def sub_dir_fd(self, h, rel):
        """an O_PATH fd of the container's sub-cgroup rel in hierarchy h (exec --cgroup);
        the caller closes it (with the plan's namespace fds: the child has a copy)"""
        d = h.open_dir(self.prefix)
        try:
            return os.open(rel, fs.O_PATH_DIR, dir_fd=d.fd)
        except OSError as err:
            # runc's words: the join is what fails there
            raise CgroupError("exec: adding pid to cgroups: open %s/%s/cgroup.procs: %s"
                              % (h.path, rel, fs.strerror(err.errno)), err.errno) from None

    def destroy(self):
        """Remove every directory create() made, deepest first.  Idempotent.  The
        container's own directory may still hold exiting tasks (EBUSY): whatever is
        left is killed once and removal retried for up to ~1 s.  A parent we made that
        another container now uses is left in place.  (pyrunc/cgremove.py: the same
        removal for `delete`, from the state record alone.)"""
        from pyrunc import cgremove

        fake = self.prefix
        errors = []
        for h in self.hs:
            if not h.made and not h.rel:
                h.close()
                continue
            try:
                rootfd = h.open_root(fake)
            except CgroupError as err:
                if h.made:
                    errors.append(str(err))
                continue
            rmdir = (lambda fd, rel, mnt=h.mnt: fs.rmdir(fd, rel, mnt)) if fake else None
            if not h.made:
                cgremove.remove_existing(rootfd, h.rel, rmdir)
                h.close()
                continue
            if h.dir is not None:
                os.close(h.dir.fd)
                h.dir = None
            h.made, err = cgremove.remove_made(rootfd, h.mnt, h.rel, h.made, self._kill_left, rmdir)
            if err:
                errors.append(err)
            h.close()
        if errors:
            raise CgroupError(errors[0])

    def _kill_left(self):
        self.kill_all(9)

    # ---- resources ----

    def _v2_controllers(self):
        c = self._v2c
        if c is None:
            d = self.v2.open_dir(self.prefix)
            c = self._v2c = frozenset((d.read_opt("cgroup.controllers") or "").split())
        return c

    def _v2_enable(self, wanted):
        """Enable controllers (all the root offers when wanted is None) in the
        cgroup.subtree_control of every ancestor of the container's cgroup2 directory,
        top-down, as runc's fs2 CreateCgroupPath does.  A refusal (a threaded
        subtree, an ancestor with processes) is not fatal here: set() names the
        controller it then cannot find."""
        h = self.v2
        have = self._v2_controllers()
        root = fs.Dir(h.open_root(self.prefix), h.mnt, bool(self.prefix))
        if wanted is None:
            wanted = frozenset((root.read_opt("cgroup.controllers") or "").split())
        missing = wanted - have
        if not missing:
            return
        line = " ".join("+" + c for c in sorted(missing))
        parts = h.rel.split("/")
        for i in range(len(parts)):
            name = fs.join("/".join(parts[:i]), "cgroup.subtree_control")
            try:
                root.write(name, line, "enable controllers")
            except CgroupError:
                for c in sorted(missing):
                    try:
                        root.write(name, "+" + c, "enable controllers")
                    except CgroupError:
                        pass
        self._v2c = None

    def _locate(self, ctrl, key):
        """(Dir, version) where controller ctrl of this container is set"""
        fake = self.prefix
        if not self.unified:
            h = self.by_ctrl.get(ctrl)
            if h is not None:
                return h.open_dir(fake), 1
            ctrl = _V2_NAME.get(ctrl, ctrl)
        if self.v2 is None:
            raise CgroupError("%s%s: the %s cgroup controller is not mounted" % (_R, key, ctrl))
        if ctrl not in self._v2_controllers():
            self._v2_enable(frozenset((ctrl,)))
            if ctrl not in self._v2_controllers():
                if self.unified:
                    raise CgroupError("%s%s: the %s controller is not available in %s (cgroup.controllers: %s)"
                                      % (_R, key, ctrl, self.v2.path, " ".join(sorted(self._v2_controllers()))
                                         or "none"))
                raise CgroupError("%s%s: the %s cgroup controller is not mounted" % (_R, key, ctrl))
        return self.v2.open_dir(fake), 2

    def set(self, res, devices=True):
        """Apply linux.resources (the raw dict from config.json).  runc's semantics:
        zero or absent means "leave as it is"; the device rules always apply (runc
        appends its default allow list, so an absent list means "deny all but those").
        On the first error a CgroupError names the config field, the file and the
        kernel's answer."""
        res = res or {}
        self._set(res, devices, False)
        self.resources = res

    def _set(self, res, devices, update):
        for key, ctrl, modname, wanted in (_V2_STEPS if self.unified else _V1_STEPS):
            sec = res.get(key)
            if not sec or not wanted(sec):
                continue
            if self.dropped and not self._have(ctrl):
                # runc's words for a rootless caller whose limits have nowhere to go
                if self.unified:
                    raise CgroupError("rootless needs no limits + no cgrouppath when no permission is "
                                      "granted for cgroups: %s%s needs the %s controller" % (_R, key, ctrl))
                raise CgroupError("cannot set %s limit: container could not join or create cgroup" % ctrl)
            d, version = self._locate(ctrl, key)
            _module(version, _V2_NAME.get(modname, modname) if version == 2 else modname).set(d, sec, self, update)
        if devices:
            self._set_devices(res.get("devices") or (), update)
        if res.get("unified"):
            self._set_unified(res["unified"])

    def _have(self, ctrl):
        return ctrl in self.by_ctrl or (self.v2 is not None and (self.unified or _V2_NAME.get(ctrl, ctrl)
                                                                 in self._v2_controllers()))

    def _set_devices(self, rules, update):
        try:
            self._set_devices_checked(rules, update)
        except (CgroupError, OSError):
            # runc ignores device rules a rootless caller cannot apply (devices.deny,
            # an eBPF program): its containers get no device nodes beyond bind mounts
            # of the host's, which keep the host's permissions
            if not self._rootless():
                raise

    def _set_devices_checked(self, rules, update):
        fake = self.prefix
        h = None if self.unified else self.by_ctrl.get("devices")
        if h is not None:
            _module(1, "devices").set(h.open_dir(fake), rules, self, update)
        elif self.v2 is not None:
            _module(2, "devices").set(self.v2.open_dir(fake), rules, self, update)
        else:
            raise CgroupError(_R + "devices: the devices cgroup controller is not mounted")

    def _set_unified(self, kv):
        """linux.resources.unified: cgroup2 file -> value, written last so it can
        override what the other fields set (runc)"""
        if self.v2 is None:
            raise CgroupError("invalid configuration: " + _R + "unified: cannot use unified on cgroup v1 "
                              "(cgroup2 is not mounted)")
        d = self.v2.open_dir(self.prefix)
        for k in sorted(kv):
            v = kv[k]
            what = "%sunified[%s]" % (_R, k)
            if "/" in k or k in ("", ".", ".."):
                raise CgroupError("%s: must be a file name" % what)
            ctrl = k.partition(".")[0]
            if ctrl not in ("cgroup", "") and ctrl not in self._v2_controllers():
                self._v2_enable(frozenset((ctrl,)))
            try:
                d.write(k, str(v), what)
            except CgroupError as err:
                if err.errno in (2, 1, 13) and ctrl != "cgroup" and ctrl not in self._v2_controllers():
                    if ctrl in self.by_ctrl and self.by_ctrl[ctrl] is not self.v2:
                        # hybrid: the controller lives in a v1 hierarchy; runc refuses
                        # unified there altogether, with this wording
                        raise CgroupError("invalid configuration: %s: cannot use unified on cgroup v1 (%s is "
                                          "a v1 controller on this host)" % (what, ctrl), err.errno) from None
                    raise CgroupError("%s: controller %s is not available in %s" % (what, ctrl, self.v2.path),
                                      err.errno) from None
                raise

    def update(self, new):
        """`pyrunc update`: the fields runc updates, zero or absent = unchanged; the
        merged resources become self.resources.  On failure the previous values are
        written back (as runc does) and the error raised."""
        from pyrunc.cgroups import update as _update

        merged, changed = _update.merge(self.resources, new)
        try:
            self._set(changed, False, True)
        except CgroupError:
            try:
                self._set(_update.merge(merged, self.resources)[1], False, True)
            except CgroupError:
                pass
            raise
        self.resources = merged

    # ---- processes ----

    def _procs_dir(self):
        """the hierarchy that lists every process of the container (cgroup2 first)"""
        if self.v2 is not None:
            return self.v2
        for c in ("pids", "freezer", "devices", "memory", "cpu"):
            h = self.by_ctrl.get(c)
            if h is not None:
                return h
        return self.hs[0]

    def pids(self):
        """every pid in the container's cgroup and its sub-cgroups"""
        if not self.hs:
            return []  # rootless without any usable hierarchy: the init's pid namespace is all there is
        h = self._procs_dir()
        base = h.path
        out = []
        stack = [base]
        while stack:
            p = stack.pop()
            try:
                text = fs.read_text(p + "/cgroup.procs")
            except FileNotFoundError:
                continue
            except OSError as err:
                raise CgroupError("read %s/cgroup.procs: %s" % (p, fs.strerror(err.errno)), err.errno) from None
            out.extend(int(x) for x in text.split())
            try:
                with os.scandir(p) as it:
                    stack.extend(e.path for e in it if e.is_dir(follow_symlinks=False))
            except OSError:
                pass
        return out

    def kill_all(self, sig):
        """Signal every process.  SIGKILL on cgroup2 (hybrid too: its directory holds
        every container process) is one write to cgroup.kill (Linux 5.14), which the
        kernel applies atomically, forks included.  Otherwise the cgroup is frozen
        while we signal, so nothing forks past us, as runc does."""
        if sig == 9 and self.v2 is not None and not self.prefix:
            try:
                self.v2.open_dir("").write("cgroup.kill", "1", "kill")
                return
            except CgroupError as err:
                if err.errno == 2 and not os.path.isdir(self.v2.path):
                    return  # the cgroup is gone, and so is everything that was in it
                if err.errno not in (2, 22):  # ENOENT, EINVAL: a kernel before 5.14
                    raise
        froze = False
        if not self.prefix:
            try:
                if not self.paused():
                    self.freeze()
                    froze = True
            except CgroupError:
                pass
        try:
            self._signal_listed(self.pids(), sig)
        finally:
            if froze:
                self.thaw()

    def _signal_listed(self, pids, sig):
        """Signal the listed processes that are still ours.  Unfrozen (the freeze
        failed: a container forking fast enough keeps a v1 freezer FREEZING; or no
        freezer), a listed process may have exited and its pid gone to a host process
        before our kill.  So: pidfds first, then cgroup.procs again; a pid listed
        again whose pidfd still has a process is that process, and it is in the
        cgroup (a pid is not reused while its process lives).  By batches, to keep
        the number of fds we hold small."""
        import _signal

        for i in range(0, len(pids), 256):
            fds = {}
            try:
                for pid in pids[i:i + 256]:
                    try:
                        fds[pid] = os.pidfd_open(pid)
                    except ProcessLookupError:
                        pass
                still = set(self.pids()) if fds else ()
                for pid, fd in fds.items():
                    if pid in still:
                        try:
                            _signal.pidfd_send_signal(fd, sig)
                        except ProcessLookupError:
                            pass
            finally:
                for fd in fds.values():
                    os.close(fd)

    # ---- freezer ----

    def _freezer(self):
        if not self.unified:
            h = self.by_ctrl.get("freezer")
            if h is not None:
                return h, 1
        if self.v2 is not None:
            return self.v2, 2
        return None, 0

    def freeze(self):
        from pyrunc.cgroups import freezer

        h, v = self._freezer()
        if h is None:
            raise CgroupError("pause: no freezer cgroup is mounted")
        freezer.freeze(h.open_dir(self.prefix), v)

    def thaw(self):
        from pyrunc.cgroups import freezer

        h, v = self._freezer()
        if h is None:
            raise CgroupError("resume: no freezer cgroup is mounted")
        freezer.thaw(h.open_dir(self.prefix), v)

    def paused(self):
        h, v = self._freezer()
        if h is None:
            return False
        d = h.open_dir(self.prefix)
        if v == 1:
            return (d.read_opt("freezer.state") or "").strip() == "FROZEN"
        return (d.read_opt("cgroup.freeze") or "").strip() == "1"

    # ---- stats ----

    def stats(self):
        """runc's `events --stats` data (types.Stats of runc 1.1, same field names)"""
        from pyrunc.cgroups import stats

        return stats.collect(self)

    def oom_kills(self):
        from pyrunc.cgroups import stats

        return stats.oom_kills(self)

