"""usage: pyrunc pause ID

Freeze every process of the container (v1 freezer.state, v2 cgroup.freeze); its
status becomes "paused" until `pyrunc resume`.
"""
FLAGS = {"--help": ("help", False), "-h": ("help", False)}
DEFAULTS = {"help": False}
NARGS = (1, 1)


def cgroups_of(c):
    """the container's cgroup manager, or the error runc gives without one"""
    from pyrunc.cgroups import load_manager
    from pyrunc.errors import StateError

    st = c.st.get("cgroup")
    if not st:
        raise StateError("container %s has no cgroup" % c.id)
    return load_manager(st)


def run(g, opts, args):
    from pyrunc.container import Container
    from pyrunc.errors import StateError

    c = Container.load(g.root, args[0])
    try:
        # runc pauses running and created containers; anything else is "not running"
        if c.status() not in ("running", "created"):
            raise StateError("container not running")
        cgroups_of(c).freeze()
    finally:
        c.close()
    return 0
