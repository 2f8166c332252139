"""v1 hugetlb: hugetlb.<size>.limit_in_bytes (and .rsvd. when the kernel has it)."""
from pyrunc.cgroups.fs import CgroupError

W = "linux.resources.hugepageLimits"


def check_size(d, size, where, probe):
    if not isinstance(size, str) or not size or "/" in size or "." in size:
        raise CgroupError("%s.pageSize: %r is not a page size such as 2MB" % (where, size))
    if not d.exists(probe):
        raise CgroupError("%s.pageSize: %s is not a huge page size of this kernel (no %s/%s)"
                          % (where, size, d.path, probe))


def write_limits(d, limits, limit_file, rsvd_file):
    """each hugepageLimits entry into limit_file % pageSize, and into the reservation
    file rsvd_file % pageSize as well where the kernel has one (v1 and v2 differ only
    in the names)"""
    for i, hl in enumerate(limits):
        where = "%s[%d]" % (W, i)
        size = hl.get("pageSize")
        f = limit_file % size
        check_size(d, size, where, f)
        d.write(f, str(hl.get("limit") or 0), where + ".limit")
        rsvd = rsvd_file % size
        if d.exists(rsvd):
            d.write(rsvd, str(hl.get("limit") or 0), where + ".limit")


def set(d, limits, m, update):
    write_limits(d, limits, "hugetlb.%s.limit_in_bytes", "hugetlb.%s.rsvd.limit_in_bytes")


def stats(d, out, sizes):
    h = out["hugetlb"]
    for size in sizes:
        p = "hugetlb.%s." % size
        if not d.exists(p + "usage_in_bytes"):
            continue
        h[size] = {"usage": d.read_int(p + "usage_in_bytes"), "max": d.read_int(p + "max_usage_in_bytes"),
                   "failcnt": d.read_int(p + "failcnt")}
