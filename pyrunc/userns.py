"""Rootless detection, as runc decides it (libcontainer/userns, rootless_linux.go).

pyrunc is "rootless" when it is not root, or when it is root only inside a user
namespace: rootless podman runs its runtime as uid 0 in a namespace of its own, where
/sys/fs/cgroup is not writable and mknod is refused.  Both facts are read at most
once per command and only by the verbs that need them.
"""
from pyrunc import _os as os

_in_userns = None


def running_in_userns():
    """True unless /proc/self/uid_map is the initial namespace's identity map
    ("0 0 4294967295"): the kernel shows that map only in the initial namespace."""
    global _in_userns
    if _in_userns is None:
        try:
            fd = os.open("/proc/self/uid_map", os.O_RDONLY | os.O_CLOEXEC)
            try:
                text = os.read(fd, 4096).decode("ascii", "replace")
            finally:
                os.close(fd)
        except OSError:
            # no /proc/self/uid_map: a kernel without user namespaces
            _in_userns = False
        else:
            _in_userns = text.split() != ["0", "0", "4294967295"]
    return _in_userns


def rootless():
    return os.geteuid() != 0 or running_in_userns()
