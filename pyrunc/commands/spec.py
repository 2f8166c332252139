"""usage: pyrunc spec [--bundle DIR] [--rootless]

Write a default config.json (runc's defaults) into the bundle directory.
"""
import os

FLAGS = {"--bundle": ("bundle", True), "-b": ("bundle", True), "--rootless": ("rootless", False),
         "--help": ("help", False), "-h": ("help", False)}
DEFAULTS = {"bundle": ".", "rootless": False, "help": False}
NARGS = (0, 0)

CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def default_config(rootless=False):
    """runc's `spec` output: what pyimage's bundles start from too"""
    from pyrunc import OCI_VERSION

    cfg = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(CAPS) for k in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "pyrunc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }
    if rootless:
        # runc's ToRootless: a user namespace mapping the caller, no network ns, /sys
        # bound from the host in place of a sysfs mount (a user namespace may not mount
        # sysfs without its own network namespace), no device rules
        linux = cfg["linux"]
        linux["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "user")]
        linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
        del linux["resources"]
        mounts = []
        for m in cfg["mounts"]:
            if m["type"] == "sysfs":
                m = {"destination": "/sys", "type": "none", "source": "/sys",
                     "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
            mounts.append(m)
        for m in mounts:
            if m["destination"] == "/dev/pts":
                m["options"] = [o for o in m["options"] if o != "gid=5"]
        cfg["mounts"] = mounts
    return cfg


def run(g, opts, args):
    from pyrunc import jsonfast
    from pyrunc.errors import PyruncError

    path = os.path.join(opts.bundle, "config.json")
    if os.path.exists(path):
        raise PyruncError("file %s exists: remove it first" % path)
    text = jsonfast.dumps(default_config(opts.rootless), indent=2) + "\n"
    try:
        with open(path, "x") as f:
            f.write(text)
    except OSError as err:
        raise PyruncError("write %s: %s" % (path, os.strerror(err.errno).lower())) from None
    return 0
