"""v1 devices: devices.allow / devices.deny.

On a cgroup create() just made, whatever it inherited from its parent is replaced:
a reset ("a" to devices.deny or devices.allow) and the exceptions, each allow line
written through one open file.  On an existing cgroup (update, or a cgroup joined)
the minimal transition is computed from devices.list (runc's emulator), so running
processes never see a transient "deny all", and the result is checked against
devices.list afterwards.
"""
from pyrunc.cgroups import devices as _dev
from pyrunc.cgroups.fs import CgroupError

W = "linux.resources.devices"


def set(d, rules, m, update):
    target = _dev.Emulator.build(_dev.parse(rules))
    if update:
        current = _dev.Emulator.from_list(d.read("devices.list", W))
        steps = current.transition(target)
    else:
        steps = _dev.Emulator(True).transition(target)
    i = 0
    while i < len(steps):
        allow = steps[i][0]
        j = i
        while j < len(steps) and steps[j][0] == allow:
            j += 1
        d.write_lines("devices.allow" if allow else "devices.deny", [s[1] for s in steps[i:j]], W)
        i = j
    if update and not d.fake:
        after = _dev.Emulator.from_list(d.read("devices.list", W))
        if after.default_allow != target.default_allow or (not target.default_allow and after != target):
            raise CgroupError("%s: %s/devices.list does not match the rules after writing them" % (W, d.path))
    m.device_program = None
