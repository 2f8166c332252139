"""pyrunc's command line: runc's global flags, one module per verb, imported lazily.

A table-driven parser instead of argparse (which imports re, gettext and more: ~12 ms
of the ~25 ms a command may take).  Like runc (urfave/cli): global flags before the
verb, the verb's flags anywhere after it (also after the container id), `--flag=value`
and `--flag value` both accepted.
"""
from pyrunc import _os as os
import sys

from pyrunc.errors import PyruncError, UsageError

# verb -> module under pyrunc.commands
COMMANDS = {
    "create": "create", "start": "start", "run": "run", "state": "state", "kill": "kill",
    "delete": "delete", "list": "list_", "spec": "spec",
}
for _extra in ("exec", "ps", "pause", "resume", "update", "events", "features", "validate",
               "checkpoint", "restore"):
    COMMANDS[_extra] = _extra + "_" if _extra == "exec" else _extra

# flag -> (dest, takes a value)
GLOBAL_FLAGS = {
    "--root": ("root", True), "--log": ("log", True), "--log-format": ("log_format", True),
    "--debug": ("debug", False), "--systemd-cgroup": ("systemd_cgroup", False),
    "--criu": ("criu", True), "--rootless": ("rootless", True),
    "--help": ("help", False), "-h": ("help", False),
    "--version": ("version", False), "-v": ("version", False),
}

USAGE = """usage: pyrunc [global options] command [command options] [arguments...]

commands:
  create   create a container          start    start a created container
  run      create and start            state    print the state of a container
  kill     send a signal               delete   delete a container
  list     list containers             spec     write a default config.json
  exec     run a process in a container
  ps, pause, resume, update, events, features, validate

global options:
  --root DIR         state directory (default /run/pyrunc)
  --log FILE         log file (default stderr)
  --log-format FMT   text or json
  --debug            debug logging
  --systemd-cgroup   use systemd for cgroups
  --version, -v      print the version
"""


# parsed flags as attributes; unset flags are None (or False).  types.SimpleNamespace
# (sys.implementation's type, without importing types): a class statement of ours
# would cost every command ~0.1 million instructions
Options = type(sys.implementation)


def parse(argv, flags, defaults, repeated=(), stop_after=None):
    """flags anywhere; returns (Options, positional args). `--` ends flags, and so does
    the stop_after-th positional (exec: what follows the id is the command's own argv).
    Flags in `repeated` collect their values in a list."""
    opts = Options(**defaults)
    args = []
    i = 0
    n = len(argv)
    while i < n:
        a = argv[i]
        i += 1
        if a == "--":
            args.extend(argv[i:])
            break
        if stop_after is not None and len(args) >= stop_after:
            args.append(a)
            args.extend(argv[i:])
            break
        if a.startswith("-") and a != "-":
            name, eq, value = a.partition("=")
            spec = flags.get(name)
            if spec is None and not a.startswith("--") and len(a) > 2 and a[:2] in flags:
                # -bDIR style
                name, eq, value = a[:2], "=", a[2:]
                spec = flags[name]
            if spec is None:
                raise UsageError("flag provided but not defined: %s" % name)
            dest, takes = spec
            if takes:
                if not eq:
                    if i >= n:
                        raise UsageError("flag needs an argument: %s" % name)
                    value = argv[i]
                    i += 1
                if dest in repeated:
                    lst = getattr(opts, dest) or []
                    lst.append(value)
                    setattr(opts, dest, lst)
                else:
                    setattr(opts, dest, value)
            else:
                if eq and value not in ("true", "false"):
                    raise UsageError("invalid boolean value %r for %s" % (value, name))
                setattr(opts, dest, value != "false")
            continue
        args.append(a)
    return opts, args


# verbs whose parent always moves a process between cgroups (none now: the children
# join themselves, and exec starts rcuwarm itself when it has to, see process.py)
_MIGRATES = ()
_LONG_RUNNING = ("events",)


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    import pyrunc

    pyrunc._command = True
    from pyrunc import log as _log

    # global flags stop at the first non-flag word: the verb
    i = 0
    gargs = []
    while i < len(argv) and argv[i].startswith("-"):
        name = argv[i].partition("=")[0]
        gargs.append(argv[i])
        spec = GLOBAL_FLAGS.get(name)
        if spec is not None and spec[1] and "=" not in argv[i] and i + 1 < len(argv):
            i += 1
            gargs.append(argv[i])
        i += 1
    rest = argv[i:]
    try:
        g, _ = parse(gargs, GLOBAL_FLAGS, {
            "root": None, "log": None, "log_format": "text", "debug": False,
            "systemd_cgroup": False, "criu": None, "rootless": None, "help": False,
            "version": False})
    except UsageError as err:
        _log.get().error(str(err))
        return 1
    if g.version:
        from pyrunc import OCI_VERSION, __version__

        sys.stdout.write("pyrunc version %s\ncommit: v%s\nspec: %s\npython: %s\n" % (
            __version__, __version__, OCI_VERSION, sys.version.split()[0]))
        return 0
    if g.help or rest[:1] in (["help"], ["h"]):
        from pyrunc import help as _help  # only for help: off the hot path

        return _help.command_help(rest[1]) if len(rest) > 1 and not g.help else _help.main_help()
    if not rest:
        sys.stderr.write(USAGE)
        return 1
    if g.log_format not in ("text", "json"):
        _log.get().error("invalid log-format: %s" % g.log_format)
        return 1
    try:
        log = _log.setup(g.log, g.log_format, g.debug)
    except OSError as err:
        _log.get().error("open log %s: %s" % (g.log, os.strerror(err.errno).lower()))
        return 1
    if g.root is None:
        from pyrunc.state import default_root

        g.root = default_root()
    else:
        g.root = os.abspath(g.root)

    verb = rest[0]
    modname = COMMANDS.get(verb)
    if modname is None:
        if "-h" in rest or "--help" in rest:
            from pyrunc import help as _help

            return _help.command_help(verb)
        log.error("no such command: %s" % verb)
        return 3
    if verb in _LONG_RUNNING:
        import gc

        gc.enable()  # the launcher turned it off for short commands
    if verb in _MIGRATES:
        # this verb will move a process into v1 cgroups: start the kernel's grace
        # period for that now, in the background (see pyrunc/rcuwarm.py)
        from pyrunc import rcuwarm

        rcuwarm.start()
    fast = sys.modules.get("pyrunc._fastimport")
    if fast is not None:
        # the command's modules in one read (the launcher installed the shortcut)
        fast.preload(modname)
    try:
        mod = __import__("pyrunc.commands." + modname, fromlist=["run"])
    except ModuleNotFoundError as err:
        if err.name == "pyrunc.commands." + modname:
            log.error("command %s is not available in this build" % verb)
            return 1
        raise
    try:
        opts, args = parse(rest[1:], mod.FLAGS, dict(mod.DEFAULTS),
                           getattr(mod, "REPEATED", ()), getattr(mod, "STOP_AFTER", None))
        if getattr(opts, "help", False):
            from pyrunc import help as _help

            return _help.command_help(verb)
        lo, hi = mod.NARGS
        if not lo <= len(args) <= hi:
            if lo == hi:
                raise UsageError('"%s" requires exactly %d argument(s)' % (verb, lo))
            if len(args) < lo:
                raise UsageError('"%s" requires at least %d argument(s)' % (verb, lo))
            raise UsageError('"%s" requires at most %d argument(s)' % (verb, hi))
        return mod.run(g, opts, args) or 0
    except PyruncError as err:
        log.error(str(err))
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as err:
        # an unexpected system error: still one line, naming what failed
        what = " " + err.filename if getattr(err, "filename", None) else ""
        log.error("%s%s: %s" % (verb, what, (err.strerror or str(err)).lower()))
        return 1
    except Exception as err:  # a bug: still one line (the traceback with --debug)
        if g.debug:
            import traceback

            log.debug(traceback.format_exc())
        log.error("%s: internal error: %s: %s" % (verb, type(err).__name__, err))
        return 1
