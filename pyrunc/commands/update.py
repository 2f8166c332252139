"""usage: pyrunc update [options] ID

Change the resource limits of a running container.  --resources FILE (or - for
stdin) reads an OCI LinuxResources JSON object; otherwise the flags:
  --memory N  --memory-reservation N  --memory-swap N (-1: unlimited)  (N: bytes,
              or with a unit: 512k, 100m, 1.5g)
  --cpu-share N  --cpu-period N  --cpu-quota N  --cpu-rt-period N  --cpu-rt-runtime N
  --cpuset-cpus LIST  --cpuset-mems LIST  --blkio-weight N  --pids-limit N
Zero (or absent) leaves a value unchanged.  The new values are kept in the
container's state.  On failure the previous values are written back.
"""
FLAGS = {
    "--resources": ("resources", True), "-r": ("resources", True),
    "--blkio-weight": ("blkio_weight", True), "--cpu-period": ("cpu_period", True),
    "--cpu-quota": ("cpu_quota", True), "--cpu-share": ("cpu_share", True),
    "--cpu-rt-period": ("cpu_rt_period", True), "--cpu-rt-runtime": ("cpu_rt_runtime", True),
    "--cpuset-cpus": ("cpuset_cpus", True), "--cpuset-mems": ("cpuset_mems", True),
    "--memory": ("memory", True), "--memory-reservation": ("memory_reservation", True),
    "--memory-swap": ("memory_swap", True), "--kernel-memory": ("kernel_memory", True),
    "--kernel-memory-tcp": ("kernel_memory_tcp", True), "--pids-limit": ("pids_limit", True),
    "--l3-cache-schema": ("l3_cache_schema", True), "--mem-bw-schema": ("mem_bw_schema", True),
    "--help": ("help", False), "-h": ("help", False),
}
DEFAULTS = {k[1][0]: None for k in FLAGS.items()}
DEFAULTS["help"] = False
NARGS = (1, 1)

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_bytes(flag, text):
    """docker's units.RAMInBytes: "100", "512k", "1.5g", "2 GiB" (binary units)"""
    from pyrunc.errors import UsageError

    s = text.strip().lower()
    if s == "-1":
        return -1
    for suffix in ("ib", "b", "i"):
        if s.endswith(suffix) and len(s) > len(suffix):
            s = s[:-len(suffix)]
            break
    s = s.rstrip()
    unit = s[-1:] if s[-1:] in _UNITS and s[-1:] else ""
    num = s[:-1].rstrip() if unit else s
    try:
        if not num or num.startswith(("-", "+")):
            raise ValueError
        value = float(num) if "." in num else int(num)
        return int(value * _UNITS[unit])
    except (ValueError, OverflowError):  # also "inf.0", "nan.0"
        raise UsageError("invalid value %r for flag %s: not a size (e.g. 512k, 100m, 1.5g)" % (text, flag)) from None


def _int(flag, text, lo=None):
    from pyrunc.errors import UsageError

    try:
        v = int(text)
    except ValueError:
        raise UsageError("invalid value %r for flag %s: not an integer" % (text, flag)) from None
    if lo is not None and v < lo:
        raise UsageError("invalid value %r for flag %s: must be at least %d" % (text, flag, lo))
    return v


def from_flags(o):
    from pyrunc.errors import UsageError

    if o.l3_cache_schema is not None or o.mem_bw_schema is not None:
        raise UsageError("update: Intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported by pyrunc")
    r = {}
    mem = {}
    for key, flag, val in (("limit", "--memory", o.memory), ("reservation", "--memory-reservation",
                                                              o.memory_reservation),
                           ("swap", "--memory-swap", o.memory_swap), ("kernel", "--kernel-memory", o.kernel_memory),
                           ("kernelTCP", "--kernel-memory-tcp", o.kernel_memory_tcp)):
        if val is not None:
            mem[key] = ram_bytes(flag, val)
    if mem:
        r["memory"] = mem
    cpu = {}
    for key, flag, val, lo in (("shares", "--cpu-share", o.cpu_share, 0), ("period", "--cpu-period", o.cpu_period, 0),
                               ("quota", "--cpu-quota", o.cpu_quota, -1),
                               ("realtimePeriod", "--cpu-rt-period", o.cpu_rt_period, 0),
                               ("realtimeRuntime", "--cpu-rt-runtime", o.cpu_rt_runtime, -1)):
        if val is not None:
            cpu[key] = _int(flag, val, lo)
    if o.cpuset_cpus is not None:
        cpu["cpus"] = o.cpuset_cpus
    if o.cpuset_mems is not None:
        cpu["mems"] = o.cpuset_mems
    if cpu:
        r["cpu"] = cpu
    if o.blkio_weight is not None:
        r["blockIO"] = {"weight": _int("--blkio-weight", o.blkio_weight, 0)}
    if o.pids_limit is not None:
        r["pids"] = {"limit": _int("--pids-limit", o.pids_limit)}
    return r


_TYPES = {
    "memory": {"limit": int, "reservation": int, "swap": int, "kernel": int, "kernelTCP": int,
               "checkBeforeUpdate": bool},
    "cpu": {"shares": int, "quota": int, "period": int, "burst": int, "realtimeRuntime": int,
            "realtimePeriod": int, "cpus": str, "mems": str, "idle": int},
    "blockIO": {"weight": int},
    "pids": {"limit": int},
}


def check_json(r, where):
    """types of the fields update uses; the rest of LinuxResources is ignored, as runc"""
    from pyrunc.errors import UsageError

    if not isinstance(r, dict):
        raise UsageError("%s: must be a JSON object (LinuxResources)" % where)
    for sec, fields in _TYPES.items():
        s = r.get(sec)
        if s is None:
            continue
        if not isinstance(s, dict):
            raise UsageError("%s: %s: must be an object" % (where, sec))
        for k, t in fields.items():
            v = s.get(k)
            if v is None:
                continue
            if t is int and (not isinstance(v, int) or isinstance(v, bool)) or t is not int and not isinstance(v, t):
                raise UsageError("%s: %s.%s: must be %s" % (where, sec, k, {int: "an integer", str: "a string",
                                                                            bool: "true or false"}[t]))
    u = r.get("unified")
    if u is not None and (not isinstance(u, dict) or not all(isinstance(v, str) for v in u.values())):
        raise UsageError("%s: unified: must be an object of strings" % where)
    # then what create checks: every string (NUL, surrogates), every type and range
    from pyrunc import spec as _spec
    from pyrunc.errors import ConfigError

    saved = _spec.CONFIG
    _spec.CONFIG = where
    try:
        _spec.check_strings(r)
        _spec.check_resources(r, "")
    except ConfigError as err:
        raise UsageError(str(err)) from None
    finally:
        _spec.CONFIG = saved


def run(g, opts, args):
    import os

    from pyrunc import jsonfast
    from pyrunc.commands.pause import cgroups_of
    from pyrunc.container import Container
    from pyrunc.errors import PyruncError, StateError, UsageError

    if opts.resources is not None:
        where = "--resources %s" % opts.resources
        try:
            if opts.resources == "-":
                from pyrunc import _os

                data = _os.read_all(0)
            else:
                with open(opts.resources, "rb") as f:
                    data = f.read()
        except OSError as err:
            raise PyruncError("update: read %s: %s" % (opts.resources, os.strerror(err.errno).lower())) from None
        try:
            new = jsonfast.loads(data)
        except (ValueError, UnicodeDecodeError) as err:
            raise UsageError("update: %s: invalid JSON: %s" % (where, err)) from None
        check_json(new, "update: " + where)
    else:
        new = from_flags(opts)
        check_json(new, "update")
    c = Container.load(g.root, args[0])
    try:
        if c.status() == "stopped":
            raise StateError("container not running")
        m = cgroups_of(c)
        m.update(new)
        c.st["cgroup"] = m.to_state()
        c.cdir.write(c.st)
    finally:
        c.close()
    return 0
