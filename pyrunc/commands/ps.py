"""usage: pyrunc ps [--format table|json] ID [PS ARGS...]

The processes in the container's cgroup.  json: an array of host pids (null when
there are none, as runc).  table: the output of `ps -ef` (or of `ps PS ARGS`)
filtered to those pids.  Nothing is written to stderr on success: callers parse
stdout and stderr together.
"""
import os

FLAGS = {"--format": ("format", True), "-f": ("format", True), "--help": ("help", False), "-h": ("help", False)}
DEFAULTS = {"format": "table", "help": False}
NARGS = (1, 1 << 20)
STOP_AFTER = 1


def run(g, opts, args):
    from pyrunc import jsonfast
    from pyrunc.commands.pause import cgroups_of
    from pyrunc.container import Container
    from pyrunc.errors import PyruncError, UsageError

    if opts.format not in ("table", "json"):
        raise UsageError("invalid format option: %s" % opts.format)
    c = Container.load(g.root, args[0], lock=False)
    try:
        pids = cgroups_of(c).pids()
    finally:
        c.close()
    if opts.format == "json":
        if len(args) > 1:
            raise UsageError("ps: --format json takes no ps arguments")
        os.write(1, ((jsonfast.dumps(sorted(pids)) if pids else "null") + "\n").encode())
        return 0
    import subprocess

    ps_args = args[1:] or ["-ef"]
    try:
        r = subprocess.run(["ps"] + ps_args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL)
    except OSError as err:
        raise PyruncError("ps: run ps: %s" % os.strerror(err.errno).lower()) from None
    text = r.stdout.decode(errors="replace")
    if r.returncode:
        raise PyruncError("ps: ps %s: exit status %d: %s" % (" ".join(ps_args), r.returncode,
                                                              text.strip().split("\n")[-1]))
    lines = text.split("\n")
    header = lines[0].split()
    if "PID" not in header:
        raise PyruncError("ps: couldn't find PID field in ps output")
    col = header.index("PID")
    keep = set(pids)
    out = [lines[0]]
    for line in lines[1:]:
        f = line.split()
        if len(f) > col and f[col].isdigit() and int(f[col]) in keep:
            out.append(line)
    os.write(1, ("\n".join(out) + "\n").encode())
    return 0
