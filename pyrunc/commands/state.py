"""usage: pyrunc state ID

Print the OCI state of a container as JSON.
"""
from pyrunc import _os as os

FLAGS = {"--help": ("help", False), "-h": ("help", False)}
DEFAULTS = {"help": False}
NARGS = (1, 1)


def run(g, opts, args):
    # pyrunc.state alone (not the Container class and the cgroup package): containerd,
    # podman and cri-o ask for the state of every container, many times
    from pyrunc import state as _state

    cdir = _state.ContainerDir.open(g.root, args[0], lock=False)
    try:
        st = cdir.read()
        # after the read (which loads it): a container that does not exist costs no _json
        from pyrunc import jsonfast

        text = jsonfast.dumps(_state.oci_state(cdir.id, st, _state.status_of(st, cdir)), indent=2)
    finally:
        cdir.close()
    # runc: two-space indent and no final newline
    os.write(1, text.encode())
    return 0
