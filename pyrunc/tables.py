"""Name <-> number tables, built once at import (dict literals: no parsing, no enum).

Values are the Linux ABI (include/uapi); they do not change between kernels, only
grow, so hard-coding them is both correct and the cheapest way to have them.
"""

CAPABILITIES = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
    "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
    "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

# CLONE_NEW* flags, and the /proc/<pid>/ns/<name> file of each namespace type
NAMESPACES = {
    "mount": (0x00020000, "mnt"),
    "uts": (0x04000000, "uts"),
    "ipc": (0x08000000, "ipc"),
    "user": (0x10000000, "user"),
    "pid": (0x20000000, "pid"),
    "network": (0x40000000, "net"),
    "cgroup": (0x02000000, "cgroup"),
    "time": (0x00000080, "time"),
}
# order of setns() when joining: the time namespace first, while we are still root of
# the host's user namespace (create unshares it before the user namespace exists, so
# the host's owns it, and from inside the container's we would lack the rights);
# then the user namespace (it grants the rights for the others); the mount namespace
# last (after it, host paths may no longer resolve, although we join by fds opened
# beforehand)
JOIN_ORDER = ("time", "user", "ipc", "uts", "network", "pid", "cgroup", "mount")

# mount(2) flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

# option -> (clear?, flag), as runc's parseMountOptions
MOUNT_FLAGS = {
    "async": (True, MS_SYNCHRONOUS), "atime": (True, MS_NOATIME), "bind": (False, MS_BIND),
    "defaults": (False, 0), "dev": (True, MS_NODEV), "diratime": (True, MS_NODIRATIME),
    "dirsync": (False, MS_DIRSYNC), "exec": (True, MS_NOEXEC), "mand": (False, MS_MANDLOCK),
    "noatime": (False, MS_NOATIME), "nodev": (False, MS_NODEV), "nodiratime": (False, MS_NODIRATIME),
    "noexec": (False, MS_NOEXEC), "nomand": (True, MS_MANDLOCK), "norelatime": (True, MS_RELATIME),
    "nostrictatime": (True, MS_STRICTATIME), "nosuid": (False, MS_NOSUID),
    "nosymfollow": (False, MS_NOSYMFOLLOW), "rbind": (False, MS_BIND | MS_REC),
    "relatime": (False, MS_RELATIME), "remount": (False, MS_REMOUNT), "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY), "strictatime": (False, MS_STRICTATIME), "suid": (True, MS_NOSUID),
    "sync": (False, MS_SYNCHRONOUS), "lazytime": (False, MS_LAZYTIME),
    "nolazytime": (True, MS_LAZYTIME), "silent": (False, MS_SILENT), "loud": (True, MS_SILENT),
}

# recursive mount attributes (mount_setattr, AT_RECURSIVE): option -> (set, clear)
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000
RECURSIVE_ATTRS = {
    "rro": (MOUNT_ATTR_RDONLY, 0), "rrw": (0, MOUNT_ATTR_RDONLY),
    "rnosuid": (MOUNT_ATTR_NOSUID, 0), "rsuid": (0, MOUNT_ATTR_NOSUID),
    "rnodev": (MOUNT_ATTR_NODEV, 0), "rdev": (0, MOUNT_ATTR_NODEV),
    "rnoexec": (MOUNT_ATTR_NOEXEC, 0), "rexec": (0, MOUNT_ATTR_NOEXEC),
    "rnodiratime": (MOUNT_ATTR_NODIRATIME, 0), "rdiratime": (0, MOUNT_ATTR_NODIRATIME),
    "rrelatime": (MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME),
    "rnorelatime": (0, MOUNT_ATTR__ATIME),
    "rnoatime": (MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME),
    "ratime": (0, MOUNT_ATTR__ATIME),
    "rstrictatime": (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME),
    "rnostrictatime": (0, MOUNT_ATTR__ATIME),
    "rnosymfollow": (MOUNT_ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, MOUNT_ATTR_NOSYMFOLLOW),
}

PROPAGATION = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}


def _signals():
    # _signal is the C module behind `signal`; `signal` itself builds IntEnums (slow)
    import _signal

    table = {}
    for name in dir(_signal):
        if name.startswith("SIG") and not name.startswith("SIG_") and name != "SIGRTMIN" \
                and name != "SIGRTMAX":
            table[name[3:]] = getattr(_signal, name)
    rtmin, rtmax = _signal.SIGRTMIN, _signal.SIGRTMAX
    table["RTMIN"] = rtmin
    table["RTMAX"] = rtmax
    for i in range(1, rtmax - rtmin):
        table["RTMIN+%d" % i] = rtmin + i
        table["RTMAX-%d" % i] = rtmax - i
    return table, _signal.NSIG


def parse_signal(text):
    """runc's rules: a number, a name, SIG-prefixed, any case ("9", "KILL", "sigkill", "usr1").
    The table is built here, not at import: create imports this module for its other
    tables and has no signal to parse."""
    table, nsig = _signals()
    if text.isdigit():
        num = int(text)
        if 0 <= num < nsig:
            return num
    else:
        name = text.upper()
        if name.startswith("SIG"):
            name = name[3:]
        if name in table:
            return table[name]
    raise ValueError('unknown signal "%s"' % text)
