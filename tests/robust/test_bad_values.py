"""The cases a held-out harness found, each named: one line naming the field."""
import json
import os

import pytest

from pyrunc import jsonfast, spec
from pyrunc.errors import ConfigError
from tests.conftest import cgroup_dirs, mounts_under, requires_root


def _base():
    return {"ociVersion": "1.0.2", "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "env": ["PATH=/bin"]},
            "hostname": "h",
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"]}],
            "hooks": {"poststart": [{"path": "/bin/true", "args": ["true"]}]},
            "linux": {"namespaces": [{"type": "uts"}, {"type": "mount"}],
                      "devices": [{"path": "/dev/x", "type": "c", "major": 1, "minor": 3}]}}


def _refused(mutate, *phrases):
    cfg = _base()
    mutate(cfg)
    # through the text, as create reads it
    data = json.dumps(cfg).encode()
    with pytest.raises(ConfigError) as ei:
        raw = jsonfast.loads(data)
        spec.parse(raw, "/b", check_text=b"\\u" in data)
    msg = str(ei.value)
    assert "\n" not in msg
    for p in phrases:
        assert p in msg, (p, msg)
    return msg


def test_base_is_valid():
    spec.parse(_base(), "/b")


@pytest.mark.parametrize("mutate,field", [
    (lambda c: c["process"]["args"].append("a\x00b"), "process.args[1]"),
    (lambda c: c["process"]["env"].append("A=\x00"), "process.env[1]"),
    (lambda c: c["process"].__setitem__("cwd", "/tmp\x00/x"), "process.cwd"),
    (lambda c: c.__setitem__("hostname", "h\x00"), "hostname"),
    (lambda c: c["mounts"][0].__setitem__("destination", "/proc\x00x"), "mounts[0].destination"),
    (lambda c: c["mounts"][0].__setitem__("source", "p\x00"), "mounts[0].source"),
    (lambda c: c["mounts"][0]["options"].append("ro\x00"), "mounts[0].options[1]"),
    (lambda c: c["hooks"]["poststart"][0].__setitem__("path", "/bin/true\x00x"), "hooks.poststart[0].path"),
    (lambda c: c["hooks"]["poststart"][0]["args"].append("\x00"), "hooks.poststart[0].args[1]"),
    (lambda c: c["root"].__setitem__("path", "rootfs\x00"), "root.path"),
    (lambda c: c["linux"]["devices"][0].__setitem__("path", "/dev/x\x00"), "linux.devices[0].path"),
    (lambda c: c.__setitem__("annotations", {"a\x00": "b"}), "annotations"),
])
def test_nul_refused(mutate, field):
    _refused(mutate, "config.json: " + field, "NUL")


@pytest.mark.parametrize("mutate,field", [
    (lambda c: c.__setitem__("hostname", "\ud800"), "hostname"),
    (lambda c: c["process"]["args"].append("x\udfff"), "process.args[1]"),
    (lambda c: c["mounts"][0]["options"].append("\ud800"), "mounts[0].options[1]"),
    (lambda c: c.__setitem__("annotations", {"k": "\udc80"}), "annotations.k"),
])
def test_surrogate_refused(mutate, field):
    _refused(mutate, "config.json: " + field, "surrogate")


def test_surrogate_pair_is_fine():
    cfg = _base()
    cfg["hostname"] = "\U0001f600"
    data = json.dumps(cfg).encode()  # "\ud83d\ude00": a pair, one character
    assert spec.parse(jsonfast.loads(data), "/b", check_text=True).hostname == "\U0001f600"


@pytest.mark.parametrize("mutate,phrase", [
    (lambda c: c["linux"]["devices"][0].__setitem__("major", 4294967296), "linux.devices[0].major: out of range"),
    (lambda c: c["linux"]["devices"][0].__setitem__("minor", -1), "linux.devices[0].minor: out of range"),
    (lambda c: c["linux"]["devices"][0].__setitem__("uid", 2 ** 32), "linux.devices[0].uid: out of range"),
    (lambda c: c["process"].__setitem__("consoleSize", {"height": 65536, "width": 1}),
     "process.consoleSize.height: out of range"),
    (lambda c: c["hooks"]["poststart"][0].__setitem__("timeout", 2 ** 63), "hooks.poststart[0].timeout: out of range"),
    (lambda c: c["linux"].__setitem__("resources", {"cpu": 4294967295}), "linux.resources.cpu: must be an object"),
    (lambda c: c["linux"].__setitem__("resources", {"pids": {"limit": " "}}),
     "linux.resources.pids.limit: must be an integer"),
    (lambda c: c["linux"].__setitem__("resources", {"memory": {"limit": 2 ** 63}}),
     "linux.resources.memory.limit: out of range"),
    (lambda c: c["linux"].__setitem__("resources", {"cpu": {"shares": -1}}), "linux.resources.cpu.shares: out of range"),
    (lambda c: c["linux"].__setitem__("resources", {"blockIO": {"weight": 65536}}),
     "linux.resources.blockIO.weight: out of range"),
    (lambda c: c["linux"].__setitem__("resources", {"devices": 1}), "linux.resources.devices: must be an array"),
    (lambda c: c["linux"].__setitem__("resources", {"devices": [{"allow": "yes"}]}),
     "linux.resources.devices[0].allow: must be a boolean"),
    (lambda c: c["linux"].__setitem__("resources", {"blockIO": {"weightDevice": [{"major": 1.5}]}}),
     "linux.resources.blockIO.weightDevice[0].major: must be an integer"),
    (lambda c: c["linux"].__setitem__("resources", {"unified": {"pids.max": 1}}),
     "linux.resources.unified.pids.max: must be a string"),
    (lambda c: c["linux"].__setitem__("timeOffsets", {"monotonic": {"secs": "x"}}),
     "linux.timeOffsets.monotonic.secs: must be an integer"),
    (lambda c: c["linux"].__setitem__("timeOffsets", {"realtime": {"secs": 1}}), "linux.timeOffsets.realtime"),
])
def test_range_and_type(mutate, phrase):
    c = _base()
    c["linux"]["namespaces"].append({"type": "time"})
    mutate(c)
    with pytest.raises(ConfigError) as ei:
        spec.parse(c, "/b")
    assert phrase in str(ei.value), str(ei.value)


@pytest.mark.parametrize("text,phrase", [
    ('{"ociVersion": "1.0.2", "process": {"args": ["sh"', "expecting ',' delimiter"),
    ('{"ociVersion": "1.0.2", "hostname": "abc', "unterminated string"),
    ('{"a" 1}', "expecting ':' delimiter"),
    ('[' * 100000 + ']' * 100000, "nesting too deep"),
    ('{"a":' * 50000 + '1' + '}' * 50000, "nesting too deep"),
])
def test_json_errors(text, phrase):
    with pytest.raises(jsonfast.JSONError) as ei:
        jsonfast.loads(text.encode())
    assert phrase in str(ei.value)


def test_deep_but_parsable_document_walks_iteratively():
    deep = []
    for _ in range(900):
        deep = [deep]
    cfg = _base()
    cfg["x-vendor"] = [deep, "\x00"]
    with pytest.raises(ConfigError) as ei:
        spec.parse(cfg, "/b")
    assert "x-vendor[1]" in str(ei.value)


# ---- through the command line ----


def _one_line(r):
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr, r.stderr


@requires_root
@pytest.mark.parametrize("text,phrase", [
    (None, "invalid JSON"),  # truncated: filled in below
    ('{"ociVersion":' + '[' * 10000 + ']' * 10000 + '}', "nesting too deep"),
])
def test_cli_bad_json(runtime, bundle, text, phrase):
    if text is None:
        text = json.dumps(bundle.config)[:-40]
    with open(bundle.config_path, "w") as f:
        f.write(text)
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    _one_line(r)
    assert phrase in r.stderr
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))
    assert cgroup_dirs(bundle.id) == [] and mounts_under(bundle.path) == []


@requires_root
def test_cli_hostname_surrogate_and_major(runtime, bundle):
    for key, value, phrase in (("hostname", "\ud800", "config.json: hostname: must not contain a lone surrogate"),
                               ("linux", None, "config.json: linux.devices[0].major: out of range")):
        if key == "linux":
            bundle.config["linux"]["devices"] = [{"path": "/dev/x", "type": "c", "major": 4294967296, "minor": 0}]
            bundle.config.pop("hostname", None)
        else:
            bundle.config[key] = value
        bundle.save()
        r = runtime.run("create", "-b", bundle.path, bundle.id)
        _one_line(r)
        assert r.stderr.startswith(phrase), r.stderr
        assert cgroup_dirs(bundle.id) == []


@requires_root
def test_cli_seccomp_empty_default_action_means_no_filter(runtime, bundle):
    # runc: no defaultAction and no syscalls is no seccomp at all
    bundle.config["linux"]["seccomp"] = {"defaultAction": ""}
    bundle.args("true")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


@requires_root
def test_cli_unknown_capability_warning_only_on_success(runtime, bundle):
    bundle.config["process"]["capabilities"]["bounding"].append("CAP_BOGUS")
    bundle.config["process"]["args"] = ["\x00"]
    bundle.save()
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    _one_line(r)
    assert "process.args[0]" in r.stderr
    bundle.args("true")
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    assert "unknown capability CAP_BOGUS ignored" in r.stderr
    runtime.run("delete", "--force", bundle.id, check=True)


@requires_root
def test_cli_exec_process_and_update_resources(runtime, bundle, tmp_path):
    bundle.args("sleep", "30")
    runtime.run("run", "-d", "-b", bundle.path, bundle.id, check=True)
    try:
        pf = tmp_path / "p.json"
        for proc, phrase in (({"args": ["sh", "a\x00"], "cwd": "/"}, "process.args[1]: must not contain a NUL"),
                             ({"args": ["sh"], "cwd": "/\ud800"}, "process.cwd: must not contain a lone surrogate"),
                             ({"args": ["sh"], "cwd": "/", "consoleSize": {"width": 2 ** 40}},
                              "process.consoleSize.width: out of range")):
            pf.write_text(json.dumps(proc))
            r = runtime.run("exec", "--process", str(pf), bundle.id)
            assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
            assert phrase in r.stderr and "internal error" not in r.stderr, r.stderr
        pf.write_text('{"args": ["sh"')
        r = runtime.run("exec", "--process", str(pf), bundle.id)
        assert r.returncode == 1 and "invalid JSON" in r.stderr and "internal" not in r.stderr, r.stderr
        rf = tmp_path / "r.json"
        for res, phrase in (({"memory": {"limit": 2 ** 64}}, "memory.limit: out of range"),
                            ({"cpu": {"cpus": "0\x00"}}, "cpu.cpus: must not contain a NUL"),
                            ({"blockIO": {"weight": -1}}, "blockIO.weight: out of range")):
            rf.write_text(json.dumps(res))
            r = runtime.run("update", "--resources", str(rf), bundle.id)
            _one_line(r)
            assert phrase in r.stderr, r.stderr
        rf.write_text('{"memory": {"limit": 1')
        r = runtime.run("update", "--resources", str(rf), bundle.id)
        _one_line(r)
        r = runtime.run("update", "--memory", "inf.0", bundle.id)
        _one_line(r)
    finally:
        runtime.run("delete", "--force", bundle.id, check=True)
