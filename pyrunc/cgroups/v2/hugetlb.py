"""v2 hugetlb: hugetlb.<size>.max (and .rsvd.max when the kernel has it)."""
from pyrunc.cgroups.v1.hugetlb import W, check_size


def set(d, limits, m, update):
    for i, hl in enumerate(limits):
        where = "%s[%d]" % (W, i)
        size = hl.get("pageSize")
        f = "hugetlb.%s.max" % size
        check_size(d, size, where, f)
        d.write(f, str(hl.get("limit") or 0), where + ".limit")
        rsvd = "hugetlb.%s.rsvd.max" % size
        if d.exists(rsvd):
            d.write(rsvd, str(hl.get("limit") or 0), where + ".limit")


def stats(d, out, sizes):
    h = out["hugetlb"]
    for size in sizes:
        p = "hugetlb.%s." % size
        if not d.exists(p + "current"):
            continue
        failcnt = 0
        for line in (d.read_opt(p + "events") or "").split("\n"):
            k, _, v = line.partition(" ")
            if k == "max":
                failcnt = int(v)
        h[size] = {"usage": d.read_int(p + "current"), "failcnt": failcnt}
