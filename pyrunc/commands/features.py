"""usage: pyrunc features

Print the OCI runtime features document: what this build of pyrunc implements.
"""
import os

FLAGS = {"--help": ("help", False), "-h": ("help", False)}
DEFAULTS = {"help": False}
NARGS = (0, 0)


def document():
    from pyrunc import OCI_VERSION, __version__
    from pyrunc.tables import CAPABILITIES, MOUNT_FLAGS, NAMESPACES, PROPAGATION

    doc = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
                  "poststart", "poststop"],
        "mountOptions": sorted(set(MOUNT_FLAGS) | set(PROPAGATION) | {"rro", "tmpcopyup", "idmap", "ridmap"}),
        "linux": {
            "namespaces": sorted(NAMESPACES),
            "capabilities": sorted(CAPABILITIES, key=CAPABILITIES.get),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                       "rdma": True},
            "apparmor": {"enabled": True},
            "selinux": {"enabled": True},
            "intelRdt": {"enabled": False},
            # idmapped binds: open_tree + mount_setattr(MOUNT_ATTR_IDMAP), Linux 5.12
            "mountExtensions": {"idmap": {"enabled": _kernel_at_least(5, 12)}},
        },
        "annotations": {"io.github.pyrunc.version": __version__},
    }
    try:
        from pyrunc import seccomp

        doc["linux"]["seccomp"] = seccomp.features()
    except (ImportError, AttributeError):
        doc["linux"]["seccomp"] = {"enabled": False}
    return doc


def _kernel_at_least(major, minor):
    try:
        v = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    except ValueError:
        return False
    return v >= (major, minor)


def run(g, opts, args):
    from pyrunc import jsonfast

    os.write(1, (jsonfast.dumps(document(), indent=4) + "\n").encode())
    return 0
