"""runc's validator rules for host settings, checked in spec.parse (no containers)."""
import pytest

from pyrunc import spec
from pyrunc.commands.spec import default_config
from pyrunc.errors import ConfigError


def cfg(sysctl=None, drop=(), **top):
    c = default_config()
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] not in drop]
    if "uts" in drop:
        c.pop("hostname", None)     # the default spec sets one
    if sysctl is not None:
        c["linux"]["sysctl"] = sysctl
    c.update(top)
    return c


@pytest.mark.parametrize("key,expect", [
    ("net.ipv4.ip_forward", "net.ipv4.ip_forward"),
    ("net/ipv4/ip_forward", "net.ipv4.ip_forward"),
    ("net/ipv4/conf/eno2.100/rp_filter", "net.ipv4.conf.eno2/100.rp_filter"),
    ("net.ipv4.conf.eno2/100.rp_filter", "net.ipv4.conf.eno2/100.rp_filter"),
    ("kernel", "kernel"),
])
def test_dotted_form(key, expect):
    assert spec.sysctl_dotted(key) == expect


def test_path_of_a_vlan_interface_key():
    assert spec.sysctl_path("net.ipv4.conf.eno2/100.rp_filter") == "net/ipv4/conf/eno2.100/rp_filter"


@pytest.mark.parametrize("sysctl,drop", [
    ({"kernel.shmmax": "1"}, ()), ({"kernel.sem": "1 2 3 4"}, ()), ({"fs.mqueue.msg_max": "10"}, ()),
    ({"net.ipv4.ip_forward": "1"}, ()), ({"kernel.domainname": "d"}, ()), ({"kernel.hostname": "h"}, ()),
])
def test_accepted(sysctl, drop):
    spec.parse(cfg(sysctl, drop), "/b")


@pytest.mark.parametrize("sysctl,drop,msg", [
    ({"kernel.shmmax": "1"}, ("ipc",), 'sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace'),
    ({"fs/mqueue/msg_max": "1"}, ("ipc",), 'sysctl "fs.mqueue.msg_max" is not allowed in the hosts ipc'),
    ({"net.core.somaxconn": "1"}, ("network",), 'sysctl "net.core.somaxconn" not allowed in host network'),
    ({"kernel.domainname": "d"}, ("uts",), 'sysctl "kernel.domainname" is not in a separate kernel namespace'),
    ({"vm.swappiness": "1"}, (), 'sysctl "vm.swappiness" is not in a separate kernel namespace'),
    ({"kernel.core_pattern": "x"}, (), 'sysctl "kernel.core_pattern" is not in a separate kernel'),
    ({"net.ipv4..ip_forward": "1"}, (), "not a sysctl name"),
    ({"net./../kernel/core_pattern": "1"}, (), "not a sysctl name"),
])
def test_refused(sysctl, drop, msg):
    with pytest.raises(ConfigError) as e:
        spec.parse(cfg(sysctl, drop), "/b")
    assert msg in str(e.value)
    assert str(e.value).startswith("config.json: linux.sysctl[")


def test_net_sysctl_with_a_path_to_our_own_netns_is_refused():
    c = cfg({"net.ipv4.ip_forward": "1"})
    for n in c["linux"]["namespaces"]:
        if n["type"] == "network":
            n["path"] = "/proc/self/ns/net"
    with pytest.raises(ConfigError, match="host network namespace"):
        spec.parse(c, "/b")


def test_bad_netns_path_is_one_line():
    c = cfg({"net.ipv4.ip_forward": "1"})
    for n in c["linux"]["namespaces"]:
        if n["type"] == "network":
            n["path"] = "/nonexistent/netns"
    with pytest.raises(ConfigError, match="invalid netns path: stat /nonexistent/netns: no such file"):
        spec.parse(c, "/b")


@pytest.mark.parametrize("field", ["hostname", "domainname"])
def test_uts_names_need_uts(field):
    with pytest.raises(ConfigError, match="unable to set %s without a private UTS namespace" % field):
        spec.parse(cfg(drop=("uts",), **{field: "x"}), "/b")
    spec.parse(cfg(**{field: "x"}), "/b")
