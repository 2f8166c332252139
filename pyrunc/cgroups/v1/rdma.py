"""rdma (same file format in v1 and v2): rdma.max, one line per device."""
from pyrunc.cgroups.fs import CgroupError

W = "linux.resources.rdma"


def set(d, rdma, m, update):
    for dev in sorted(rdma):
        lim = rdma[dev] or {}
        if not dev or " " in dev or "/" in dev:
            raise CgroupError("%s: %r is not a device name" % (W, dev))
        line = dev
        if lim.get("hcaHandles") is not None:
            line += " hca_handle=%d" % lim["hcaHandles"]
        if lim.get("hcaObjects") is not None:
            line += " hca_object=%d" % lim["hcaObjects"]
        d.write("rdma.max", line, "%s[%s]" % (W, dev))
