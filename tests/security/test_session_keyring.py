"""A container does not inherit its caller's session keyring (runc's default).

The attack: keys live in keyrings, and a process may read a key's payload when it
*possesses* the key, i.e. when the key hangs off one of its own keyrings.  A process
started by fork and exec keeps its parent's session keyring, so a container init that
inherited it (from containerd, a systemd service, a login shell) possessed every key
its caller had there: a login's kerberos or fscrypt keys, a service's secrets.

The canary: tests/security/keyjail gives the pyrunc command a fresh session keyring
holding one "user" key with the kernel's default permissions (possessor: all; owner:
view only) and writes the key's serial into the rootfs.  The container's root has the
same uid as the key's owner, so only possession would let it read the payload:
KEYCTL_READ with no buffer answers the payload's length, or -EACCES.

As runc, the init joins a new session keyring named `_ses.<id>` (made searchable by
its owner, or by anyone in a user namespace), `exec` joins that same keyring, and
`--no-new-keyring` keeps the caller's, as runc's flag does.
"""
import contextlib
import os
import subprocess
import tempfile

import pytest

from tests.conftest import PYRUNC, in_userns, requires_root

pytestmark = requires_root

EACCES = 13
PAYLOAD = "canary-payload"  # 14 bytes: what a read of a possessed key answers
KEYCTL_GET_KEYRING_ID, KEYCTL_READ = 0, 11
KEY_SPEC_SESSION_KEYRING = -3
KEY_USR_SEARCH, KEY_OTH_SEARCH = 0x00080000, 0x00000008


def in_jail(keyjail, rootfs, runtime, *args, serial_file="canary"):
    """pyrunc ARGS with a fresh session keyring holding the canary; the canary's
    serial is in the rootfs at /SERIAL_FILE.  Output goes to files: a created init
    inherits them, and a pipe would not reach EOF while it lives."""
    cmd = [keyjail, os.path.join(rootfs, serial_file), "pyrunc-canary", PAYLOAD,
           PYRUNC, "--root", runtime.root] + list(args)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.run(cmd, stdout=out, stderr=err, timeout=60, stdin=subprocess.DEVNULL)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(cmd, p.returncode, out.read().decode(), err.read().decode())


def read_canary(serial_file="canary"):
    """shell: KEYCTL_READ of the canary with no buffer (its length, or -errno)"""
    return "sysprobe keyctl:%d:$(cat /%s):0:0" % (KEYCTL_READ, serial_file)


def own_keyring_line(cid):
    """shell: the /proc/keys line of the session keyring the container joined"""
    return "grep ' _ses.%s: ' /proc/keys" % cid


@pytest.mark.parametrize("userns", [False, True], ids=["host-userns", "new-userns"])
def test_init_cannot_read_a_key_of_its_callers_session(runtime, box, keyjail, userns):
    # the default spec masks /proc/keys; here the container may look at its own keyrings
    box.config["linux"]["maskedPaths"].remove("/proc/keys")
    box.args("sh", "-c", "%s; %s" % (read_canary(), own_keyring_line(box.id)))
    with in_userns(box) if userns else contextlib.nullcontext(box.rootfs) as rootfs:
        r = in_jail(keyjail, rootfs, runtime, "run", "-b", box.path, box.id)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == str(-EACCES), "the container read its caller's key: %r" % r.stdout
    # its own keyring, searchable as runc makes it (by its owner; in a user
    # namespace by anyone, so that `exec`, still the host's root there, finds it)
    fields = lines[1].split()
    perm = int(fields[fields.index("perm") + 1], 16)
    assert perm & (KEY_OTH_SEARCH if userns else KEY_USR_SEARCH), lines[1]


def test_no_new_keyring_keeps_the_callers_session(runtime, box, keyjail):
    # runc's --no-new-keyring: the caller asked for its keyring to be shared
    box.args("sh", "-c", read_canary())
    r = in_jail(keyjail, box.rootfs, runtime, "run", "--no-new-keyring", "-b", box.path, box.id)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(len(PAYLOAD))]


@pytest.mark.parametrize("no_new_keyring", [False, True], ids=["default", "no-new-keyring"])
def test_exec_joins_the_containers_keyring(runtime, box, keyjail, no_new_keyring):
    # the init records the serial of its session keyring, then waits
    box.args("sh", "-c", "sysprobe keyctl:%d:%d:0 > /ses; exec sleep 100"
             % (KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING))
    flags = ["--no-new-keyring"] if no_new_keyring else []
    r = in_jail(keyjail, box.rootfs, runtime, "create", *flags, "-b", box.path, box.id, serial_file="init-canary")
    assert r.returncode == 0, r.stderr
    try:
        runtime.run("start", box.id, check=True)
        ses = os.path.join(box.rootfs, "ses")
        for _ in range(500):
            if os.path.exists(ses) and open(ses).read().strip():
                break
            subprocess.run(["sleep", "0.01"])
        init_ses = int(open(ses).read())
        # exec from a caller with a canary of its own
        r = in_jail(keyjail, box.rootfs, runtime, "exec", box.id, "sh", "-c",
                    "sysprobe keyctl:%d:%d:0; %s" % (KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING,
                                                     read_canary()))
        assert r.returncode == 0, r.stderr
        exec_ses, exec_read = (int(x) for x in r.stdout.split())
        if no_new_keyring:
            # as runc: nothing is joined, the exec'd process keeps its caller's keyring
            assert exec_ses != init_ses
            assert exec_read == len(PAYLOAD)
        else:
            assert exec_ses == init_ses > 0
            assert exec_read == -EACCES, "exec read its caller's key"
    finally:
        runtime.run("delete", "--force", box.id)
