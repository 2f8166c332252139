"""usage: pyrunc create [--bundle DIR] [--pid-file FILE] [--console-socket SOCK] [--no-pivot] [--no-new-keyring] [--preserve-fds N] ID

Create a container from a bundle; its process waits until `pyrunc start ID`.
"""
from pyrunc.errors import UsageError

FLAGS = {
    "--bundle": ("bundle", True), "-b": ("bundle", True),
    "--pid-file": ("pid_file", True), "--console-socket": ("console_socket", True),
    "--no-pivot": ("no_pivot", False), "--no-new-keyring": ("no_new_keyring", False),
    "--preserve-fds": ("preserve_fds", True), "--help": ("help", False), "-h": ("help", False),
}
DEFAULTS = {"bundle": ".", "pid_file": None, "console_socket": None, "no_pivot": False,
            "no_new_keyring": False, "preserve_fds": "0", "help": False}
NARGS = (1, 1)


def preserve_count(opts):
    try:
        n = int(opts.preserve_fds)
    except ValueError:
        raise UsageError("invalid value %r for --preserve-fds" % opts.preserve_fds) from None
    if n < 0:
        raise UsageError("invalid value %r for --preserve-fds" % opts.preserve_fds)
    return n


def run(g, opts, args):
    from pyrunc.container import Container

    c = Container.create(g.root, args[0], opts.bundle, pid_file=opts.pid_file,
                         console_socket=opts.console_socket, no_pivot=opts.no_pivot,
                         preserve_fds=preserve_count(opts), systemd_cgroup=g.systemd_cgroup,
                         no_new_keyring=opts.no_new_keyring)
    c.close()
    return 0
