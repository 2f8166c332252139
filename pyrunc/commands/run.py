"""usage: pyrunc run [--bundle DIR] [--detach] [--pid-file FILE] [--console-socket SOCK] [--no-pivot] [--no-new-keyring] [--preserve-fds N] [--keep] ID|BUNDLE/

Create and start a container.  In the foreground, wait for it, delete it (unless
--keep), and exit with its status (128+signal when it was killed).

A single argument naming a directory (it has a `/`: `pyrunc run bundle/`) that holds
config.json runs that bundle under a generated id (printed with --detach).
"""
import os

from pyrunc.commands import create as _create
from pyrunc.errors import UsageError

FLAGS = dict(_create.FLAGS)
FLAGS.update({"--detach": ("detach", False), "-d": ("detach", False),
              "--keep": ("keep", False), "--no-subreaper": ("no_subreaper", False)})
DEFAULTS = dict(_create.DEFAULTS)
DEFAULTS.update({"detach": False, "keep": False, "no_subreaper": False})
NARGS = (1, 1)


def bundle_argument(arg, bundle):
    """`pyrunc run bundle/`: an argument with a `/` can never be a container id (ids are
    [A-Za-z0-9_+.-]), so one naming a directory with a config.json is the bundle, run
    under a generated id: the directory's name and 8 random hex digits.  Returns
    (id, bundle)."""
    if "/" not in arg:
        return arg, bundle
    from pyrunc.errors import ConfigError

    if not os.path.isfile(os.path.join(arg, "config.json")):
        raise ConfigError("run %s: not a container id, nor a bundle directory (no config.json there)" % arg)
    if bundle != ".":
        raise UsageError("run %s: a bundle directory and --bundle %s: give one" % (arg, bundle))
    name = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "_+-.") else "-"
                   for ch in os.path.basename(os.path.abspath(arg)))
    return "%s-%s" % (name.strip(".") or "pyrunc", os.urandom(4).hex()), arg


def run(g, opts, args):
    from pyrunc.container import run_container

    cid, bundle = bundle_argument(args[0], opts.bundle)
    if cid != args[0] and opts.detach:
        # the caller needs the generated id to reach the container again
        os.write(1, (cid + "\n").encode())
    return run_container(g.root, cid, bundle, detach=opts.detach,
                         pid_file=opts.pid_file, console_socket=opts.console_socket,
                         no_pivot=opts.no_pivot, preserve_fds=_create.preserve_count(opts),
                         systemd_cgroup=g.systemd_cgroup, keep=opts.keep,
                         no_new_keyring=opts.no_new_keyring)
