"""usage: pyrunc start ID

Start a created container: its process execs the configured program.
"""
FLAGS = {"--help": ("help", False), "-h": ("help", False)}
DEFAULTS = {"help": False}
NARGS = (1, 1)


def run(g, opts, args):
    from pyrunc.container import Container

    c = Container.load(g.root, args[0])
    try:
        c.start()
    finally:
        c.close()
    return 0
