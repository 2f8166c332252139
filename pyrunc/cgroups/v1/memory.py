"""v1 memory: limit, reservation (soft limit), swap (memory+swap), kernel and
kernelTCP, swappiness, the OOM killer switch, use_hierarchy; checkBeforeUpdate."""
from pyrunc.cgroups.fs import CgroupError

W = "linux.resources.memory."
EBUSY = 16


def _limit(d, value):
    try:
        d.write("memory.limit_in_bytes", str(value), W + "limit")
    except CgroupError as err:
        if err.errno != EBUSY:
            raise
        # the kernel could not reclaim down to the new limit
        raise CgroupError("%slimit: cannot set the memory limit to %d in %s: current usage %d, peak usage %d"
                          % (W, value, d.path, d.read_int("memory.usage_in_bytes"),
                             d.read_int("memory.max_usage_in_bytes")), EBUSY) from None


def set(d, mem, m, update):
    limit = mem.get("limit") or 0
    swap = mem.get("swap") or 0
    if update and mem.get("checkBeforeUpdate") and limit > 0:
        usage = d.read_int("memory.usage_in_bytes")
        if limit <= usage:
            raise CgroupError("%slimit: rejecting memory limit %d: not above the current usage %d"
                              % (W, limit, usage))
    if limit == -1 and not swap and d.exists("memory.memsw.limit_in_bytes"):
        # unlimited memory with swap unset means unlimited swap too (runc)
        swap = -1
    # memory.memsw.limit_in_bytes must stay >= memory.limit_in_bytes at every step:
    # raising both, swap goes first; lowering, memory goes first.  A fresh cgroup is
    # unlimited, so memory first is always right at create.
    swap_first = False
    if limit and swap:
        if swap == -1:
            swap_first = True
        elif update:
            swap_first = d.read_int("memory.limit_in_bytes") < swap
    if swap_first:
        d.write("memory.memsw.limit_in_bytes", str(swap), W + "swap")
    if limit:
        _limit(d, limit)
    if swap and not swap_first:
        d.write("memory.memsw.limit_in_bytes", str(swap), W + "swap")
    kernel = mem.get("kernel") or 0
    if kernel and d.exists("memory.kmem.limit_in_bytes"):
        # deprecated since Linux 5.4 and ignored by 6.x kernels; runc 1.1 drops it
        # altogether, we write it where the kernel still has the file
        d.write("memory.kmem.limit_in_bytes", str(kernel), W + "kernel")
    tcp = mem.get("kernelTCP") or 0
    if tcp:
        d.write("memory.kmem.tcp.limit_in_bytes", str(tcp), W + "kernelTCP")
    if mem.get("reservation"):
        d.write("memory.soft_limit_in_bytes", str(mem["reservation"]), W + "reservation")
    if mem.get("disableOOMKiller"):
        d.write("memory.oom_control", "1", W + "disableOOMKiller")
    sw = mem.get("swappiness")
    if sw is not None and sw != -1:
        if not isinstance(sw, int) or not 0 <= sw <= 100:
            raise CgroupError("%sswappiness: invalid value %r (valid range is 0-100)" % (W, sw))
        d.write("memory.swappiness", str(sw), W + "swappiness")
    uh = mem.get("useHierarchy")
    if uh is not None:
        d.write("memory.use_hierarchy", "1" if uh else "0", W + "useHierarchy")


def _entry(d, prefix):
    return {"limit": d.read_int(prefix + "limit_in_bytes"), "usage": d.read_int(prefix + "usage_in_bytes"),
            "max": d.read_int(prefix + "max_usage_in_bytes"), "failcnt": d.read_int(prefix + "failcnt")}


def stats(d, out):
    mem = out["memory"]
    raw = d.read_keyed("memory.stat")
    mem["cache"] = raw.get("cache", 0)
    mem["usage"] = _entry(d, "memory.")
    mem["swap"] = _entry(d, "memory.memsw.")
    mem["kernel"] = _entry(d, "memory.kmem.")
    mem["kernelTCP"] = _entry(d, "memory.kmem.tcp.")
    mem["raw"] = raw


def oom_kills(d):
    return d.read_keyed("memory.oom_control").get("oom_kill", 0)
