import json
import os

import pytest

from pyrunc import spec
from pyrunc.commands.spec import default_config
from pyrunc.errors import ConfigError
from pyrunc.plan import parse_mount_options
from pyrunc.tables import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, \
    parse_signal


def test_default_config_parses():
    s = spec.parse(default_config(), "/b")
    assert s.root_path == "/b/rootfs"
    assert s.process.args == ["sh"]
    assert set(s.namespaces) == {"pid", "network", "ipc", "uts", "mount"}
    assert s.process.caps["bounding"] == (1 << 5) | (1 << 10) | (1 << 29)
    assert s.process.rlimits == [(7, 1024, 1024)]


def test_default_config_matches_runc_spec_shape():
    # same keys and mounts as `runc spec` (only the hostname and version differ)
    cfg = default_config()
    assert [m["destination"] for m in cfg["mounts"]] == [
        "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]


def test_rootless_config_has_user_namespace():
    cfg = default_config(rootless=True)
    s = spec.parse(cfg, "/b")
    assert "user" in s.namespaces and "network" not in s.namespaces
    assert s.uid_mappings[0].host_id == os.geteuid()


def test_load_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such directory"):
        spec.load(str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="not found"):
        spec.load(str(tmp_path))
    (tmp_path / "config.json").write_text("[1]")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        spec.load(str(tmp_path))


@pytest.mark.parametrize("path,value,msg", [
    (("process", "terminal"), "yes", "process.terminal: must be a boolean"),
    (("process", "user", "gid"), -1, "process.user.gid: out of range"),
    (("process", "rlimits"), [{"type": "RLIMIT_NOFILE", "soft": 5, "hard": 1}], "soft: must not exceed hard"),
    (("linux", "namespaces"), [{"type": "pid"}, {"type": "pid"}], "listed twice"),
    (("linux", "uidMappings"), [{"containerID": 0, "hostID": 1, "size": 1}], "need a user namespace"),
    (("hooks",), {"prestart": [{"path": "relative"}]}, "hooks.prestart[0].path"),
    (("linux", "devices"), [{"path": "/dev/x", "type": "q"}], "linux.devices[0].type"),
])
def test_field_errors_name_the_field(path, value, msg):
    cfg = default_config()
    d = cfg
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value
    with pytest.raises(ConfigError) as e:
        spec.parse(cfg, "/b")
    assert msg in str(e.value)
    assert str(e.value).startswith("config.json: ")


def test_relative_root_resolved_against_bundle():
    cfg = default_config()
    cfg["root"]["path"] = "../elsewhere/rootfs"
    assert spec.parse(cfg, "/b/x").root_path == "/b/elsewhere/rootfs"


def test_mount_options():
    flags, prop, data, attrs = parse_mount_options(["rbind", "ro", "nosuid", "nodev", "noexec", "rprivate",
                                                    "mode=755", "size=1m"])
    assert flags == MS_BIND | MS_REC | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
    assert prop == MS_PRIVATE | MS_REC
    assert data == "mode=755,size=1m"
    assert attrs == (0, 0)
    flags, _, _, _ = parse_mount_options(["ro", "rw"])
    assert flags == 0
    assert parse_mount_options(["rro", "rnosuid"])[3] == (0x1 | 0x2, 0)
    assert parse_mount_options(["rnoatime", "rrw"])[3] == (0x10, 0x70 | 0x1)


@pytest.mark.parametrize("text,num", [("9", 9), ("KILL", 9), ("SIGKILL", 9), ("kill", 9),
                                      ("usr1", 10), ("TERM", 15), ("RTMIN+1", 35)])
def test_signals(text, num):
    assert parse_signal(text) == num


def test_unknown_signal():
    with pytest.raises(ValueError, match='unknown signal "BOGUS"'):
        parse_signal("BOGUS")
    with pytest.raises(ValueError):
        parse_signal("99")
