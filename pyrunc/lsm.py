"""AppArmor profiles and SELinux labels: is the LSM on, is the label usable, what to write.

The container program gets its label at its execve, from its own
/proc/<pid>/attr/.../exec file (the exec stub writes it: csrc/child/lsm.c says why and
how the file is reached safely).  Here, in the parent, before anything is created:
decide whether there is anything to apply, and refuse what the kernel would refuse
at the exec (after `start`, where an error could no longer fail `create`).

As runc: a profile or label for an LSM that is not on is ignored (callers ask for
them only on hosts with that LSM), and SELinux without a loaded policy counts as off
(its only context is then "kernel").  Imported only when a config names a label.
"""
import errno
import os

from pyrunc.errors import ConfigError

PROC_ATTR = "/proc/self/attr"
AA_PROFILES = "/sys/kernel/security/apparmor/profiles"
SELINUXFS = "/sys/fs/selinux"


def _read(path):
    with open(path, "rb") as f:
        return f.read().rstrip(b"\0\n").decode(errors="replace")


def apparmor_on():
    # the per-LSM directory (Linux >= 5.1) reads only when AppArmor is active
    # (EINVAL when it is built in but another LSM was chosen at boot)
    try:
        _read(PROC_ATTR + "/apparmor/current")
        return True
    except FileNotFoundError:
        pass
    except OSError:
        return False
    try:  # older kernels: the module parameter, as runc reads it
        return _read("/sys/module/apparmor/parameters/enabled")[:1] == "Y"
    except OSError:
        return False


def selinux_on():
    # selinuxfs exists only with SELinux active; with no policy loaded every task is
    # "kernel" and no label can be given (go-selinux's GetEnabled says the same)
    if not os.path.exists(SELINUXFS + "/enforce"):
        return False
    try:
        return _read(PROC_ATTR + "/current") != "kernel"
    except OSError:
        return False


def loaded_profiles(path=AA_PROFILES):
    """names of the loaded AppArmor profiles ("name (mode)" lines), or None if unknown"""
    try:
        text = _read(path)
    except OSError:
        return None
    return {line.rsplit(" (", 1)[0] for line in text.splitlines() if line}


def check_context(label, what):
    """SELinux's own validity check of a context (libselinux's security_check_context)"""
    try:
        fd = os.open(SELINUXFS + "/context", os.O_RDWR | os.O_CLOEXEC)
    except OSError as err:
        raise ConfigError("apply selinux %s %s: %s" % (what, label, os.strerror(err.errno).lower())) from None
    try:
        os.write(fd, label.encode())
    except OSError as err:
        raise ConfigError("apply selinux %s %s: %s" % (
            what, label, "invalid context" if err.errno == errno.EINVAL else os.strerror(err.errno).lower())) from None
    finally:
        os.close(fd)


def exec_attr(proc):
    """(directory under /proc/<pid>/, file, value) for the exec stub, and the label of the
    session keyring (SELinux: the process's own, as runc sets it; else None), or None"""
    if proc.apparmor_profile and apparmor_on():
        name = proc.apparmor_profile
        loaded = loaded_profiles()
        # unconfined is no profile (runc and the kernel accept it)
        if loaded is not None and name != "unconfined" and name not in loaded:
            raise ConfigError("apply apparmor profile %s: profile is not loaded" % name)
        d = "attr/apparmor" if os.path.isdir(PROC_ATTR + "/apparmor") else "attr"
        return d, "exec", "exec " + name, None
    if proc.selinux_label and selinux_on():
        check_context(proc.selinux_label, "label")
        return "attr", "exec", proc.selinux_label, proc.selinux_label
    return None


def mount_label(spec):
    """linux.mountLabel where SELinux is on (else ignored), checked"""
    if not spec.mount_label or not selinux_on():
        return None
    check_context(spec.mount_label, "mount label")
    return spec.mount_label
