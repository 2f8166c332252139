"""usage: pyrunc start ID

Start a created container: its process execs the configured program.
"""
FLAGS = {"--help": ("help", False), "-h": ("help", False)}
DEFAULTS = {"help": False}
NARGS = (1, 1)


def run(g, opts, args):
    from pyrunc import state as _state

    cdir = _state.ContainerDir.open(g.root, args[0], lock=False)
    try:
        st = _state.lock_state(cdir, False)
        hooks = st.get("hooks") or {}
        if not hooks.get("startContainer") and not hooks.get("poststart"):
            # no hooks to run (nearly every container): pyrunc.state does what
            # Container.start does then, without importing the Container class
            _state.check_startable(st, cdir)
            _state.release_init(cdir, st["pid"], st.get("init_start"))
            cdir.close()
            return 0
    except BaseException:
        cdir.close()
        raise
    from pyrunc.container import Container

    c = Container(g.root, args[0], cdir, st)
    try:
        c.start()
    finally:
        c.close()
    return 0
