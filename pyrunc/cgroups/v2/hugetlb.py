"""v2 hugetlb: hugetlb.<size>.max (and .rsvd.max when the kernel has it)."""
from pyrunc.cgroups.v1.hugetlb import write_limits


def set(d, limits, m, update):
    write_limits(d, limits, "hugetlb.%s.max", "hugetlb.%s.rsvd.max")


def stats(d, out, sizes):
    h = out["hugetlb"]
    for size in sizes:
        p = "hugetlb.%s." % size
        if not d.exists(p + "current"):
            continue
        h[size] = {"usage": d.read_int(p + "current"),
                   "failcnt": d.read_keyed(p + "events").get("max", 0)}
