"""check_lsm: a profile or label is accepted where its LSM is absent and refused where
it is present (pyrunc cannot apply it yet).  The sysfs tree is a fake in tmp_path."""
import types

import pytest

from pyrunc.errors import ConfigError
from pyrunc.process import check_lsm


def proc(apparmor=None, label=None):
    return types.SimpleNamespace(apparmor_profile=apparmor, selinux_label=label)


def fake_sysfs(tmp_path, apparmor=None, selinux=False):
    if apparmor is not None:
        d = tmp_path / "module/apparmor/parameters"
        d.mkdir(parents=True)
        (d / "enabled").write_text(apparmor + "\n")
    if selinux:
        d = tmp_path / "fs/selinux"
        d.mkdir(parents=True)
        (d / "enforce").write_text("1")
    return str(tmp_path)


def test_absent_lsm_accepts(tmp_path):
    check_lsm(proc("docker-default", "system_u:system_r:container_t:s0"), fake_sysfs(tmp_path))


def test_apparmor_module_loaded_but_disabled_accepts(tmp_path):
    check_lsm(proc("docker-default"), fake_sysfs(tmp_path, apparmor="N"))


def test_enabled_apparmor_refuses_a_profile(tmp_path):
    with pytest.raises(ConfigError, match="apparmor profile docker-default: not supported"):
        check_lsm(proc("docker-default"), fake_sysfs(tmp_path, apparmor="Y"))
    # no profile asked: nothing to refuse
    check_lsm(proc(), str(tmp_path))


def test_enabled_selinux_refuses_a_label(tmp_path):
    with pytest.raises(ConfigError, match="selinux label .*: not supported"):
        check_lsm(proc(label="system_u:system_r:container_t:s0"), fake_sysfs(tmp_path, selinux=True))
    check_lsm(proc(apparmor="x"), str(tmp_path))
