"""usage: pyrunc run [--bundle DIR] [--detach] [--pid-file FILE] [--console-socket SOCK] [--no-pivot] [--preserve-fds N] ID

Create and start a container.  In the foreground, wait for it, delete it, and exit
with its status (128+signal when it was killed).
"""
from pyrunc.commands import create as _create

FLAGS = dict(_create.FLAGS)
FLAGS.update({"--detach": ("detach", False), "-d": ("detach", False),
              "--keep": ("keep", False), "--no-subreaper": ("no_subreaper", False)})
DEFAULTS = dict(_create.DEFAULTS)
DEFAULTS.update({"detach": False, "keep": False, "no_subreaper": False})
NARGS = (1, 1)


def run(g, opts, args):
    from pyrunc.container import run_container

    return run_container(g.root, args[0], opts.bundle, detach=opts.detach,
                         pid_file=opts.pid_file, console_socket=opts.console_socket,
                         no_pivot=opts.no_pivot, preserve_fds=_create.preserve_count(opts),
                         systemd_cgroup=g.systemd_cgroup)
