"""usage: pyrunc delete [--force] ID

Delete a stopped (or created) container: poststop hooks, cgroups, state.  --force
kills a running one first, and succeeds when the container does not exist.
"""
FLAGS = {"--force": ("force", False), "-f": ("force", False), "--help": ("help", False), "-h": ("help", False)}
DEFAULTS = {"force": False, "help": False}
NARGS = (1, 1)


def run(g, opts, args):
    from pyrunc import state as _state
    from pyrunc.errors import NotFoundError

    try:
        # a cheap look first: containerd's shim runs `delete --force` again after every
        # delete, on a container now gone, and then Container is never imported
        _state.ContainerDir.open(g.root, args[0], lock=False).close()
        from pyrunc.container import Container

        c = Container.load(g.root, args[0], force=opts.force)
    except NotFoundError:
        if opts.force:
            # idempotent cleanup: podman and containerd delete --force after a failed create
            _remove_leftover(g.root, args[0])
            return 0
        raise
    try:
        c.delete(force=opts.force)
    finally:
        c.close()
    return 0


def _remove_leftover(root, cid):
    """a state directory without state.json (a create killed half-way): remove it"""
    from pyrunc import _os as os

    from pyrunc.state import check_id

    check_id(cid)
    path = os.join(root, cid)
    try:
        for name in os.listdir(path):
            os.unlink(os.join(path, name))
        os.rmdir(path)
    except (FileNotFoundError, NotADirectoryError):
        pass
