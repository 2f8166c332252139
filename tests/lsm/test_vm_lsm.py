"""The LSM modes of tests/vm/run-vm: the guest kernel runs the major LSM it was asked for."""
import os

import pytest

MODE = os.environ.get("PYRUNC_VM")


def _active_lsms():
    try:
        with open("/sys/kernel/security/lsm") as f:
            return f.read().strip().split(",")
    except OSError:
        return None


@pytest.mark.skipif(MODE not in ("apparmor", "selinux"), reason="not in an LSM VM (make test-lsm)")
def test_vm_runs_the_requested_lsm():
    lsms = _active_lsms()
    assert lsms is not None, "securityfs is not mounted in the guest"
    assert MODE in lsms
    other = {"apparmor": "selinux", "selinux": "apparmor"}[MODE]
    assert other not in lsms  # only one major LSM at a time
