"""v2 cpu: cpu.weight (from shares), cpu.max (quota and period), cpu.max.burst,
cpu.idle.  cgroup2 has no realtime budget: asking for one is an error."""
from pyrunc.cgroups.fs import CgroupError

W = "linux.resources.cpu."
EINVAL = 22


def shares_to_weight(shares):
    """runc 1.1's linear map of v1 shares [2, 262144] onto cgroup2 weight [1, 10000]
    (cgroups.ConvertCPUSharesToCgroupV2Value; 2 -> 1, 1024 -> 39, 262144 -> 10000)"""
    if not shares:
        return 0
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def set(d, cpu, m, update):
    if cpu.get("realtimeRuntime") or cpu.get("realtimePeriod"):
        raise CgroupError(W + "realtimeRuntime: cgroup v2 has no realtime budget (cpu.rt_runtime_us is v1 only)")
    w = shares_to_weight(cpu.get("shares") or 0)
    if w:
        d.write("cpu.weight", str(w), W + "shares")
    idle = cpu.get("idle")
    if idle is not None:
        d.write("cpu.idle", str(idle), W + "idle")
    quota = cpu.get("quota") or 0
    period = cpu.get("period") or 0
    burst = cpu.get("burst")
    retry = False
    if burst is not None:
        try:
            d.write("cpu.max.burst", str(burst), W + "burst")
        except CgroupError as err:
            # a burst above the old quota is refused; written again after cpu.max
            if err.errno != EINVAL or not quota:
                raise
            retry = True
    if quota or period:
        text = str(quota) if quota > 0 else "max"
        if period:
            text += " %d" % period
        d.write("cpu.max", text, W + ("quota" if quota else "period"))
        if retry:
            d.write("cpu.max.burst", str(burst), W + "burst")


def stats(d, out):
    u = out["cpu"]["usage"]
    t = out["cpu"]["throttling"]
    kv = d.read_keyed("cpu.stat")
    # microseconds on v2, nanoseconds in runc's stats
    for key, dest, name, scale in (("usage_usec", u, "total", 1000), ("user_usec", u, "user", 1000),
                                   ("system_usec", u, "kernel", 1000), ("nr_periods", t, "periods", 1),
                                   ("nr_throttled", t, "throttledPeriods", 1),
                                   ("throttled_usec", t, "throttledTime", 1000)):
        if key in kv:
            dest[name] = kv[key] * scale
