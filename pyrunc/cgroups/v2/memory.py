"""v2 memory: memory.max, memory.low (reservation), memory.swap.max.

The spec's swap is memory+swap (a v1 notion); cgroup2 limits swap alone, so it is
converted as runc does (cgroups.ConvertMemorySwapToCgroupV2Value).  swappiness,
disableOOMKiller and useHierarchy have no cgroup2 file; runc ignores them, so do we.
"""
from pyrunc.cgroups.fs import CgroupError

W = "linux.resources.memory."
ENOENT = 2


def _num(v):
    return "" if v == 0 else "max" if v == -1 else str(v)


def swap_v2(swap, limit):
    if limit == -1 and swap == 0:
        return -1
    if swap in (-1, 0):
        return swap
    if limit == 0:
        raise CgroupError(W + "swap: a swap limit needs a memory limit on cgroup v2")
    if limit < 0:
        raise CgroupError(W + "limit: invalid value %d" % limit)
    if swap < limit:
        raise CgroupError(W + "swap: memory+swap (%d) must not be below the memory limit (%d)" % (swap, limit))
    return swap - limit


def set(d, mem, m, update):
    limit = mem.get("limit") or 0
    swap = mem.get("swap") or 0
    if update and mem.get("checkBeforeUpdate") and limit > 0:
        usage = d.read_int("memory.current")
        if limit <= usage:
            raise CgroupError("%slimit: rejecting memory limit %d: not above the current usage %d"
                              % (W, limit, usage))
    s = swap_v2(swap, limit)
    text = _num(s)
    if not text and s == 0 and swap > 0:
        text = "0"  # memory+swap equal to memory: no swap at all
    if text:
        try:
            d.write("memory.swap.max", text, W + "swap")
        except CgroupError as err:
            # no swap accounting in this kernel: "no limit" and "no swap" are moot
            if err.errno != ENOENT or text not in ("max", "0"):
                raise
    if limit:
        d.write("memory.max", _num(limit), W + "limit")
    if mem.get("reservation"):
        d.write("memory.low", _num(mem["reservation"]), W + "reservation")


def stats(d, out):
    mem = out["memory"]
    raw = d.read_keyed("memory.stat")
    mem["cache"] = raw.get("file", 0)
    usage = {"limit": d.read_int("memory.max"), "usage": d.read_int("memory.current"),
             "max": d.read_int("memory.peak"), "failcnt": 0}
    usage["failcnt"] = d.read_keyed("memory.events").get("max", 0)
    mem["usage"] = usage
    # v1 reports memory+swap; so does runc on v2, for compatibility
    swap = {"limit": 0, "usage": 0, "max": 0, "failcnt": 0}
    if d.exists("memory.swap.current"):
        swap["usage"] = d.read_int("memory.swap.current") + usage["usage"]
        lim = d.read_int("memory.swap.max")
        swap["limit"] = lim if lim == 18446744073709551615 else lim + usage["limit"]
    mem["swap"] = swap
    mem["raw"] = raw


def oom_kills(d):
    return d.read_keyed("memory.events").get("oom_kill", 0)
