"""Seeded config.json mutations and the checks every mutated create must pass.

A case is (seed, index): the same pair always gives the same config text, so a
failure names what to replay (`PYRUNC_FUZZ_SEED=<seed> PYRUNC_FUZZ_ONLY=<index>`).

What a case checks (tests/robust/test_fuzz_config.py): `create` exits 0 or 1; on
failure stderr is exactly one line, without "internal error" or "Traceback"; on
success `state` answers and `delete --force` exits 0; and afterwards nothing is left:
no state directory, no cgroup, no mount under the bundle, no process in the rootfs.

Host safety: the fuzzer never removes the container's namespaces or moves its cgroup
(a config without a uts or mount namespace would set the host's hostname or mount in
the host's namespace, which is legal and not what we test here), so those nodes and
their ancestors are only ever replaced by values that fail to parse.
"""
import json
import os
import random

# values that are wrong in some way for some C type or some kernel interface
INTS = [0, -1, 1, 7, 2 ** 15, 2 ** 16, 2 ** 31 - 1, 2 ** 31, -2 ** 31 - 1, 2 ** 32 - 1, 2 ** 32,
        2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1, 2 ** 64, -2 ** 63 - 1, 10 ** 30, -10 ** 30]
FLOATS = [1.5, -0.0, 1e308, float("inf"), float("-inf"), float("nan")]
STRINGS = ["", "\x00", "a\x00b", "\ud800", "x\udfffy", "\U0001f600", "x" * 5000, "/", "-1",
           "true", " ", "\n", "bogus", "SCMP_ACT_BOGUS", "rw\x00m"]
OTHER = [None, True, False, [], {}, [1], ["\x00"], {"a": 1}, {"": None}]

# (path prefix) nodes that keep the host safe: never deleted, never set to null or an
# object/array that might parse (see the module docstring)
PROTECTED = (("linux", "namespaces"), ("linux", "cgroupsPath"))


def base_config(cgroups_path):
    """a config that creates successfully and exercises most of what reaches C"""
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0, "additionalGids": [1], "umask": 18},
            "args": ["sh", "-c", "true"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                             for k in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
            "oomScoreAdj": 10,
            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
            "consoleSize": {"height": 24, "width": 80},
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "fuzz",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/mnt", "type": "bind", "source": "/tmp", "options": ["rbind", "ro"]},
        ],
        "hooks": {"createRuntime": [{"path": "/bin/true", "args": ["true"], "env": ["A=1"], "timeout": 5}]},
        "annotations": {"org.example": "fuzz"},
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup", "time")],
            "timeOffsets": {"monotonic": {"secs": 1, "nanosecs": 0}},
            "cgroupsPath": cgroups_path,
            "devices": [{"path": "/dev/fuzz0", "type": "c", "major": 1, "minor": 3,
                         "fileMode": 438, "uid": 0, "gid": 0}],
            "resources": {
                "devices": [{"allow": False, "access": "rwm"},
                            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
                "memory": {"limit": 67108864, "reservation": 33554432},
                "cpu": {"shares": 512, "quota": 50000, "period": 100000},
                "pids": {"limit": 100},
            },
            "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                        "syscalls": [{"names": ["mknodat", "mknod"], "action": "SCMP_ACT_ERRNO",
                                      "errnoRet": 1},
                                     {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                                      "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]},
            "maskedPaths": ["/proc/kcore", "/proc/keys"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
            "personality": {"domain": "LINUX"},
        },
    }


# optional fields a case may add (then maybe mutate): they reach other code paths
INSERTS = [
    (("process", "scheduler"), {"policy": "SCHED_OTHER", "nice": 1}),
    (("process", "scheduler"), {"policy": "SCHED_FIFO", "priority": 1}),
    (("linux", "sysctl"), {"net.ipv4.ip_forward": "0", "kernel.msgmax": "8192"}),
    (("linux", "resources", "blockIO"), {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 10}],
                                         "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]}),
    (("linux", "resources", "hugepageLimits"), [{"pageSize": "2MB", "limit": 0}]),
    (("linux", "resources", "network"), {"classID": 1, "priorities": [{"name": "lo", "priority": 1}]}),
    (("linux", "resources", "unified"), {"pids.max": "10"}),
    (("linux", "resources", "rdma"), {"mlx": {"hcaHandles": 1, "hcaObjects": 2}}),
    (("linux", "resources", "cpu", "cpus"), "0"),
    (("linux", "resources", "memory", "swappiness"), 10),
    (("linux", "rootfsPropagation"), "slave"),
    (("linux", "seccomp", "flags"), ["SECCOMP_FILTER_FLAG_LOG"]),
    (("linux", "seccomp", "defaultErrnoRet"), 1),
    (("linux", "personality", "flags"), []),
    (("process", "apparmorProfile"), ""),
    (("process", "selinuxLabel"), ""),
    (("domainname",), "fuzzdomain"),
    (("hooks", "poststop"), [{"path": "/bin/true"}]),
    (("hooks", "createContainer"), [{"path": "/bin/true"}]),
]


def _nodes(obj, path=()):
    """every (path, value) in the tree, the root first"""
    yield path, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _nodes(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _nodes(v, path + (i,))


def _protected(path):
    """0: free; 1: an ancestor of a protected node; 2: the protected node or below"""
    for p in PROTECTED:
        if path[:len(p)] == p:
            return 2
        if p[:len(path)] == path:
            return 1
    return 0


def _set(obj, path, value):
    if not path:
        return value
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = value
    return obj


def _delete(obj, path):
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    del parent[path[-1]]


def _deep(rng):
    depth = rng.choice([40, 900, 5000, 100000])
    opener = rng.choice("[{")
    if opener == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def _parse_safe(value):
    """a value for a protected node or an ancestor: one that cannot parse as valid there"""
    return value not in (None,) and not isinstance(value, (dict, list))


def mutate(seed, index, cgroups_path):
    """the text of config.json for case (seed, index), and a short description"""
    rng = random.Random("%s/%d" % (seed, index))
    cfg = base_config(cgroups_path)
    ops = []
    # a raw-text mutation: a deep nest spliced in for a random value
    deep_at = None
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        nodes = list(_nodes(cfg))
        path, value = rng.choice(nodes)
        prot = _protected(path)
        kind = rng.choice(["replace", "replace", "int", "string", "string", "delete", "unknown",
                           "deep", "enum", "insert"])
        if kind == "insert":
            ipath, ivalue = rng.choice(INSERTS)
            try:
                cfg = _set(cfg, ipath, json.loads(json.dumps(ivalue)))
            except (KeyError, IndexError, TypeError):
                continue  # a parent was mutated away
            ops.append("insert %s" % _fmt(ipath))
            continue
        if kind == "deep" and prot == 0 and path:
            deep_at = path
            cfg = _set(cfg, path, "@@DEEP@@")
            ops.append("deep %s" % _fmt(path))
            continue
        if kind == "delete" and path and prot == 0:
            _delete(cfg, path)
            ops.append("delete %s" % _fmt(path))
            continue
        if kind == "unknown" and isinstance(value, dict) and prot == 0:
            value["fuzzUnknown%d" % rng.randrange(100)] = rng.choice(INTS + STRINGS + OTHER)
            ops.append("unknown key in %s" % _fmt(path))
            continue
        if kind == "int" or (kind == "replace" and isinstance(value, int)):
            new = rng.choice(INTS + FLOATS + ["1", None])
        elif kind == "string" and isinstance(value, str):
            new = rng.choice([value + s for s in STRINGS[:6]] + [s + value for s in STRINGS[:6]] + STRINGS)
        elif kind == "enum" and isinstance(value, str):
            new = rng.choice(["", value.lower(), value + "X", "BOGUS", value[:-1]])
        else:
            new = rng.choice(INTS + FLOATS + STRINGS + OTHER)
        if prot and not _parse_safe(new):
            continue
        cfg = _set(cfg, path, new)
        ops.append("%s %s = %s" % (kind, _fmt(path), _short(new)))
    text = json.dumps(cfg)
    if deep_at is not None:
        text = text.replace('"@@DEEP@@"', _deep(rng), 1)
    if rng.random() < 0.15:
        cut = rng.randrange(len(text))
        text = text[:cut]
        ops.append("truncate at %d" % cut)
    return text, "; ".join(ops) or "unchanged"


def _fmt(path):
    return ".".join(str(p) for p in path) or "<root>"


def _short(v):
    r = repr(v)
    return r if len(r) < 40 else r[:37] + "..."


def processes_in(rootfs, marker):
    """pids whose root is the rootfs, or whose command line names marker (helpers)"""
    found = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            if os.readlink("/proc/%s/root" % name) == rootfs:
                found.append(int(name))
                continue
            with open("/proc/%s/cmdline" % name, "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(name))
        except OSError:
            pass
    return found


def stats(seed, n, cgroups_path="/x"):
    """how many of the first n cases mutate what (for the report)"""
    kinds = {}
    for i in range(n):
        _, desc = mutate(seed, i, cgroups_path)
        for op in desc.split("; "):
            k = op.split(" ")[0]
            kinds[k] = kinds.get(k, 0) + 1
    return kinds
