"""config.json -> a typed, checked model, parsed once.

Only what create needs is converted; `linux.resources` and `linux.seccomp` stay raw
dicts for the cgroup and seccomp modules, which own their validation.  Every error
names the file and the JSON path: `config.json: process.args: must be a non-empty
array`.  No dataclasses (they import `re` and `inspect`): plain classes with __slots__.
"""
from pyrunc import _os as os

from pyrunc import jsonfast
from pyrunc.errors import ConfigError
from pyrunc.tables import CAPABILITIES, NAMESPACES, RLIMITS

CONFIG = "config.json"


def _err(path, msg):
    return ConfigError("%s: %s: %s" % (CONFIG, path, msg))


# Warnings about the config wait until the command has succeeded (flush_warnings):
# a create that then fails prints exactly one line, its error, not a warning first.
_PENDING = []


def _warn(msg):
    _PENDING.append(msg)


def flush_warnings():
    if _PENDING:
        from pyrunc import log as _log

        for msg in _PENDING:
            _log.get().warn(msg)
        del _PENDING[:]


def _quote(text):
    """a config string in a message: one line, printable"""
    if text.isprintable() and text:
        return text
    return repr(text)


def _obj(d, key, path, required=False):
    v = d.get(key)
    if v is None:
        if required:
            raise _err(path + key, "is required")
        return {}
    if not isinstance(v, dict):
        raise _err(path + key, "must be an object")
    return v


def _str(d, key, path, required=False, default=None):
    v = d.get(key)
    if v is None:
        if required:
            raise _err(path + key, "is required")
        return default
    if not isinstance(v, str):
        raise _err(path + key, "must be a string")
    return v


def _bool(d, key, path):
    v = d.get(key, False)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise _err(path + key, "must be a boolean")
    return v


def _int(d, key, path, default=None, lo=None, hi=None):
    v = d.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int):
        raise _err(path + key, "must be an integer")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise _err(path + key, "out of range")
    return v


def _strlist(d, key, path):
    v = d.get(key)
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _err(path + key, "must be an array of strings")
    return v


def _list(d, key, path):
    v = d.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise _err(path + key, "must be an array")
    return v


class Mount:
    __slots__ = ("destination", "type", "source", "options", "uid_mappings", "gid_mappings")

    def __init__(self, destination, type, source, options, uid_mappings=None, gid_mappings=None):
        self.destination = destination
        self.type = type
        self.source = source
        self.options = options
        self.uid_mappings = uid_mappings  # lists of IdMap for an idmapped mount, or None
        self.gid_mappings = gid_mappings


class Hook:
    __slots__ = ("path", "args", "env", "timeout")

    def __init__(self, path, args, env, timeout):
        self.path = path
        self.args = args
        self.env = env
        self.timeout = timeout


class Process:
    __slots__ = ("terminal", "console_size", "uid", "gid", "umask", "additional_gids", "args",
                 "env", "cwd", "caps", "rlimits", "no_new_privileges", "oom_score_adj",
                 "apparmor_profile", "selinux_label", "ioprio", "sched")


class IdMap:
    __slots__ = ("container_id", "host_id", "size")

    def __init__(self, container_id, host_id, size):
        self.container_id = container_id
        self.host_id = host_id
        self.size = size


class Device:
    __slots__ = ("path", "type", "major", "minor", "file_mode", "uid", "gid")


class Spec:
    __slots__ = ("raw", "bundle", "oci_version", "root_path", "root_readonly", "process",
                 "hostname", "domainname", "mounts", "hooks", "annotations", "namespaces",
                 "uid_mappings", "gid_mappings", "time_offsets", "devices", "cgroups_path",
                 "resources", "rootfs_propagation", "masked_paths", "readonly_paths", "sysctl",
                 "seccomp", "personality", "has_linux", "mount_label")


def load(bundle):
    """Read and check <bundle>/config.json; `bundle` must be absolute."""
    path = os.join(bundle, CONFIG)
    # a directory fails as with open() (EISDIR, from the read rather than the open)
    try:
        data = os.read_file(path)
    except FileNotFoundError:
        if not os.isdir(bundle):
            raise ConfigError("bundle %s: no such directory" % bundle) from None
        raise ConfigError("JSON specification file %s not found in bundle %s" % (CONFIG, bundle)) from None
    except OSError as err:
        raise ConfigError("read %s: %s" % (path, os.strerror(err.errno).lower())) from None
    try:
        raw = jsonfast.loads(data)
    except jsonfast.JSONError as err:
        raise ConfigError("%s: invalid JSON: %s" % (CONFIG, err)) from None
    if not isinstance(raw, dict):
        raise ConfigError("%s: must be a JSON object" % CONFIG)
    # a NUL or a lone surrogate can only come from a \u escape (strict JSON refuses raw
    # control characters, and UTF-8 cannot carry a surrogate): most configs have none,
    # and skip the walk over every string
    return parse(raw, bundle, check_text=b"\\u" in data)


def parse(raw, bundle, check_text=True):
    if check_text:
        check_strings(raw)
    s = Spec()
    s.raw = raw
    s.bundle = bundle
    s.oci_version = _str(raw, "ociVersion", "", required=True)

    root = _obj(raw, "root", "", required=True)
    rp = _str(root, "path", "root.", required=True)
    if not rp:
        raise _err("root.path", "must not be empty")
    s.root_path = os.normpath(os.join(bundle, rp))
    s.root_readonly = _bool(root, "readonly", "root.")

    s.process = _process(raw)
    s.hostname = _str(raw, "hostname", "")
    s.domainname = _str(raw, "domainname", "")
    s.annotations = _obj(raw, "annotations", "")
    for k, v in s.annotations.items():
        if not isinstance(v, str):
            raise _err("annotations." + k, "must be a string")

    s.mounts = []
    for i, m in enumerate(_list(raw, "mounts", "")):
        p = "mounts[%d]." % i
        if not isinstance(m, dict):
            raise _err("mounts[%d]" % i, "must be an object")
        dest = _str(m, "destination", p, required=True)
        if not dest.startswith("/"):
            # runc accepts relative destinations (relative to /) with a warning
            dest = "/" + dest
        uids = _idmaps(m, "uidMappings", p) if "uidMappings" in m else None
        gids = _idmaps(m, "gidMappings", p) if "gidMappings" in m else None
        if (uids is None) != (gids is None):
            raise _err(p[:-1], "an idmapped mount needs both uidMappings and gidMappings")
        s.mounts.append(Mount(os.normpath(dest), _str(m, "type", p), _str(m, "source", p),
                              _strlist(m, "options", p), uids, gids))

    s.hooks = {}
    hooks = _obj(raw, "hooks", "")
    for phase in ("prestart", "createRuntime", "createContainer", "startContainer",
                  "poststart", "poststop"):
        lst = []
        for i, h in enumerate(_list(hooks, phase, "hooks.")):
            p = "hooks.%s[%d]." % (phase, i)
            if not isinstance(h, dict):
                raise _err(p[:-1], "must be an object")
            hp = _str(h, "path", p, required=True)
            if not hp.startswith("/"):
                raise _err(p + "path", "must be an absolute path")
            timeout = _int(h, "timeout", p, None, None, 2 ** 31 - 1)
            if timeout is not None and timeout <= 0:
                raise _err(p + "timeout", "must be positive")
            lst.append(Hook(hp, _strlist(h, "args", p), _strlist(h, "env", p), timeout))
        if lst:
            s.hooks[phase] = lst

    linux = raw.get("linux")
    s.has_linux = linux is not None
    linux = _obj(raw, "linux", "")
    s.namespaces = {}
    for i, ns in enumerate(_list(linux, "namespaces", "linux.")):
        p = "linux.namespaces[%d]." % i
        if not isinstance(ns, dict):
            raise _err(p[:-1], "must be an object")
        t = _str(ns, "type", p, required=True)
        if t not in NAMESPACES:
            raise _err(p + "type", 'unknown namespace type "%s"' % t)
        if t in s.namespaces:
            raise _err(p + "type", 'namespace "%s" listed twice' % t)
        s.namespaces[t] = _str(ns, "path", p) or None
    s.uid_mappings = _idmaps(linux, "uidMappings")
    s.gid_mappings = _idmaps(linux, "gidMappings")
    if (s.uid_mappings or s.gid_mappings) and "user" not in s.namespaces:
        raise _err("linux.uidMappings", "user namespace mappings need a user namespace")
    s.time_offsets = _obj(linux, "timeOffsets", "linux.")
    check_time_offsets(s.time_offsets)
    if s.time_offsets and "time" not in s.namespaces:
        raise _err("linux.timeOffsets", "time offsets need a time namespace")
    s.devices = _devices(linux)
    s.cgroups_path = _str(linux, "cgroupsPath", "linux.") or None
    s.resources = _obj(linux, "resources", "linux.")
    check_resources(s.resources)
    s.rootfs_propagation = _str(linux, "rootfsPropagation", "linux.") or None
    s.mount_label = _str(linux, "mountLabel", "linux.") or None
    s.masked_paths = _strlist(linux, "maskedPaths", "linux.")
    s.readonly_paths = _strlist(linux, "readonlyPaths", "linux.")
    s.sysctl = _obj(linux, "sysctl", "linux.")
    for k, v in s.sysctl.items():
        if not isinstance(v, str):
            raise _err("linux.sysctl." + k, "must be a string")
    _check_host_settings(s)
    s.seccomp = linux.get("seccomp") or None
    if s.seccomp is not None and not isinstance(s.seccomp, dict):
        raise _err("linux.seccomp", "must be an object")
    s.personality = _obj(linux, "personality", "linux.") or None
    return s


# sysctls of the ipc namespace (runc's list), besides fs.mqueue.*
_IPC_SYSCTLS = frozenset(("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                          "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"))


def sysctl_dotted(key):
    """sysctl(8) accepts "a/b/c.d" for "a.b.c/d": a key whose first separator is '/'
    has '.' and '/' swapped (runc does the same before checking it)"""
    for c in key:
        if c == "/":
            return key.translate(_SWAP)
        if c == ".":
            break
    return key


_SWAP = str.maketrans("./", "/.")


def sysctl_path(dotted):
    """the file under /proc/sys of a dotted key"""
    return dotted.translate(_SWAP)


def _check_host_settings(s):
    """Refuse what would change the host instead of the container (runc's validator):
    hostname/domainname without a private uts namespace, and sysctls that are not
    isolated by a namespace the container has of its own.  Before anything is created."""
    ns = s.namespaces
    if "uts" not in ns:
        if s.hostname:
            raise _err("hostname", "unable to set hostname without a private UTS namespace")
        if s.domainname:
            raise _err("domainname", "unable to set domainname without a private UTS namespace")
    hostnet = None
    for key in s.sysctl:
        k = sysctl_dotted(key)
        where = 'linux.sysctl["%s"]' % key
        if any(part in ("", ".", "..") for part in sysctl_path(k).split("/")):
            raise _err(where, "not a sysctl name")
        if k in _IPC_SYSCTLS or k.startswith("fs.mqueue."):
            if "ipc" in ns:
                continue
            raise _err(where, 'sysctl "%s" is not allowed in the hosts ipc namespace' % k)
        if k.startswith("net."):
            if hostnet is None:
                hostnet = _is_host_netns(ns)
            if hostnet:
                raise _err(where, 'sysctl "%s" not allowed in host network namespace' % k)
            continue
        if "uts" in ns and k in ("kernel.domainname", "kernel.hostname"):
            continue
        raise _err(where, 'sysctl "%s" is not in a separate kernel namespace' % k)


def _is_host_netns(ns):
    """no network namespace, or a path naming our own ("host" is the caller's, as runc)"""
    if "network" not in ns:
        return True
    path = ns["network"]
    if not path:
        return False
    try:
        a, b = os.stat("/proc/self/ns/net"), os.stat(path)
    except OSError as err:
        raise _err("linux.namespaces", "invalid netns path: stat %s: %s"
                   % (err.filename, os.strerror(err.errno).lower())) from None
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _process(raw):
    proc = raw.get("process")
    if proc is None:
        # runc: create needs a process; only `spec` output may lack one
        raise _err("process", "is required (process property must not be empty)")
    if not isinstance(proc, dict):
        raise _err("process", "must be an object")
    p = Process()
    p.terminal = _bool(proc, "terminal", "process.")
    cs = _obj(proc, "consoleSize", "process.")
    # struct winsize: unsigned short
    p.console_size = (_int(cs, "height", "process.consoleSize.", 0, 0, 0xFFFF),
                      _int(cs, "width", "process.consoleSize.", 0, 0, 0xFFFF)) if cs else None
    user = _obj(proc, "user", "process.")
    p.uid = _int(user, "uid", "process.user.", 0, 0, 0xFFFFFFFE)
    p.gid = _int(user, "gid", "process.user.", 0, 0, 0xFFFFFFFE)
    p.umask = _int(user, "umask", "process.user.", None, 0, 0o7777)
    gids = _list(user, "additionalGids", "process.user.")
    for g in gids:
        if isinstance(g, bool) or not isinstance(g, int) or not 0 <= g <= 0xFFFFFFFE:
            raise _err("process.user.additionalGids", "must be an array of ids")
    p.additional_gids = gids
    args = proc.get("args")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        raise _err("process.args", "must be a non-empty array of strings")
    if not args[0]:
        raise _err("process.args[0]", "must not be empty")
    p.args = args
    p.env = _strlist(proc, "env", "process.")
    p.cwd = _str(proc, "cwd", "process.", required=True)
    if not p.cwd.startswith("/"):
        raise _err("process.cwd", "must be an absolute path")
    caps = _obj(proc, "capabilities", "process.")
    p.caps = {}
    for kind in ("bounding", "effective", "inheritable", "permitted", "ambient"):
        mask = 0
        for name in _strlist(caps, kind, "process.capabilities."):
            num = CAPABILITIES.get(name)
            if num is None:
                num = CAPABILITIES.get("CAP_" + name.upper())
            if num is None:
                # runtime-spec (config.md, capabilities): a value that cannot be mapped
                # or granted MUST be logged as a warning, and the runtime SHOULD NOT
                # fail; runc does the same.  (runtime-tools' process_capabilities_fail
                # still expects a failure: it predates that wording.)
                _warn("%s: process.capabilities.%s: unknown capability %s ignored"
                      % (CONFIG, kind, _quote(name)))
                continue
            mask |= 1 << num
        p.caps[kind] = mask
    p.rlimits = []
    seen = set()
    for i, rl in enumerate(_list(proc, "rlimits", "process.")):
        path = "process.rlimits[%d]." % i
        if not isinstance(rl, dict):
            raise _err(path[:-1], "must be an object")
        t = _str(rl, "type", path, required=True)
        if t not in RLIMITS:
            raise _err(path + "type", 'unknown rlimit "%s"' % t)
        if t in seen:
            raise _err(path + "type", 'rlimit "%s" listed twice' % t)
        seen.add(t)
        soft = _int(rl, "soft", path, None, 0, 2 ** 64 - 1)
        hard = _int(rl, "hard", path, None, 0, 2 ** 64 - 1)
        if soft is None or hard is None:
            raise _err(path + ("soft" if soft is None else "hard"), "is required")
        if soft > hard:
            raise _err(path + "soft", "must not exceed hard")
        p.rlimits.append((RLIMITS[t], soft, hard))
    p.no_new_privileges = _bool(proc, "noNewPrivileges", "process.")
    p.oom_score_adj = _int(proc, "oomScoreAdj", "process.", None, -1000, 1000)
    p.apparmor_profile = _str(proc, "apparmorProfile", "process.")
    p.selinux_label = _str(proc, "selinuxLabel", "process.")
    p.ioprio = _ioprio(proc)
    p.sched = _scheduler(proc)
    return p


_IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
_SCHED_POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3,
                   "SCHED_ISO": 4, "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
_SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02,
                "SCHED_FLAG_DL_OVERRUN": 0x04, "SCHED_FLAG_KEEP_POLICY": 0x08,
                "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
                "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}


def _ioprio(proc):
    """process.ioPriority -> the ioprio_set value (class << 13 | level), or None"""
    io = proc.get("ioPriority")
    if io is None:
        return None
    path = "process.ioPriority."
    if not isinstance(io, dict):
        raise _err(path[:-1], "must be an object")
    cls = _str(io, "class", path, required=True)
    if cls not in _IOPRIO_CLASSES:
        raise _err(path + "class", 'unknown class "%s"' % cls)
    # the kernel's levels are 0 (highest) .. 7 (IOPRIO_NR_LEVELS)
    level = _int(io, "priority", path, 0, 0, 7)
    return _IOPRIO_CLASSES[cls] << 13 | level


def _scheduler(proc):
    """process.scheduler -> (policy, flags, nice, priority, runtime, deadline, period), or None;
    the checks are runc's (libcontainer/configs/validate)"""
    sc = proc.get("scheduler")
    if sc is None:
        return None
    path = "process.scheduler."
    if not isinstance(sc, dict):
        raise _err(path[:-1], "must be an object")
    pol = _str(sc, "policy", path, required=True)
    if pol not in _SCHED_POLICIES:
        raise _err(path + "policy", 'unknown policy "%s"' % pol)
    nice = _int(sc, "nice", path, 0, -20, 19)
    prio = _int(sc, "priority", path, 0, 0, 99)
    if prio and pol not in ("SCHED_FIFO", "SCHED_RR"):
        raise _err(path + "priority", "is only allowed for SCHED_FIFO and SCHED_RR")
    flags = 0
    for name in _strlist(sc, "flags", path):
        if name not in _SCHED_FLAGS:
            raise _err(path + "flags", 'unknown flag "%s"' % name)
        flags |= _SCHED_FLAGS[name]
    times = [_int(sc, k, path, 0, 0, 2 ** 64 - 1) for k in ("runtime", "deadline", "period")]
    if pol != "SCHED_DEADLINE" and any(times):
        raise _err(path[:-1], "runtime, deadline and period are only allowed for SCHED_DEADLINE")
    return (_SCHED_POLICIES[pol], flags, nice, prio) + tuple(times)


def _idmaps(linux, key, where="linux."):
    out = []
    for i, m in enumerate(_list(linux, key, where)):
        p = "%s%s[%d]." % (where, key, i)
        if not isinstance(m, dict):
            raise _err(p[:-1], "must be an object")
        vals = []
        for f in ("containerID", "hostID", "size"):
            v = _int(m, f, p, None, 0, 0xFFFFFFFF)
            if v is None:
                raise _err(p + f, "is required")
            vals.append(v)
        out.append(IdMap(*vals))
    return out


def _devices(linux):
    out = []
    for i, d in enumerate(_list(linux, "devices", "linux.")):
        p = "linux.devices[%d]." % i
        if not isinstance(d, dict):
            raise _err(p[:-1], "must be an object")
        dev = Device()
        dev.path = _str(d, "path", p, required=True)
        if not dev.path.startswith("/"):
            raise _err(p + "path", "must be an absolute path")
        dev.type = _str(d, "type", p, required=True)
        if dev.type not in ("c", "b", "u", "p"):
            raise _err(p + "type", 'must be one of "c", "b", "u", "p"')
        # struct prc_device: unsigned int major, minor, uid, gid
        dev.major = _int(d, "major", p, 0, 0, 0xFFFFFFFF)
        dev.minor = _int(d, "minor", p, 0, 0, 0xFFFFFFFF)
        if dev.type != "p" and (d.get("major") is None or d.get("minor") is None):
            raise _err(p + "major", "major and minor are required for this device type")
        dev.file_mode = _int(d, "fileMode", p, 0o666, 0, 0o7777)
        dev.uid = _int(d, "uid", p, 0, 0, 0xFFFFFFFF)
        dev.gid = _int(d, "gid", p, 0, 0, 0xFFFFFFFF)
        out.append(dev)
    return out


# ---- what C and the kernel can take (kept apart from the field parsers above) ----

def _path_text(parts):
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += "[%d]" % p
        else:
            out += ("." if out else "") + _quote(p)
    return out or "<document>"


def _bad_text(text):
    """why a string cannot reach C unchanged, or None"""
    if "\x00" in text:
        # C stops at the NUL: it would act on a shorter string than the one checked
        return "must not contain a NUL byte"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "must not contain a lone surrogate (invalid unicode)"
    return None


def check_strings(raw, base=()):
    """Every string and key of a parsed JSON document, at any depth: refuse a NUL byte
    and a lone surrogate, naming the field.  Iterative, so a deep document cannot
    exhaust the stack; parents are kept as (parent index, key) and a path is only
    built for the error."""
    links = [None]          # node index -> (parent index, key)
    stack = [(raw, 0)]
    while stack:
        value, idx = stack.pop()
        if isinstance(value, dict):
            items = value.items()
        elif isinstance(value, list):
            items = enumerate(value)
        else:
            if isinstance(value, str):
                why = _bad_text(value)
                if why:
                    raise _err(_path_text(base + _path_of(links, idx)), why)
            continue
        for k, v in items:
            if isinstance(k, str):
                why = _bad_text(k)
                if why:
                    raise _err(_path_text(base + _path_of(links, idx) + (k,)), "key " + why)
            if isinstance(v, (dict, list, str)):
                links.append((idx, k))
                stack.append((v, len(links) - 1))


def _path_of(links, idx):
    parts = []
    while idx:
        idx, key = links[idx]
        parts.append(key)
    return tuple(reversed(parts))


# linux.resources: the type of each field that pyrunc writes somewhere, as the
# runtime-spec's Go types give them (the kernel checks the values themselves, but a
# value must be of the right kind and fit what the cgroup file takes)
_I64 = (-2 ** 63, 2 ** 63 - 1)
_U64 = (0, 2 ** 64 - 1)
_U32 = (0, 2 ** 32 - 1)
_U16 = (0, 2 ** 16 - 1)
_BOOL = "bool"
_STR = "str"
_RES_FIELDS = {
    "memory": {"limit": _I64, "reservation": _I64, "swap": _I64, "kernel": _I64, "kernelTCP": _I64,
               "swappiness": _U64, "disableOOMKiller": _BOOL, "useHierarchy": _BOOL,
               "checkBeforeUpdate": _BOOL},
    "cpu": {"shares": _U64, "quota": _I64, "burst": _U64, "period": _U64, "realtimeRuntime": _I64,
            "realtimePeriod": _U64, "cpus": _STR, "mems": _STR, "idle": _I64},
    "pids": {"limit": _I64},
    "blockIO": {"weight": _U16, "leafWeight": _U16},
    "network": {"classID": _U32},
}
_RES_LISTS = {
    # section.key -> fields of each entry
    ("blockIO", "weightDevice"): {"major": _I64, "minor": _I64, "weight": _U16, "leafWeight": _U16},
    ("blockIO", "throttleReadBpsDevice"): {"major": _I64, "minor": _I64, "rate": _U64},
    ("blockIO", "throttleWriteBpsDevice"): {"major": _I64, "minor": _I64, "rate": _U64},
    ("blockIO", "throttleReadIOPSDevice"): {"major": _I64, "minor": _I64, "rate": _U64},
    ("blockIO", "throttleWriteIOPSDevice"): {"major": _I64, "minor": _I64, "rate": _U64},
    ("network", "priorities"): {"name": _STR, "priority": _U32},
}
_RES_DEVICE = {"allow": _BOOL, "type": _STR, "major": _I64, "minor": _I64, "access": _STR}


def _typed(d, key, kind, path):
    v = d.get(key)
    if v is None:
        return
    if kind is _BOOL:
        if not isinstance(v, bool):
            raise _err(path + key, "must be a boolean")
    elif kind is _STR:
        if not isinstance(v, str):
            raise _err(path + key, "must be a string")
    else:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _err(path + key, "must be an integer")
        if not kind[0] <= v <= kind[1]:
            raise _err(path + key, "out of range")


def check_resources(res, where="linux.resources"):
    """types and ranges of linux.resources (also `update --resources`, with another
    `where`); errors name the field"""
    if not isinstance(res, dict):
        raise _err(where, "must be an object")
    p = where + "." if where else ""
    for sec, fields in _RES_FIELDS.items():
        d = res.get(sec)
        if d is None:
            continue
        if not isinstance(d, dict):
            raise _err(p + sec, "must be an object")
        for key, kind in fields.items():
            _typed(d, key, kind, "%s%s." % (p, sec))
    for (sec, key), fields in _RES_LISTS.items():
        d = res.get(sec)
        if d:
            _typed_list(d.get(key), "%s%s.%s" % (p, sec, key), fields)
    _typed_list(res.get("devices"), p + "devices", _RES_DEVICE)
    _typed_list(res.get("hugepageLimits"), p + "hugepageLimits", {"pageSize": _STR, "limit": _U64})
    rdma = res.get("rdma")
    if rdma is not None:
        if not isinstance(rdma, dict):
            raise _err(p + "rdma", "must be an object")
        for name, e in rdma.items():
            ep = "%srdma.%s" % (p, _quote(name))
            if not isinstance(e, dict):
                raise _err(ep, "must be an object")
            _typed(e, "hcaHandles", _U32, ep + ".")
            _typed(e, "hcaObjects", _U32, ep + ".")
    u = res.get("unified")
    if u is not None:
        if not isinstance(u, dict):
            raise _err(p + "unified", "must be an object")
        for k, v in u.items():
            if not isinstance(v, str):
                raise _err("%sunified.%s" % (p, _quote(k)), "must be a string")


def _typed_list(lst, path, fields):
    """an optional array of objects whose fields have the given kinds"""
    if lst is None:
        return
    if not isinstance(lst, list):
        raise _err(path, "must be an array")
    for i, e in enumerate(lst):
        ep = "%s[%d]" % (path, i)
        if not isinstance(e, dict):
            raise _err(ep, "must be an object")
        for f, kind in fields.items():
            _typed(e, f, kind, ep + ".")


def check_time_offsets(offs):
    """linux.timeOffsets: {monotonic|boottime: {secs: int64, nanosecs: uint32}}"""
    for clock, off in offs.items():
        p = "linux.timeOffsets.%s" % _quote(clock)
        if clock not in ("monotonic", "boottime"):
            raise _err(p, "unknown clock (want monotonic or boottime)")
        if not isinstance(off, dict):
            raise _err(p, "must be an object")
        _typed(off, "secs", _I64, p + ".")
        _typed(off, "nanosecs", (0, 999999999), p + ".")
