"""usage: pyrunc kill [--all] ID [SIGNAL]

Send a signal (default SIGTERM; a number, a name, SIG-prefixed or not) to the
container's init, or with --all to every process in its cgroup.
"""
FLAGS = {"--all": ("all", False), "-a": ("all", False), "--help": ("help", False), "-h": ("help", False)}
DEFAULTS = {"all": False, "help": False}
NARGS = (1, 2)


def run(g, opts, args):
    from pyrunc.container import Container
    from pyrunc.errors import PyruncError
    from pyrunc.tables import parse_signal

    try:
        sig = parse_signal(args[1]) if len(args) > 1 else 15
    except ValueError as err:
        raise PyruncError(str(err)) from None
    c = Container.load(g.root, args[0])
    try:
        c.kill(sig, all_processes=opts.all)
    finally:
        c.close()
    return 0
