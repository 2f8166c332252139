"""--systemd-cgroup: cgroups through systemd (transient scope units over D-Bus).

Only the path syntax is handled here; talking to systemd is not implemented, and this
host runs no systemd.  A config is checked (runc's "slice:prefix:name" format, the
slice name rules), then create fails with one line that says what is missing, before
anything is made.
"""
import os

from pyrunc.cgroups.fs import CgroupError

_BUS = ("/run/systemd/private", "/run/dbus/system_bus_socket")


def parse_path(cgroups_path, container_id):
    """(slice, prefix, name) as runc reads them; runc's defaults: system.slice,
    "runc" (pyrunc here: ours), the container id"""
    if not cgroups_path:
        return "system.slice", "pyrunc", container_id
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise CgroupError('linux.cgroupsPath: expected "slice:prefix:name" for systemd cgroups, got %r'
                          % cgroups_path)
    slice_, prefix, name = parts
    if slice_ and (not slice_.endswith(".slice") or "/" in slice_):
        raise CgroupError("linux.cgroupsPath: %r is not a systemd slice name (name.slice)" % slice_)
    if "/" in prefix or "/" in name:
        raise CgroupError("linux.cgroupsPath: %r: prefix and name must not contain /" % cgroups_path)
    return slice_ or "system.slice", prefix, name or container_id


def unit_name(prefix, name):
    # runc: a name already ending in .slice is a slice; otherwise prefix-name.scope
    if name.endswith(".slice"):
        return name
    return "%s-%s.scope" % (prefix, name) if prefix else name + ".scope"


def create_manager(cgroups_path, container_id, prefix=""):
    slice_, pfx, name = parse_path(cgroups_path, container_id)
    unit = unit_name(pfx, name)
    for sock in _BUS:
        if os.path.exists(prefix + sock):
            raise CgroupError("systemd cgroup driver: %s in %s: talking to systemd over D-Bus is not implemented"
                              " in pyrunc; run without --systemd-cgroup" % (unit, slice_))
    raise CgroupError("systemd cgroup driver: cannot create %s in %s: no systemd is reachable on this host"
                      " (no %s); run without --systemd-cgroup" % (unit, slice_, " or ".join(_BUS)))


def load_manager(state):
    raise CgroupError("systemd cgroup driver: this container's cgroups are managed by systemd, "
                      "which pyrunc cannot reach")
