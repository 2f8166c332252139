"""Bad input: one clear line on stderr, exit 1, no traceback, nothing left behind."""
import json
import os

import pytest

from tests.conftest import cgroup_dirs, mounts_under, requires_root

pytestmark = requires_root


def check_failed_cleanly(runtime, bundle, r, *phrases):
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for p in phrases:
        assert p in lines[0], (p, lines[0])
    # nothing left: state dir, cgroup, mount, process
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))
    assert cgroup_dirs(bundle.id) == []
    assert mounts_under(bundle.path) == []


def write_raw(bundle, text):
    with open(bundle.config_path, "w") as f:
        f.write(text)


def test_missing_bundle(runtime, bundle):
    r = runtime.run("create", "-b", "/nonexistent/bundle", bundle.id)
    check_failed_cleanly(runtime, bundle, r, "/nonexistent/bundle")


def test_missing_config(runtime, bundle):
    os.unlink(bundle.config_path)
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    check_failed_cleanly(runtime, bundle, r, "config.json", "not found")


def test_malformed_json(runtime, bundle):
    write_raw(bundle, '{"ociVersion": "1.0.2", "process": ')
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    check_failed_cleanly(runtime, bundle, r, "config.json", "invalid JSON")


def test_unreadable_config(runtime, bundle):
    os.unlink(bundle.config_path)
    os.mkdir(bundle.config_path)
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    check_failed_cleanly(runtime, bundle, r, "config.json")
    os.rmdir(bundle.config_path)


@pytest.mark.parametrize("mutate,phrase", [
    (lambda c: c["process"].__setitem__("args", []), "process.args: must be a non-empty array"),
    (lambda c: c["process"].pop("args"), "process.args"),
    (lambda c: c.pop("process"), "process"),
    (lambda c: c["process"].__setitem__("args", "sh"), "process.args"),
    (lambda c: c["process"]["user"].__setitem__("uid", "root"), "process.user.uid: must be an integer"),
    (lambda c: c["process"].__setitem__("cwd", "relative"), "process.cwd"),
    (lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}),
     "process.rlimits[1].type"),
    (lambda c: c["linux"]["namespaces"].append({"type": "bogus"}), "linux.namespaces[5].type"),
    (lambda c: c["linux"].__setitem__("rootfsPropagation", "sideways"), "rootfsPropagation"),
    (lambda c: c["mounts"].append({"destination": "/x", "type": "bind", "source": "/does/not/exist",
                                   "options": ["bind"]}), "/does/not/exist"),
    (lambda c: c.pop("ociVersion"), "ociVersion: is required"),
    (lambda c: c["root"].__setitem__("path", 5), "root.path: must be a string"),
])
def test_wrong_fields(runtime, bundle, mutate, phrase):
    mutate(bundle.config)
    bundle.save()
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    check_failed_cleanly(runtime, bundle, r, phrase)


@pytest.mark.parametrize("bad_id", ["../x", "a/b", ".", "..", ""])
def test_invalid_ids(runtime, bundle, bad_id):
    r = runtime.run("create", "-b", bundle.path, bad_id)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert len(r.stderr.splitlines()) == 1


def test_missing_executable_is_reported_by_create(runtime, bundle):
    bundle.args("/nonexistent")
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    check_failed_cleanly(runtime, bundle, r, "no such file or directory", "/nonexistent")
    bundle.args("nosuchcommand")
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    check_failed_cleanly(runtime, bundle, r, "executable file not found in $PATH")


def test_non_executable_is_permission_denied(runtime, bundle):
    with open(os.path.join(bundle.rootfs, "script"), "w") as f:
        f.write("#!/bin/sh\necho hi\n")
    os.chmod(os.path.join(bundle.rootfs, "script"), 0o644)
    bundle.args("/script")
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    check_failed_cleanly(runtime, bundle, r, "permission denied")


def test_bad_cwd(runtime, bundle):
    # a missing cwd is created (as runc does); one that cannot be is an error
    bundle.config["process"]["cwd"] = "/bin/busybox/sub"
    bundle.args("/bin/true")
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    check_failed_cleanly(runtime, bundle, r, "cwd", "/bin/busybox/sub", "not a directory")


def test_failing_mount_is_cleaned_up(runtime, bundle):
    bundle.config["mounts"].append({"destination": "/mnt", "type": "nosuchfs", "source": "x"})
    bundle.save()
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    check_failed_cleanly(runtime, bundle, r, "mount nosuchfs", "/mnt", "no such device")


def test_unknown_signal_and_missing_container(runtime, bundle):
    r = runtime.run("kill", "nope", "KILL")
    assert r.returncode == 1 and "does not exist" in r.stderr
    r = runtime.run("state")
    assert r.returncode == 1 and "requires exactly 1 argument" in r.stderr
    r = runtime.run("create", "--no-such-flag", "x")
    assert r.returncode == 1 and "flag provided but not defined" in r.stderr


def test_terminal_without_console_socket(runtime, bundle):
    bundle.config["process"]["terminal"] = True
    bundle.save()
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    check_failed_cleanly(runtime, bundle, r, "console socket")


def test_log_file_json_records(runtime, bundle, tmp_path):
    log = str(tmp_path / "log.json")
    bundle.args("/nonexistent")
    r = runtime.run("--log", log, "--log-format", "json", "create", "-b", bundle.path, bundle.id)
    assert r.returncode == 1
    assert "no such file or directory" in r.stderr
    with open(log) as f:
        records = [json.loads(line) for line in f]
    assert len(records) == 1
    rec = records[0]
    assert rec["level"] == "error" and "no such file or directory" in rec["msg"]
    assert rec["time"].endswith("Z") and "T" in rec["time"]
    # success: the log is created/appended but nothing is written
    r = runtime.run("--log", log, "--log-format", "json", "list")
    assert r.returncode == 0
    with open(log) as f:
        assert len(f.readlines()) == 1
