"""usage: pyrunc restore [options] ID

Restore a container from a checkpoint with criu.  It is then an ordinary container
(state, exec, kill, delete).  In the foreground, wait for it, delete it and exit with
its status; with --detach, return once it runs.

  --image-path DIR          the checkpoint (default ./checkpoint)
  --work-path DIR           criu's work files and restore.log (default: the image dir)
  --bundle, -b DIR          the bundle (default .)
  --detach, -d              do not wait for the container
  --pid-file FILE           write the restored init's pid there
  --console-socket SOCK     receives the pty master (process.terminal)
  --no-subreaper, --no-pivot   accepted (criu restores the mounts itself)
  --tcp-established, --ext-unix-sk, --shell-job, --file-locks, --auto-dedup, --lazy-pages
  --manage-cgroups-mode soft|full|strict
  --empty-ns network
  --lsm-profile TYPE:NAME, --lsm-mount-context CONTEXT
"""
FLAGS = {
    "--console-socket": ("console_socket", True), "--image-path": ("image_path", True),
    "--work-path": ("work_path", True), "--tcp-established": ("tcp_established", False),
    "--ext-unix-sk": ("ext_unix_sk", False), "--shell-job": ("shell_job", False),
    "--file-locks": ("file_locks", False), "--manage-cgroups-mode": ("manage_cgroups_mode", True),
    "--bundle": ("bundle", True), "-b": ("bundle", True), "--detach": ("detach", False),
    "-d": ("detach", False), "--pid-file": ("pid_file", True), "--no-subreaper": ("no_subreaper", False),
    "--no-pivot": ("no_pivot", False), "--empty-ns": ("empty_ns", True), "--auto-dedup": ("auto_dedup", False),
    "--lazy-pages": ("lazy_pages", False), "--lsm-profile": ("lsm_profile", True),
    "--lsm-mount-context": ("lsm_mount_context", True), "--help": ("help", False), "-h": ("help", False),
}
DEFAULTS = {"console_socket": None, "image_path": None, "work_path": None, "tcp_established": False,
            "ext_unix_sk": False, "shell_job": False, "file_locks": False, "manage_cgroups_mode": None,
            "bundle": None, "detach": False, "pid_file": None, "no_subreaper": False, "no_pivot": False,
            "empty_ns": None, "auto_dedup": False, "lazy_pages": False, "lsm_profile": None,
            "lsm_mount_context": None, "parent_path": None, "help": False}
REPEATED = ("empty_ns",)
NARGS = (1, 1)


def run(g, opts, args):
    from pyrunc import criu

    return criu.restore(g, opts, args[0])
