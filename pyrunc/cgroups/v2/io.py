"""v2 io: weights (io.bfq.weight when BFQ is there, else io.weight with runc's
conversion from the blkio range) and io.max throttling."""
from pyrunc.cgroups.fs import CgroupError
from pyrunc.cgroups.v1.blkio import dev

W = "linux.resources.blockIO."
_MAX = (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
        ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops"))


def blkio_to_io_weight(w):
    """runc's cgroups.ConvertBlkIOToIOWeightValue: [10, 1000] -> [1, 10000]"""
    return 1 + (w - 10) * 9999 // 990 if w else 0


def set(d, bio, m, update):
    bfq = (bio.get("weight") or bio.get("weightDevice")) and d.exists("io.bfq.weight")
    if bio.get("weight"):
        if bfq:
            d.write("io.bfq.weight", str(bio["weight"]), W + "weight")
        else:
            d.write("io.weight", str(blkio_to_io_weight(bio["weight"])), W + "weight")
    for i, wd in enumerate(bio.get("weightDevice") or ()):
        where = "%sweightDevice[%d]" % (W, i)
        dv = dev(wd, where)
        if wd.get("leafWeight"):
            raise CgroupError(where + ".leafWeight: cgroup v2 has no leaf weights")
        if wd.get("weight"):
            if bfq:
                d.write("io.bfq.weight", "%s %d" % (dv, wd["weight"]), where + ".weight")
            else:
                d.write("io.weight", "%s %d" % (dv, blkio_to_io_weight(wd["weight"])), where + ".weight")
    for key, name in _MAX:
        for i, td in enumerate(bio.get(key) or ()):
            where = "%s%s[%d]" % (W, key, i)
            d.write("io.max", "%s %s=%d" % (dev(td, where), name, td.get("rate") or 0), where)


_OPS = {"rbytes": ("ioServiceBytesRecursive", "Read"), "wbytes": ("ioServiceBytesRecursive", "Write"),
        "rios": ("ioServicedRecursive", "Read"), "wios": ("ioServicedRecursive", "Write")}


def stats(d, out):
    b = out["blkio"]
    for line in (d.read_opt("io.stat") or "").split("\n"):
        f = line.split()
        if len(f) < 2 or ":" not in f[0]:
            continue
        major, _, minor = f[0].partition(":")
        for item in f[1:]:
            k, _, v = item.partition("=")
            target = _OPS.get(k)
            if target:
                b.setdefault(target[0], []).append({"major": int(major), "minor": int(minor),
                                                    "op": target[1], "value": int(v)})
