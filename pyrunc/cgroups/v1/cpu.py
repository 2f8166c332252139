"""v1 cpu: shares, CFS quota/period/burst, realtime budget, idle."""
from pyrunc.cgroups.fs import CgroupError

W = "linux.resources.cpu."
EINVAL = 22


def _pair(d, first, first_val, second, second_val, what_first, what_second):
    """Write first (a period), then second (its quota): the kernel may refuse a new
    period against the old quota (EINVAL: old quota / new period above the parent's
    share); then it is written again once the quota is in (runc does the same)."""
    retry = False
    if first_val:
        try:
            d.write(first, str(first_val), W + what_first)
        except CgroupError as err:
            if err.errno != EINVAL or not second_val:
                raise
            retry = True
    if second_val:
        d.write(second, str(second_val), W + what_second)
        if retry:
            d.write(first, str(first_val), W + what_first)


def set(d, cpu, m, update):
    shares = cpu.get("shares") or 0
    if shares:
        # the kernel clamps silently to [2, 262144]; runc reads the value back and
        # refuses what was clamped
        if shares < 2:
            raise CgroupError(W + "shares: %d is below the minimum allowed cpu-shares, 2" % shares)
        if shares > 262144:
            raise CgroupError(W + "shares: %d is above the maximum allowed cpu-shares, 262144" % shares)
        d.write("cpu.shares", str(shares), W + "shares")
    _pair(d, "cpu.cfs_period_us", cpu.get("period") or 0, "cpu.cfs_quota_us", cpu.get("quota") or 0,
          "period", "quota")
    burst = cpu.get("burst")
    if burst is not None:
        d.write("cpu.cfs_burst_us", str(burst), W + "burst")
    idle = cpu.get("idle")
    if idle is not None:
        d.write("cpu.idle", str(idle), W + "idle")
    _pair(d, "cpu.rt_period_us", cpu.get("realtimePeriod") or 0, "cpu.rt_runtime_us",
          cpu.get("realtimeRuntime") or 0, "realtimePeriod", "realtimeRuntime")


def stats(d, out):
    t = out["cpu"]["throttling"]
    kv = d.read_keyed("cpu.stat")
    for key, name in (("nr_periods", "periods"), ("nr_throttled", "throttledPeriods"),
                      ("throttled_time", "throttledTime")):
        if key in kv:
            t[name] = kv[key]
