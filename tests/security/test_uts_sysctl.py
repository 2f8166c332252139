"""Host UTS names and host sysctls are never written (runc's validator rules).

The "host" here is a private namespace the test makes for the pyrunc caller with
`unshare` (uts, ipc, net): the test sets a canary value in it, runs pyrunc inside it
with a config that lacks the matching namespace, and checks the canary is unchanged.
A config that would touch it is refused at create, with one line, leaving nothing.
Non-namespaced sysctls (vm.*) are refused before anything runs, so the real host's
value is never at risk; the test still compares it.
"""
import os
import shutil
import subprocess

import pytest

from tests.conftest import PYRUNC, requires_root

pytestmark = [requires_root,
              pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare(1) not installed")]


def drop_ns(bundle, *types):
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"]
                                            if n["type"] not in types]


def run_in_private(runtime, bundle, flags, setup, check):
    """unshare <flags> sh: set the canary (setup), `pyrunc run`, then print the canary (check)"""
    script = '%s && { "$0" --root "$1" run -b "$2" "$3"; echo "rc=$?"; } && %s' % (setup, check)
    p = subprocess.run(["unshare"] + flags + ["sh", "-c", script, PYRUNC, runtime.root, bundle.path, bundle.id],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split("\n")
    rc = [int(x[3:]) for x in lines if x.startswith("rc=")][0]
    return rc, lines[-2], p.stderr


def assert_refused(runtime, bundle, rc, err, *phrases):
    assert rc != 0
    assert len(err.strip().splitlines()) == 1, err
    for ph in phrases:
        assert ph in err, err
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))


@pytest.mark.parametrize("field,how", [
    ("hostname", ("hostname", "evil-host")),
    ("domainname", ("domainname", "evil-domain")),
    ("kernel.hostname", ("sysctl", "evil-host")),
    ("kernel.domainname", ("sysctl", "evil-domain")),
])
def test_uts_names_need_a_private_uts_namespace(runtime, bundle, field, how):
    drop_ns(bundle, "uts")
    if how[0] == "sysctl":
        bundle.config["linux"]["sysctl"] = {field: how[1]}
    else:
        bundle.config[how[0]] = how[1]
    bundle.config.pop("hostname", None) if how[0] != "hostname" else None
    bundle.args("true")
    name = "hostname" if "hostname" in field else "domainname"
    rc, value, err = run_in_private(runtime, bundle, ["--uts"],
                                    "echo canary-uts > /proc/sys/kernel/%s" % name,
                                    "cat /proc/sys/kernel/%s" % name)
    assert value == "canary-uts", "the container changed the caller's %s" % name
    assert_refused(runtime, bundle, rc, err, "UTS namespace" if how[0] != "sysctl" else field)


def test_uts_names_allowed_with_a_private_uts_namespace(runtime, bundle):
    bundle.config["hostname"] = "inside"
    bundle.config["linux"]["sysctl"] = {"kernel.domainname": "dom.inside"}
    bundle.args("sh", "-c", "hostname; cat /proc/sys/kernel/domainname")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["inside", "dom.inside"]


def test_ipc_sysctl_needs_a_private_ipc_namespace(runtime, bundle):
    drop_ns(bundle, "ipc")
    bundle.config["linux"]["sysctl"] = {"kernel.shmmni": "1234"}
    bundle.args("true")
    rc, value, err = run_in_private(runtime, bundle, ["--ipc"],
                                    "echo 777 > /proc/sys/kernel/shmmni",
                                    "cat /proc/sys/kernel/shmmni")
    assert value == "777"
    assert_refused(runtime, bundle, rc, err, "kernel.shmmni", "ipc namespace")


def test_mqueue_sysctl_needs_a_private_ipc_namespace(runtime, bundle):
    drop_ns(bundle, "ipc")
    bundle.config["linux"]["sysctl"] = {"fs/mqueue/msg_max": "20"}   # the '/' spelling too
    bundle.args("true")
    rc, value, err = run_in_private(runtime, bundle, ["--ipc"],
                                    "echo 13 > /proc/sys/fs/mqueue/msg_max",
                                    "cat /proc/sys/fs/mqueue/msg_max")
    assert value == "13"
    assert_refused(runtime, bundle, rc, err, "fs.mqueue.msg_max")


def test_net_sysctl_needs_a_private_net_namespace(runtime, bundle):
    drop_ns(bundle, "network")
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_default_ttl": "99"}
    bundle.args("true")
    rc, value, err = run_in_private(runtime, bundle, ["--net"],
                                    "echo 33 > /proc/sys/net/ipv4/ip_default_ttl",
                                    "cat /proc/sys/net/ipv4/ip_default_ttl")
    assert value == "33"
    assert_refused(runtime, bundle, rc, err, "net.ipv4.ip_default_ttl", "host network namespace")


def test_net_sysctl_refused_when_the_netns_path_is_the_callers(runtime, bundle):
    for n in bundle.config["linux"]["namespaces"]:
        if n["type"] == "network":
            n["path"] = "/proc/self/ns/net"   # resolved by pyrunc: its own, the "host" one
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_default_ttl": "99"}
    bundle.args("true")
    rc, value, err = run_in_private(runtime, bundle, ["--net"],
                                    "echo 34 > /proc/sys/net/ipv4/ip_default_ttl",
                                    "cat /proc/sys/net/ipv4/ip_default_ttl")
    assert value == "34"
    assert_refused(runtime, bundle, rc, err, "host network namespace")


def test_net_and_ipc_sysctls_allowed_in_private_namespaces(runtime, bundle):
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_default_ttl": "99", "kernel.msgmax": "4096"}
    bundle.args("sh", "-c", "cat /proc/sys/net/ipv4/ip_default_ttl /proc/sys/kernel/msgmax")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["99", "4096"]


@pytest.mark.parametrize("key,file", [("vm.swappiness", "vm/swappiness"),
                                      ("vm.overcommit_ratio", "vm/overcommit_ratio"),
                                      ("kernel.core_pattern", "kernel/core_pattern"),
                                      ("net./../kernel/core_pattern", "kernel/core_pattern")])
def test_non_namespaced_sysctls_are_refused(runtime, bundle, key, file):
    # no namespace isolates these, so no private canary is possible: the config asks for
    # the value the host already has, so that a runtime that wrongly writes it changes
    # nothing, and the test fails on the exit status alone
    path = "/proc/sys/" + file
    with open(path) as f:
        before = f.read()
    bundle.config["linux"]["sysctl"] = {key: before.rstrip("\n")}
    bundle.args("true")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    with open(path) as f:
        assert f.read() == before
    assert_refused(runtime, bundle, r.returncode, r.stderr, key)
