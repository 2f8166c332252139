"""pyrunc: an OCI container runtime with runc's command line.

The library API (what the CLI is a thin layer over):

    from pyrunc import Container
    c = Container.create("/run/pyrunc", "web", "/path/to/bundle")
    c.start(); c.kill(15); c.delete()

Imports stay lazy: every pyrunc command pays Python's start-up, so this module
imports nothing.
"""
__version__ = "0.1.0"
OCI_VERSION = "1.2.0"

__all__ = ["Container", "__version__"]

# True in the pyrunc command (cli.main), where no other thread forks while a container
# process is cloned: the clone may then leave Python's arenas out (Plan.leave_arenas_out)
_command = False


def __getattr__(name):
    if name == "Container":
        from pyrunc.container import Container
        return Container
    raise AttributeError(name)
