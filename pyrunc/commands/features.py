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
        "mountOptions": sorted(set(MOUNT_FLAGS) | set(PROPAGATION) | {"rro"}),
        "linux": {
            "namespaces": sorted(NAMESPACES),
            "capabilities": sorted(CAPABILITIES, key=CAPABILITIES.get),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                       "rdma": True},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
        },
        "annotations": {"io.github.pyrunc.version": __version__},
    }
    try:
        from pyrunc import seccomp

        doc["linux"]["seccomp"] = seccomp.features()
    except (ImportError, AttributeError):
        doc["linux"]["seccomp"] = {"enabled": False}
    return doc


def run(g, opts, args):
    from pyrunc import jsonfast

    os.write(1, (jsonfast.dumps(document(), indent=4) + "\n").encode())
    return 0
