"""v1 cpuacct: usage only (no limits)."""
from pyrunc import _os as os

_NS_PER_TICK = None


def stats(d, out):
    global _NS_PER_TICK
    u = out["cpu"]["usage"]
    u["total"] = d.read_int("cpuacct.usage")
    text = d.read_opt("cpuacct.usage_percpu")
    if text:
        u["percpu"] = [int(x) for x in text.split()]
    # "cpu user system" per cpu, in ns (Linux 4.7)
    text = d.read_opt("cpuacct.usage_all")
    if text:
        user, kernel = [], []
        for line in text.split("\n")[1:]:
            f = line.split()
            if len(f) == 3:
                user.append(int(f[1]))
                kernel.append(int(f[2]))
        u["percpu_kernel"] = kernel
        u["percpu_user"] = user
    # cpuacct.stat is in USER_HZ ticks
    if _NS_PER_TICK is None:
        _NS_PER_TICK = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    kv = d.read_keyed("cpuacct.stat")
    if "user" in kv:
        u["user"] = kv["user"] * _NS_PER_TICK
    if "system" in kv:
        u["kernel"] = kv["system"] * _NS_PER_TICK
