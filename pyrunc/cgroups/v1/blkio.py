"""v1 blkio: weight (BFQ's blkio.bfq.weight when present, as runc), leaf weight,
per-device weights and throttling."""
from pyrunc.cgroups.fs import CgroupError

W = "linux.resources.blockIO."
_THROTTLE = (("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
             ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
             ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
             ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device"))


def dev(entry, where):
    try:
        major, minor = entry["major"], entry["minor"]
    except (TypeError, KeyError):
        raise CgroupError("%s: major and minor are required" % where) from None
    if not isinstance(major, int) or not isinstance(minor, int) or major < 0 or minor < 0:
        raise CgroupError("%s: major and minor must be device numbers" % where)
    return "%d:%d" % (major, minor)


def set(d, bio, m, update):
    weight_file, device_file = "blkio.weight", "blkio.weight_device"
    if (bio.get("weight") or bio.get("weightDevice")) and d.exists("blkio.bfq.weight"):
        # CFQ is gone since Linux 5.0; BFQ's files take the same values
        weight_file, device_file = "blkio.bfq.weight", "blkio.bfq.weight_device"
    if bio.get("weight"):
        d.write(weight_file, str(bio["weight"]), W + "weight")
    if bio.get("leafWeight"):
        d.write("blkio.leaf_weight", str(bio["leafWeight"]), W + "leafWeight")
    for i, wd in enumerate(bio.get("weightDevice") or ()):
        where = "%sweightDevice[%d]" % (W, i)
        dv = dev(wd, where)
        if wd.get("weight"):
            d.write(device_file, "%s %d" % (dv, wd["weight"]), where + ".weight")
        if wd.get("leafWeight"):
            d.write("blkio.leaf_weight_device", "%s %d" % (dv, wd["leafWeight"]), where + ".leafWeight")
    for key, fname in _THROTTLE:
        for i, td in enumerate(bio.get(key) or ()):
            where = "%s%s[%d]" % (W, key, i)
            d.write(fname, "%s %d" % (dev(td, where), td.get("rate") or 0), where)


# events: runc's field name -> the recursive files, BFQ first, then CFQ, then throttle
_STATS = (("ioServiceBytesRecursive", "io_service_bytes_recursive"),
          ("ioServicedRecursive", "io_serviced_recursive"),
          ("ioQueueRecursive", "io_queued_recursive"),
          ("ioServiceTimeRecursive", "io_service_time_recursive"),
          ("ioWaitTimeRecursive", "io_wait_time_recursive"),
          ("ioMergedRecursive", "io_merged_recursive"),
          ("ioTimeRecursive", "time_recursive"),
          ("sectorsRecursive", "sectors_recursive"))


def _entries(text):
    out = []
    for line in text.split("\n"):
        f = line.split()
        if len(f) < 2 or ":" not in f[0]:
            continue
        major, _, minor = f[0].partition(":")
        e = {"major": int(major), "minor": int(minor)}
        if len(f) == 3:
            e["op"] = f[1]
            e["value"] = int(f[2])
        else:
            e["value"] = int(f[1])
        out.append(e)
    return out


def stats(d, out):
    b = out["blkio"]
    for prefix in ("blkio.bfq.", "blkio."):
        text = d.read_opt(prefix + "io_service_bytes_recursive")
        if text is not None:
            for name, f in _STATS:
                t = d.read_opt(prefix + f)
                if t:
                    b[name] = _entries(t)
            if b:
                return
    for name, f in (("ioServiceBytesRecursive", "io_service_bytes_recursive"),
                    ("ioServicedRecursive", "io_serviced_recursive")):
        t = d.read_opt("blkio.throttle." + f)
        if t:
            b[name] = _entries(t)
