"""usage: pyrunc events [--stats] [--interval DURATION] ID

Container events as JSON lines, in runc's format: {"type":"stats","id":ID,"data":{...}}
every --interval (default 5s; 500ms, 2s, 1m...), and {"type":"oom","id":ID} when the
kernel's OOM killer strikes in the container.  --stats prints the statistics once.
Ends when the container stops.
"""
import os

FLAGS = {"--stats": ("stats", False), "--interval": ("interval", True),
         "--help": ("help", False), "-h": ("help", False)}
DEFAULTS = {"stats": False, "interval": "5s", "help": False}
NARGS = (1, 1)

_UNITS = (("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3600.0))


def duration(text):
    """a Go duration ("5s", "1m30s", "250ms") in seconds"""
    from pyrunc.errors import UsageError

    s = text.strip()
    total = 0.0
    if s == "0":
        return 0.0
    while s:
        i = 0
        while i < len(s) and (s[i].isdigit() or s[i] == "."):
            i += 1
        num = s[:i]
        s = s[i:]
        for unit, mult in _UNITS:
            if s.startswith(unit) and not (unit == "m" and s.startswith("ms")):
                break
        else:
            raise UsageError('invalid value "%s" for flag --interval: not a duration (e.g. 5s, 500ms)' % text)
        s = s[len(unit):]
        try:
            total += float(num) * mult
        except ValueError:
            raise UsageError('invalid value "%s" for flag --interval: not a duration (e.g. 5s, 500ms)'
                             % text) from None
    if total <= 0:
        raise UsageError('invalid value "%s" for flag --interval: must be positive' % text)
    return total


def _emit(obj):
    from pyrunc import jsonfast

    os.write(1, (jsonfast.dumps(obj) + "\n").encode())


def run(g, opts, args):
    import select
    import time

    from pyrunc.cgroups import stats as _stats
    from pyrunc.commands.pause import cgroups_of
    from pyrunc.container import Container
    from pyrunc.errors import StateError

    interval = duration(opts.interval)
    c = Container.load(g.root, args[0], lock=False)
    try:
        cid = c.id
        if c.status() == "stopped":
            raise StateError("container with id %s is not running" % cid)
        m = cgroups_of(c)
        if opts.stats:
            _emit({"type": "stats", "id": cid, "data": _stats.runc_json(m.stats())})
            return 0
        watch = _stats.OOMWatch(m)
        try:
            p = select.poll()
            if watch.fd >= 0:
                p.register(watch.fd, watch.events)
            due = time.monotonic() + interval
            while True:
                left = due - time.monotonic()
                if left <= 0:
                    if c.status() == "stopped":
                        return 0
                    try:
                        data = _stats.runc_json(m.stats())
                    except (OSError, StateError) as err:
                        if c.status() == "stopped":
                            return 0
                        raise StateError("events: read the cgroup statistics: %s" % err) from None
                    _emit({"type": "stats", "id": cid, "data": data})
                    due += interval
                    continue
                if p.poll(left * 1000):
                    n = watch.read()
                    for _ in range(n):
                        _emit({"type": "oom", "id": cid})
                    if not n and watch.version == 1 and c.status() == "stopped":
                        return 0
        finally:
            watch.close()
    finally:
        c.close()
