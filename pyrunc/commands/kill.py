"""usage: pyrunc kill [--all] ID [SIGNAL]

Send a signal (default SIGTERM; a number, a name, SIG-prefixed or not) to the
container's init, or with --all to every process in its cgroup.
"""
FLAGS = {"--all": ("all", False), "-a": ("all", False), "--help": ("help", False), "-h": ("help", False)}
DEFAULTS = {"all": False, "help": False}
NARGS = (1, 2)


def run(g, opts, args):
    from pyrunc import state as _state
    from pyrunc.errors import PyruncError

    if len(args) < 2:
        sig = 15
    elif args[1].isdigit() and int(args[1]) < 65:
        sig = int(args[1])  # what containerd sends: no need for the table of names
    else:
        from pyrunc.tables import parse_signal

        try:
            sig = parse_signal(args[1])
        except ValueError as err:
            raise PyruncError(str(err)) from None
    if opts.all:
        from pyrunc.container import Container

        c = Container.load(g.root, args[0])
        try:
            c.kill(sig, all_processes=True)
        finally:
            c.close()
        return 0
    # the init only: pyrunc.state does it, without the Container class (Container.kill
    # calls the same function)
    cdir = _state.ContainerDir.open(g.root, args[0], lock=False)
    try:
        _state.kill_init(_state.lock_state(cdir, False), cdir, sig)
    finally:
        cdir.close()
    return 0
