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
        # containerd's shim runs `delete --force` again after every delete, on a
        # container now gone: that costs one failed open
        cdir = _state.ContainerDir.open(g.root, args[0], lock=False)
        try:
            st = _state.lock_state(cdir, opts.force)
        except BaseException:
            cdir.close()
            raise
    except NotFoundError:
        if opts.force:
            # idempotent cleanup: podman and containerd delete --force after a failed create
            _remove_leftover(g.root, args[0])
            return 0
        raise
    try:
        if _delete_stopped(cdir, st):
            return 0
    except BaseException:
        cdir.close()
        raise
    from pyrunc.container import Container

    c = Container(g.root, args[0], cdir, st)
    try:
        c.delete(force=opts.force)
    finally:
        c.close()
    return 0


def _delete_stopped(cdir, st):
    """Container.delete of a stopped container that needs nothing but the removal of
    its cgroup directories and state (every container a shim deletes after its exit):
    without the Container class and the cgroups package.  False, having done
    nothing, for anything else: a running, created or half-created container, one
    with poststop hooks, without a mount namespace (its rootfs bind is detached) or
    without a pid namespace (children of its init may outlive it: killed through the
    cgroup), or with a systemd or fake cgroup record."""
    from pyrunc import state as _state

    if st.get("creating") or st.get("hooks", {}).get("poststop"):
        return False
    ns = st.get("namespaces", ("mount",))
    if "mount" not in ns:
        return False
    cg = st.get("cgroup")
    if cg and ("pid" not in ns or cg.get("systemd") or "h" not in cg or cg.get("prefix")):
        return False
    if _state.status_of(st, cdir) != "stopped":
        return False
    if cg:
        from pyrunc import cgremove

        err = cgremove.destroy(cg, lambda: _kill_all(cg))
        if err:
            from pyrunc.errors import PyruncError

            raise PyruncError(err)
    cdir.remove()
    cdir.close()
    return True


def _kill_all(cg):
    """tasks left in a cgroup that stays busy (rare): Manager.destroy kills them once"""
    from pyrunc.cgroups import load_manager

    load_manager(cg).kill_all(9)


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
