"""usage: pyrunc resume ID

Thaw a paused container.
"""
FLAGS = {"--help": ("help", False), "-h": ("help", False)}
DEFAULTS = {"help": False}
NARGS = (1, 1)


def run(g, opts, args):
    from pyrunc.commands.pause import cgroups_of
    from pyrunc.container import Container
    from pyrunc.errors import StateError

    c = Container.load(g.root, args[0])
    try:
        if c.status() == "stopped":
            raise StateError("container not running")
        m = cgroups_of(c)
        if not m.paused():
            raise StateError("container not paused")
        m.thaw()
    finally:
        c.close()
    return 0
