"""v1 net_prio: per-interface priorities."""
from pyrunc.cgroups.fs import CgroupError

W = "linux.resources.network.priorities"


def set(d, net, m, update):
    for i, p in enumerate(net["priorities"]):
        name = p.get("name") if isinstance(p, dict) else None
        if not isinstance(name, str) or not name or " " in name:
            raise CgroupError("%s[%d].name: must be an interface name" % (W, i))
        d.write("net_prio.ifpriomap", "%s %d" % (name, p.get("priority") or 0), "%s[%d]" % (W, i))
