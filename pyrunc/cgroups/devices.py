"""Device access rules: the config's list -> a default policy plus exceptions.

The same emulator serves both versions.  v1 writes the minimal transition to
devices.allow / devices.deny (v1/devices.py); v2 compiles the final state into an
eBPF program (v2/devices.py).  It reproduces the v1 kernel semantics runc's
devicesemulator encodes:
  - a rule of type "a" (or "a *:* ...") resets everything: allow -> allow all (a
    blacklist), deny -> deny all (a whitelist);
  - otherwise an allow in a whitelist adds an exception (merging permissions), a
    deny removes permissions from the exception for exactly that device; in a
    blacklist it is the other way round;
  - removing permissions that a wildcard exception grants ("deny c 1:3" after
    "allow c *:* rwm") cannot work in v1 (the kernel silently ignores it), so it is
    an error, as in runc.
The starting point is a whitelist (deny all): runc's containers get only the rules
they list, plus runc's default allow list, appended last.
"""
from pyrunc.cgroups.fs import CgroupError

W = -1  # wildcard major/minor

# runc 1.1's default rules (libcontainer/specconv AllowedDevices), appended after the
# config's own list: mknod of any device, /dev/null, random, full, tty, zero,
# urandom, the pts devices, /dev/ptmx and /dev/net/tun.  (runc 1.1.5 does not add
# linux.devices entries to the cgroup rules: observed on this host.)
DEFAULT_ALLOW = (
    ("c", W, W, "m"), ("b", W, W, "m"),
    ("c", 1, 3, "rwm"), ("c", 1, 8, "rwm"), ("c", 1, 7, "rwm"), ("c", 5, 0, "rwm"),
    ("c", 1, 5, "rwm"), ("c", 1, 9, "rwm"), ("c", 136, W, "rwm"), ("c", 5, 2, "rwm"),
    ("c", 10, 200, "rwm"),
)

_ORDER = "rwm"


def _perms(s):
    return "".join(c for c in _ORDER if c in s)


def parse(rules, label="linux.resources.devices"):
    """the config's rules -> [(allow, type, major, minor, perms)], runc's defaults last"""
    out = []
    for i, r in enumerate(rules or ()):
        where = "%s[%d]" % (label, i)
        if not isinstance(r, dict):
            raise CgroupError("%s: must be an object" % where)
        allow = r.get("allow")
        if not isinstance(allow, bool):
            raise CgroupError("%s.allow: must be true or false" % where)
        t = r.get("type") or "a"
        if t not in ("a", "b", "c"):
            raise CgroupError("%s.type: %r is not a cgroup device type (a, b or c)" % (where, t))
        nums = []
        for k in ("major", "minor"):
            v = r.get(k)
            if v is None or v == -1:
                nums.append(W)
            elif isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 32:
                nums.append(v)
            else:
                raise CgroupError("%s.%s: %r is not a device number" % (where, k, v))
        access = r.get("access")
        if access is None or access == "":
            access = "rwm"
        # as runc (devices.Permissions): letters other than r, w and m mean nothing and
        # are ignored ("rwa" is "rw"; runc's own suite uses it), but some access must remain
        if not isinstance(access, str) or not _perms(access):
            raise CgroupError("%s.access: %r is not a combination of r, w and m" % (where, access))
        out.append((allow, t, nums[0], nums[1], _perms(access)))
    out.extend((True,) + d for d in DEFAULT_ALLOW)
    return out


class Emulator:
    """default policy + exceptions {(type, major, minor): perms}"""

    __slots__ = ("default_allow", "rules")

    def __init__(self, default_allow=False, rules=None):
        self.default_allow = default_allow
        self.rules = rules if rules is not None else {}

    def __eq__(self, other):
        return self.default_allow == other.default_allow and self.rules == other.rules

    def __repr__(self):
        return "Emulator(%r, %r)" % (self.default_allow, self.rules)

    @classmethod
    def build(cls, parsed):
        e = cls()
        for allow, t, major, minor, perms in parsed:
            e.apply(allow, t, major, minor, perms)
        return e

    def apply(self, allow, t, major, minor, perms):
        if t == "a":
            # the kernel ignores the rest of an "a" line: a full reset
            self.default_allow = allow
            self.rules = {}
            return
        key = (t, major, minor)
        if allow != self.default_allow:
            self.rules[key] = _perms(self.rules.get(key, "") + perms)
            return
        # removing permissions from an exception
        for partial in ((t, W, minor), (t, major, W), (t, W, W)):
            if partial == key:
                continue
            have = self.rules.get(partial, "")
            if any(c in have for c in perms):
                raise CgroupError("linux.resources.devices: %s %s cannot be taken out of the wildcard rule %s"
                                  " (cgroup v1 would silently ignore it)"
                                  % ("allow" if allow else "deny", rule_text(t, major, minor, perms),
                                     rule_text(partial[0], partial[1], partial[2], have)))
        left = "".join(c for c in self.rules.get(key, "") if c not in perms)
        if left:
            self.rules[key] = left
        else:
            self.rules.pop(key, None)

    def sorted_rules(self):
        return sorted(self.rules.items())

    @classmethod
    def from_list(cls, text):
        """the state a v1 devices.list shows: "a *:* rwm" is allow-all (a blacklist
        whose deny exceptions the kernel does not list); anything else a whitelist"""
        e = cls()
        for line in text.split("\n"):
            f = line.split()
            if len(f) != 3:
                continue
            t, mm, perms = f
            major, _, minor = mm.partition(":")
            major = W if major == "*" else int(major)
            minor = W if minor == "*" else int(minor)
            if t == "a":
                return cls(True)
            e.rules[(t, major, minor)] = _perms(perms)
        return e

    def transition(self, target):
        """the v1 writes that turn this state into target: [(allow, rule text)].
        runc's Transition: a blacklist's deny exceptions are not listed by the kernel,
        so leaving one (or switching policy) starts with a full reset."""
        out = []
        old = self.rules
        if self.default_allow or self.default_allow != target.default_allow:
            out.append((target.default_allow, "a"))
            old = {}
        for key, perms in sorted(old.items()):
            dropped = "".join(c for c in perms if c not in target.rules.get(key, ""))
            if dropped:
                out.append((target.default_allow, rule_text(key[0], key[1], key[2], dropped)))
        for key, perms in target.sorted_rules():
            gained = "".join(c for c in perms if c not in old.get(key, ""))
            if gained:
                out.append((not target.default_allow, rule_text(key[0], key[1], key[2], gained)))
        return out


def rule_text(t, major, minor, perms):
    return "%s %s:%s %s" % (t, "*" if major == W else major, "*" if minor == W else minor, perms)
