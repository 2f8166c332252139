"""usage: pyrunc exec [options] ID [COMMAND [ARGS...]]

Run a process in a running container.  --process FILE gives an OCI process JSON;
otherwise COMMAND runs with the container's process settings and these options:
  --tty, -t  --cwd DIR  --env, -e K=V  --user, -u UID[:GID]  --additional-gids, -g GID
  --cap CAP  --no-new-privs  --detach, -d  --pid-file FILE  --console-socket SOCK
  --preserve-fds N  --apparmor P  --process-label L
Foreground: exits with the process's status (128+signal when killed, 255 if it
could not be started); with --tty and no --console-socket our terminal is proxied.
--apparmor / --process-label become the process's AppArmor profile / SELinux label
at its execve where that LSM is on, and are ignored where it is off (as runc).
"""
FLAGS = {
    "--process": ("process", True), "-p": ("process", True),
    "--tty": ("tty", False), "-t": ("tty", False),
    "--cwd": ("cwd", True), "--env": ("env", True), "-e": ("env", True),
    "--user": ("user", True), "-u": ("user", True),
    "--additional-gids": ("additional_gids", True), "-g": ("additional_gids", True),
    "--cap": ("cap", True), "-c": ("cap", True), "--no-new-privs": ("no_new_privs", False),
    "--detach": ("detach", False), "-d": ("detach", False), "--pid-file": ("pid_file", True),
    "--console-socket": ("console_socket", True), "--preserve-fds": ("preserve_fds", True),
    "--apparmor": ("apparmor", True), "--process-label": ("process_label", True),
    "--ignore-paused": ("ignore_paused", False), "--cgroup": ("cgroup", True),
    "--help": ("help", False), "-h": ("help", False),
}
DEFAULTS = {"process": None, "tty": False, "cwd": None, "env": None, "user": None,
            "additional_gids": None, "cap": None, "no_new_privs": False, "detach": False,
            "pid_file": None, "console_socket": None, "preserve_fds": "0", "apparmor": None,
            "process_label": None, "ignore_paused": False, "cgroup": None, "help": False}
NARGS = (1, 1 << 20)
# flags that may be repeated
REPEATED = ("env", "cap", "additional_gids")
# everything after the container id is the command's own argv, flags included
STOP_AFTER = 1


def run(g, opts, args):
    from pyrunc import process as _process
    from pyrunc.commands.create import preserve_count
    from pyrunc.errors import PyruncError, UsageError

    cid, cmd = args[0], args[1:]
    if opts.process is None and not cmd:
        raise UsageError("exec needs a command or --process")
    if opts.cgroup is not None:
        # runc's exec into a sub-cgroup of the container: better refused than ignored
        raise UsageError("exec --cgroup %s: sub-cgroups are not supported by pyrunc" % opts.cgroup)
    proc = None
    flags = None
    if opts.process is not None:
        proc = _process.process_from_file(opts.process)
    else:
        flags = (cmd, opts)
    try:
        return _process.exec_process(g.root, cid, proc, detach=opts.detach, pid_file=opts.pid_file,
                                     console_socket=opts.console_socket,
                                     preserve_fds=preserve_count(opts), proc_from_flags=flags)
    except PyruncError as err:
        if opts.detach:
            raise
        # runc: a foreground exec that could not start exits 255
        from pyrunc import log

        log.get().error(str(err))
        return 255
