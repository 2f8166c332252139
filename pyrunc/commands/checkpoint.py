"""usage: pyrunc checkpoint [options] ID

Checkpoint a running container with criu (`criu swrk`, as runc does).  The container
is stopped and deleted afterwards unless --leave-running or --pre-dump.

  --image-path DIR          where the images go (default ./checkpoint)
  --work-path DIR           criu's work files and dump.log (default: the image dir)
  --parent-path DIR         a previous pre-dump, relative to --image-path
  --leave-running           keep the container running
  --pre-dump                memory only, keep running (a parent for a later dump)
  --tcp-established, --ext-unix-sk, --shell-job, --file-locks, --auto-dedup
  --lazy-pages, --status-fd FD, --page-server ADDRESS:PORT
  --manage-cgroups-mode soft|full|strict
  --empty-ns network
"""
FLAGS = {
    "--image-path": ("image_path", True), "--work-path": ("work_path", True),
    "--parent-path": ("parent_path", True), "--leave-running": ("leave_running", False),
    "--tcp-established": ("tcp_established", False), "--ext-unix-sk": ("ext_unix_sk", False),
    "--shell-job": ("shell_job", False), "--lazy-pages": ("lazy_pages", False),
    "--status-fd": ("status_fd", True), "--page-server": ("page_server", True),
    "--file-locks": ("file_locks", False), "--pre-dump": ("pre_dump", False),
    "--manage-cgroups-mode": ("manage_cgroups_mode", True), "--empty-ns": ("empty_ns", True),
    "--auto-dedup": ("auto_dedup", False), "--help": ("help", False), "-h": ("help", False),
}
DEFAULTS = {"image_path": None, "work_path": None, "parent_path": None, "leave_running": False,
            "tcp_established": False, "ext_unix_sk": False, "shell_job": False, "lazy_pages": False,
            "status_fd": None, "page_server": None, "file_locks": False, "pre_dump": False,
            "manage_cgroups_mode": None, "empty_ns": None, "auto_dedup": False, "help": False}
REPEATED = ("empty_ns",)
NARGS = (1, 1)


def run(g, opts, args):
    from pyrunc.errors import UsageError

    if opts.status_fd is not None and not opts.status_fd.lstrip("-").isdigit():
        raise UsageError("invalid value %r for --status-fd" % opts.status_fd)
    from pyrunc import criu

    return criu.checkpoint(g, opts, args[0])
