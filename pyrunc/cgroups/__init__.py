"""cgroups: one manager over every mounted hierarchy (v1, v2 and hybrid hosts).

The factory reads /proc/self/mountinfo once: each cgroup (v1) or cgroup2 mount is a
hierarchy.  On a hybrid host (v1 controllers plus cgroup2 at .../unified) the container
gets a directory in every one of them, as runc does.  Paths follow runc: an absolute
cgroupsPath is taken from each hierarchy's root, a relative one (and the default,
the container id) from the cgroup pyrunc itself runs in.

This is the foundation's manager: create/apply/destroy, freeze, kill, pids, and the
common resources (memory, cpu, pids, v1 devices).  The full set of linux.resources,
update, events and the v2 device eBPF program are issue 4.

Hot path: only os and errno; every file is opened relative to the container's
directory fd.
"""
import errno
import os

from pyrunc.errors import PyruncError

ROOT = "/sys/fs/cgroup"


class CgroupError(PyruncError):
    pass


def _hierarchies(mountinfo="/proc/self/mountinfo"):
    """[(mount point, version, controllers)]"""
    out = []
    with open(mountinfo) as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            fstype = fields[sep + 1]
            if fstype == "cgroup2":
                out.append((fields[4], 2, ()))
            elif fstype == "cgroup":
                opts = fields[sep + 3].split(",")
                ctrls = tuple(o for o in opts if o not in ("rw", "ro") and "=" not in o or o.startswith("name="))
                out.append((fields[4], 1, ctrls))
    return out


def _own_cgroups():
    """{controller or "" (v2) or "name=x": path} of this process"""
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if not ctrls:
                own[""] = path
            for c in ctrls.split(","):
                own[c] = path
    return own


def create_manager(cgroups_path, container_id, systemd=False):
    if systemd:
        raise CgroupError("systemd cgroup driver: no systemd is reachable on this host "
                          "(use the cgroupfs driver: drop --systemd-cgroup)")
    hier = _hierarchies()
    if not hier:
        raise CgroupError("cgroups: no cgroup hierarchy is mounted")
    path = cgroups_path or container_id
    own = None
    paths = {}
    for mnt, version, ctrls in hier:
        if path.startswith("/"):
            rel = path
        else:
            if own is None:
                own = _own_cgroups()
            key = "" if version == 2 else (ctrls[0] if ctrls else "")
            rel = os.path.join(own.get(key, "/"), path)
        rel = os.path.normpath("/" + rel.lstrip("/"))
        if rel == "/":
            raise CgroupError("cgroupsPath %r: must not be the root cgroup" % path)
        paths[mnt] = (mnt + rel, version, ctrls)
    return Manager(paths)


def load_manager(state):
    return Manager({m: (p, v, tuple(c)) for m, (p, v, c) in state["paths"].items()}, state.get("made"))


class Manager:
    __slots__ = ("dirs", "made")

    def __init__(self, dirs, made=None):
        self.dirs = dirs          # mount point -> (container dir, version, controllers)
        self.made = made or []    # directories create() made, deepest last

    @property
    def paths(self):
        return {m: d[0] for m, d in self.dirs.items()}

    def to_state(self):
        return {"paths": {m: [p, v, list(c)] for m, (p, v, c) in self.dirs.items()}, "made": self.made}

    def create(self):
        for mnt, (path, version, ctrls) in self.dirs.items():
            todo = []
            p = path
            while p != mnt and not os.path.isdir(p):
                todo.append(p)
                p = os.path.dirname(p)
            for d in reversed(todo):
                try:
                    os.mkdir(d, 0o755)
                except FileExistsError:
                    continue
                except OSError as err:
                    raise CgroupError("create cgroup %s: %s" % (d, os.strerror(err.errno).lower())) from None
                self.made.append(d)
                if "cpuset" in ctrls:
                    # a v1 cpuset starts empty and takes no task: inherit the parent's
                    for f in ("cpuset.cpus", "cpuset.mems"):
                        with open(os.path.join(os.path.dirname(d), f)) as src:
                            _write(d, f, src.read().strip() or "\n")

    def apply(self, pid):
        for mnt, (path, version, ctrls) in self.dirs.items():
            _write(path, "cgroup.procs", str(pid))

    def set(self, res):
        """memory, cpu, pids and (v1) devices of linux.resources"""
        for mnt, (path, version, ctrls) in self.dirs.items():
            if version == 1:
                self._set_v1(path, ctrls, res)
            elif not any(v == 1 for _, v, c in self.dirs.values() if c and c[0] != "name=systemd"):
                self._set_v2(path, res)

    def _set_v1(self, path, ctrls, res):
        mem = res.get("memory") or {}
        cpu = res.get("cpu") or {}
        pids = res.get("pids") or {}
        if "memory" in ctrls:
            if mem.get("limit"):
                _write(path, "memory.limit_in_bytes", str(mem["limit"]))
            if mem.get("reservation"):
                _write(path, "memory.soft_limit_in_bytes", str(mem["reservation"]))
            if mem.get("swap"):
                _write(path, "memory.memsw.limit_in_bytes", str(mem["swap"]))
            if mem.get("swappiness") is not None:
                if not 0 <= mem["swappiness"] <= 100:
                    raise CgroupError("linux.resources.memory.swappiness: %d is not in [0, 100]"
                                      % mem["swappiness"])
                _write(path, "memory.swappiness", str(mem["swappiness"]))
            if mem.get("disableOOMKiller"):
                _write(path, "memory.oom_control", "1")
        if "cpu" in ctrls:
            if cpu.get("shares"):
                _write(path, "cpu.shares", str(cpu["shares"]))
            if cpu.get("period"):
                _write(path, "cpu.cfs_period_us", str(cpu["period"]))
            if cpu.get("quota"):
                _write(path, "cpu.cfs_quota_us", str(cpu["quota"]))
        if "cpuset" in ctrls:
            if cpu.get("cpus"):
                _write(path, "cpuset.cpus", cpu["cpus"])
            if cpu.get("mems"):
                _write(path, "cpuset.mems", cpu["mems"])
        if "pids" in ctrls and pids.get("limit"):
            limit = pids["limit"]
            _write(path, "pids.max", "max" if limit <= 0 else str(limit))
        if "devices" in ctrls and res.get("devices") is not None:
            for rule in _device_rules(res["devices"]):
                _write(path, rule[0], rule[1])

    def _set_v2(self, path, res):
        mem = res.get("memory") or {}
        cpu = res.get("cpu") or {}
        pids = res.get("pids") or {}
        if mem.get("limit"):
            _write(path, "memory.max", "max" if mem["limit"] < 0 else str(mem["limit"]))
        if cpu.get("shares"):
            # runc's conversion of cgroup v1 shares [2, 262144] to v2 weight [1, 10000]
            _write(path, "cpu.weight", str(1 + ((cpu["shares"] - 2) * 9999) // 262142))
        if cpu.get("quota") or cpu.get("period"):
            quota = cpu.get("quota") or 0
            _write(path, "cpu.max", "%s %d" % (str(quota) if quota > 0 else "max", cpu.get("period") or 100000))
        if pids.get("limit"):
            _write(path, "pids.max", "max" if pids["limit"] <= 0 else str(pids["limit"]))

    def pids(self):
        for mnt, (path, version, ctrls) in self.dirs.items():
            try:
                with open(os.path.join(path, "cgroup.procs")) as f:
                    return [int(x) for x in f.read().split()]
            except OSError:
                continue
        return []

    def _freezer(self):
        for mnt, (path, version, ctrls) in self.dirs.items():
            if version == 1 and "freezer" in ctrls:
                return path, 1
        for mnt, (path, version, ctrls) in self.dirs.items():
            if version == 2 and os.path.exists(os.path.join(path, "cgroup.freeze")):
                return path, 2
        return None, 0

    def paused(self):
        path, v = self._freezer()
        if v == 1:
            with open(os.path.join(path, "freezer.state")) as f:
                return f.read().strip() == "FROZEN"
        if v == 2:
            with open(os.path.join(path, "cgroup.freeze")) as f:
                return f.read().strip() == "1"
        return False

    def freeze(self):
        path, v = self._freezer()
        if v == 0:
            raise CgroupError("pause: no freezer cgroup is mounted")
        _write(path, "freezer.state" if v == 1 else "cgroup.freeze", "FROZEN" if v == 1 else "1")

    def thaw(self):
        path, v = self._freezer()
        if v:
            _write(path, "freezer.state" if v == 1 else "cgroup.freeze", "THAWED" if v == 1 else "0")

    def kill_all(self, sig):
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def destroy(self):
        """remove what create() made, deepest first; retry while the kernel still
        counts exiting tasks (EBUSY)"""
        import time

        leaves = {p for p, _, _ in self.dirs.values()}
        for d in sorted(self.made, key=len, reverse=True):
            for attempt in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as err:
                    if d not in leaves and err.errno in (errno.EBUSY, errno.ENOTEMPTY):
                        break  # a parent we made is still used by another container

                    if err.errno != errno.EBUSY or attempt == 49:
                        raise CgroupError("remove cgroup %s: %s" % (d, os.strerror(err.errno).lower())) from None
                    if attempt == 0:
                        self.kill_all(9)
                    time.sleep(0.01)
        self.made = []


# runc's default allowed devices (libcontainer/specconv AllowedDevices)
_DEFAULT_ALLOW = ("c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm",
                  "c 1:5 rwm", "c 1:9 rwm", "c 5:1 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm")


def _device_rules(rules):
    out = []
    for r in rules:
        t = r.get("type") or "a"
        major = "*" if r.get("major") is None else str(r["major"])
        minor = "*" if r.get("minor") is None else str(r["minor"])
        access = r.get("access") or "rwm"
        entry = "a" if t == "a" else "%s %s:%s %s" % (t, major, minor, access)
        out.append(("devices.allow" if r.get("allow") else "devices.deny", entry))
    out.extend(("devices.allow", rule) for rule in _DEFAULT_ALLOW)
    return out


def _write(path, name, value):
    try:
        fd = os.open(os.path.join(path, name), os.O_WRONLY | os.O_CLOEXEC)
    except OSError as err:
        raise CgroupError("open %s/%s: %s" % (path, name, os.strerror(err.errno).lower())) from None
    try:
        os.write(fd, value.encode())
    except OSError as err:
        raise CgroupError("write %r to %s/%s: %s" % (value, path, name, os.strerror(err.errno).lower())) from None
    finally:
        os.close(fd)
