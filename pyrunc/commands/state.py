"""usage: pyrunc state ID

Print the OCI state of a container as JSON.
"""
from pyrunc import _os as os

FLAGS = {"--help": ("help", False), "-h": ("help", False)}
DEFAULTS = {"help": False}
NARGS = (1, 1)


def run(g, opts, args):
    from pyrunc import jsonfast
    from pyrunc.container import Container

    c = Container.load(g.root, args[0], lock=False)
    try:
        text = jsonfast.dumps(c.oci_state(), indent=2)
    finally:
        c.close()
    # runc: two-space indent and no final newline
    os.write(1, text.encode())
    return 0
