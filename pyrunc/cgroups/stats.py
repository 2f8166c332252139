"""`events`: cgroup statistics in runc 1.1's JSON shape, and OOM notifications.

The field names, nesting and omitted-when-zero fields are those of runc's
types/events.go as runc 1.1.5 prints them (checked against its output on this host):
structs are always present, `omitempty` numbers and lists vanish at zero.
"""
import os

from pyrunc.cgroups import fs


def _v(version, name):
    from pyrunc.cgroups import _module

    return _module(version, name)


def huge_sizes():
    """"2MB", "1GB", ... from /sys/kernel/mm/hugepages/hugepages-<kB>kB"""
    out = []
    try:
        names = os.listdir("/sys/kernel/mm/hugepages")
    except OSError:
        return out
    for n in sorted(names):
        if n.startswith("hugepages-") and n.endswith("kB"):
            kb = int(n[10:-2])
            for unit, div in (("GB", 1 << 20), ("MB", 1 << 10), ("KB", 1)):
                if kb % div == 0:
                    out.append("%d%s" % (kb // div, unit))
                    break
    return out


def collect(m):
    s = {"cpu": {"usage": {}, "throttling": {}}, "cpuset": {}, "memory": {}, "pids": {}, "blkio": {},
         "hugetlb": {}}
    fake = m.prefix
    if m.unified:
        d = m.v2.open_dir(fake)
        have = m._v2_controllers()
        for ctrl, mod in (("cpu", "cpu"), ("cpuset", "cpuset"), ("memory", "memory"), ("pids", "pids"),
                          ("io", "io")):
            if ctrl in have or ctrl == "cpu":  # cpu.stat exists without the controller
                _v(2, mod).stats(d, s)
        if "hugetlb" in have:
            _v(2, "hugetlb").stats(d, s, huge_sizes())
        return s
    for ctrl, mod in (("cpu", "cpu"), ("cpuacct", "cpuacct"), ("cpuset", "cpuset"), ("memory", "memory"),
                      ("pids", "pids"), ("blkio", "blkio")):
        h = m.by_ctrl.get(ctrl)
        if h is not None:
            _v(1, mod).stats(h.open_dir(fake), s)
    h = m.by_ctrl.get("hugetlb")
    if h is not None:
        _v(1, "hugetlb").stats(h.open_dir(fake), s, huge_sizes())
    elif m.v2 is not None and "hugetlb" in m._v2_controllers():
        _v(2, "hugetlb").stats(m.v2.open_dir(fake), s, huge_sizes())
    return s


def _mem_entry(e):
    e = e or {}
    out = {"limit": e.get("limit", 0)}
    if e.get("usage"):
        out["usage"] = e["usage"]
    if e.get("max"):
        out["max"] = e["max"]
    out["failcnt"] = e.get("failcnt", 0)
    return out


def _nonzero(d, keys):
    return {k: d[k] for k in keys if d.get(k)}


def runc_json(s):
    """collect()'s dict -> runc's types.Stats, field for field"""
    cu = s["cpu"]["usage"]
    usage = _nonzero(cu, ("total", "percpu", "percpu_kernel", "percpu_user"))
    usage["kernel"] = cu.get("kernel", 0)
    usage["user"] = cu.get("user", 0)
    cs = s["cpuset"]
    cpuset = _nonzero(cs, ("cpus",))
    cpuset["cpu_exclusive"] = cs.get("cpu_exclusive", 0)
    if cs.get("mems"):
        cpuset["mems"] = cs["mems"]
    for k in ("mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page", "memory_spread_slab",
              "memory_pressure", "sched_load_balance"):
        cpuset[k] = cs.get(k, 0)
    cpuset["sched_relax_domain_level"] = cs.get("sched_relax_domain_level", 0)
    ms = s["memory"]
    memory = _nonzero(ms, ("cache",))
    for k in ("usage", "swap", "kernel", "kernelTCP"):
        memory[k] = _mem_entry(ms.get(k))
    if ms.get("raw"):
        memory["raw"] = dict(sorted(ms["raw"].items()))
    hugetlb = {}
    for size, h in sorted(s["hugetlb"].items()):
        e = _nonzero(h, ("usage", "max"))
        e["failcnt"] = h.get("failcnt", 0)
        hugetlb[size] = e
    return {
        "cpu": {"usage": usage,
                "throttling": _nonzero(s["cpu"]["throttling"], ("periods", "throttledPeriods", "throttledTime"))},
        "cpuset": cpuset,
        "memory": memory,
        "pids": _nonzero(s["pids"], ("current", "limit")),
        "blkio": {k: [_nonzero(e, ("major", "minor", "op", "value")) for e in v] for k, v in s["blkio"].items() if v},
        "hugetlb": hugetlb,
        "intel_rdt": {},
        "network_interfaces": None,
    }


def oom_kills(m):
    """processes the kernel OOM-killed in the container so far"""
    fake = m.prefix
    h = None if m.unified else m.by_ctrl.get("memory")
    if h is not None:
        return _v(1, "memory").oom_kills(h.open_dir(fake))
    if m.v2 is not None:
        return _v(2, "memory").oom_kills(m.v2.open_dir(fake))
    return 0


class OOMWatch:
    """A pollable fd that becomes readable when the container's memory cgroup hits
    OOM.  v1: an eventfd registered through cgroup.event_control on
    memory.oom_control (the kernel also signals it when the cgroup is removed).
    v2: memory.events itself, which the kernel marks POLLPRI on every change;
    an OOM is a rise of its oom_kill counter."""

    def __init__(self, m):
        self.version = 0
        self.fd = -1
        self._ofd = -1
        self._last = 0
        self._d = None
        h = None if m.unified else m.by_ctrl.get("memory")
        if h is not None:
            d = h.open_dir(m.prefix)
            self._d = d
            self.fd = os.eventfd(0, os.EFD_CLOEXEC)
            self._ofd = os.open("memory.oom_control", fs.O_RD, dir_fd=d.fd)
            d.write("cgroup.event_control", "%d %d" % (self.fd, self._ofd), "events: oom notification")
            self.version = 1
        elif m.v2 is not None:
            d = m.v2.open_dir(m.prefix)
            self._d = d
            try:
                self.fd = os.open("memory.events", fs.O_RD, dir_fd=d.fd)
            except OSError:
                return
            self.version = 2
            self._last = self._oom_kill()

    def _oom_kill(self):
        os.lseek(self.fd, 0, 0)
        return fs.parse_keyed(os.read(self.fd, 4096).decode()).get("oom_kill", 0)

    @property
    def events(self):
        import select

        return select.POLLIN if self.version == 1 else select.POLLPRI

    def read(self):
        """number of new OOM events since the last call"""
        if self.version == 1:
            try:
                n = os.eventfd_read(self.fd)
            except BlockingIOError:
                return 0
            # the eventfd also fires when the cgroup goes away
            return n if self._d.exists("memory.oom_control") else 0
        if self.version == 2:
            cur = self._oom_kill()
            n = cur - self._last
            self._last = cur
            return max(n, 0)
        return 0

    def close(self):
        for fd in (self.fd, self._ofd):
            if fd >= 0:
                os.close(fd)
        self.fd = self._ofd = -1
