"""pyrunc.validate and `pyrunc validate`: the runtime-spec schemas in oci-specs/ and the
MUST rules checked beside them.

Valid documents come from real generators (`runc spec`, `crun spec`, `pyrunc spec`,
`runc features`); broken ones are those configs with one thing wrong, and each must
produce exactly the expected `path: reason` line.
"""
import copy
import json
import os
import shutil
import subprocess
import sys

import pytest

from pyrunc import validate
from pyrunc.commands.spec import default_config

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMAS = validate.schema_dir()


def tool_spec(tool, tmp_path, *flags):
    exe = shutil.which(tool)
    if exe is None:
        pytest.skip("%s is not installed (make deps installs it)" % tool)
    d = tmp_path / tool
    d.mkdir()
    subprocess.run([exe, "spec", *flags], cwd=d, check=True, capture_output=True)
    return json.loads((d / "config.json").read_text())


@pytest.fixture(scope="module")
def runc_config(tmp_path_factory):
    return tool_spec("runc", tmp_path_factory.mktemp("spec"))


def problems(doc, kind="config"):
    return validate.schema_problems(doc, kind)


# ------------------------------------------------------------------ the schema files

def test_schema_files_are_valid_2020_12_schemas_and_every_ref_resolves():
    from jsonschema import Draft202012Validator

    names = sorted(n for n in os.listdir(SCHEMAS) if n.endswith(".schema.json"))
    assert {n[:-len(".schema.json")] for n in names} >= set(validate.KINDS)
    refs = []

    def walk(node, base):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref":
                    refs.append((base, v))
                else:
                    walk(v, base)
        elif isinstance(node, list):
            for v in node:
                walk(v, base)

    for n in names:
        with open(os.path.join(SCHEMAS, n)) as f:
            doc = json.load(f)
        Draft202012Validator.check_schema(doc)
        assert doc["$id"].endswith("/runtime-spec/%s/%s" % (validate.SPEC_VERSION, n))
        walk(doc, n[:-len(".schema.json")])
    assert len(refs) > 50
    for kind in validate.KINDS:
        validate._validator(kind)
    # resolve every $ref through the same registry the validators use
    for base, ref in refs:
        resolver = validate._validator(base)._resolver
        resolver.lookup(ref)


# ------------------------------------------------------------------ valid documents

def test_runc_spec_is_valid(runc_config):
    assert problems(runc_config) == []


def test_runc_rootless_spec_is_valid(tmp_path):
    assert problems(tool_spec("runc", tmp_path, "--rootless")) == []


def test_crun_spec_is_valid(tmp_path):
    assert problems(tool_spec("crun", tmp_path)) == []


@pytest.mark.parametrize("rootless", [False, True])
def test_pyrunc_spec_is_valid(rootless):
    assert problems(default_config(rootless)) == []


def test_spec_example_with_every_linux_section_is_valid(runc_config):
    cfg = copy.deepcopy(runc_config)
    cfg["process"].update({
        "consoleSize": {"height": 25, "width": 80},
        "user": {"uid": 1, "gid": 1, "umask": 63, "additionalGids": [5, 6]},
        "oomScoreAdj": -1000,
        "scheduler": {"policy": "SCHED_DEADLINE", "nice": -5, "runtime": 10, "deadline": 20, "period": 30,
                      "flags": ["SCHED_FLAG_RECLAIM"]},
        "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 4},
        "execCPUAffinity": {"initial": "7", "final": "0-3,7"},
        "selinuxLabel": "system_u:system_r:svirt_lxc_net_t:s0:c124,c675",
        "apparmorProfile": "acme",
    })
    cfg["hooks"] = {h: [{"path": "/usr/bin/true", "args": ["true"], "env": ["A=1"], "timeout": 5}]
                    for h in ("prestart", "createRuntime", "createContainer", "startContainer",
                              "poststart", "poststop")}
    cfg["mounts"].append({"destination": "/data", "source": "/srv", "options": ["rbind", "idmap"],
                          "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                          "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]})
    cfg["annotations"] = {"com.example.key": "", "org.opencontainers.image.os": "linux"}
    linux = cfg["linux"]
    linux.update({
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 32000}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 32000}],
        "timeOffsets": {"monotonic": {"secs": 172800, "nanosecs": 0}, "boottime": {"secs": -1}},
        "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438,
                     "uid": 0, "gid": 0}, {"path": "/dev/myfifo", "type": "p"}],
        "netDevices": {"eth0": {"name": "container_eth0"}, "dummy%d": {}},
        "cgroupsPath": "/myRuntime/myContainer",
        "intelRdt": {"closID": "guaranteed_group", "memBwSchema": "MB:0=20;1=70",
                     "schemata": ["L3:0=7f0;1=1f"], "enableMonitoring": True},
        "memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "2-3", "flags": ["MPOL_F_STATIC_NODES"]},
        "sysctl": {"net.ipv4.ip_forward": "1"},
        "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1,
                    "architectures": ["SCMP_ARCH_X86_64"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                    "listenerPath": "/run/agent.sock", "listenerMetadata": "x",
                    "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                                  "args": [{"index": 0, "value": 1, "valueTwo": 2, "op": "SCMP_CMP_EQ"}]}]},
        "rootfsPropagation": "slave",
        "mountLabel": "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811",
        "personality": {"domain": "LINUX32"},
    })
    linux["namespaces"] += [{"type": "user"}, {"type": "cgroup"}, {"type": "time"}]
    linux["resources"].update({
        "memory": {"limit": 536870912, "reservation": 536870912, "swap": 536870912, "kernel": -1,
                   "kernelTCP": -1, "swappiness": 0, "disableOOMKiller": False, "checkBeforeUpdate": True},
        "cpu": {"shares": 1024, "quota": 1000000, "burst": 1000000, "period": 500000,
                "realtimeRuntime": 950000, "realtimePeriod": 1000000, "cpus": "2-3", "mems": "0-7", "idle": 1},
        "blockIO": {"weight": 10, "leafWeight": 10,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300},
                                     {"major": 8, "minor": 16, "leafWeight": 500}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 9223372036854772000}],
        "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
        "pids": {"limit": -1},
        "rdma": {"mlx5_1": {"hcaHandles": 3}, "rxe3": {"hcaObjects": 10000}},
        "unified": {"io.max": "259:0 rbps=2097152"},
    })
    assert problems(cfg) == []
    assert validate.semantic_problems(cfg) == []


def test_unknown_properties_are_allowed(runc_config):
    # config.md#extensibility: runtimes MUST ignore unknown properties
    cfg = copy.deepcopy(runc_config)
    cfg["x-vendor"] = {"anything": [1]}
    cfg["process"]["notInTheSpec"] = True
    cfg["linux"]["resources"]["futureController"] = {}
    assert problems(cfg) == []


# ------------------------------------------------------------------ broken configs

def _set(cfg, path, value):
    *parents, last = path
    node = cfg
    for p in parents:
        node = node[p]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value


_DELETE = object()

BROKEN = [
    (["ociVersion"], _DELETE, "ociVersion: is required"),
    (["ociVersion"], "1.0", "ociVersion: must be a SemVer 2.0.0 version such as 1.3.0"),
    (["ociVersion"], 1, "ociVersion: must be a string, not an integer"),
    (["root"], _DELETE, "root: is required"),
    (["root", "path"], "", "root.path: must not be empty"),
    (["root", "readonly"], "yes", "root.readonly: must be a boolean, not a string"),
    (["process", "args"], [], "process.args: must be a non-empty array"),
    (["process", "args"], "sh", "process.args: must be an array, not a string"),
    (["process", "args"], ["sh", 1], "process.args[1]: must be a string, not an integer"),
    (["process", "cwd"], "tmp", "process.cwd: must be an absolute path"),
    (["process", "cwd"], _DELETE, "process.cwd: is required"),
    (["process", "user", "uid"], -1, "process.user.uid: -1 is out of range 0..4294967295"),
    (["process", "user", "gid"], 2 ** 32, "process.user.gid: 4294967296 is out of range 0..4294967295"),
    (["process", "user", "uid"], True, "process.user.uid: must be an integer, not a boolean"),
    (["process", "terminal"], None, "process.terminal: must be a boolean, not null"),
    (["process", "rlimits", 0, "type"], "RLIMIT_TEST",
     'process.rlimits[0].type: "RLIMIT_TEST" is not one of RLIMIT_AS, RLIMIT_CORE, RLIMIT_CPU, '
     "RLIMIT_DATA, RLIMIT_FSIZE, RLIMIT_LOCKS, RLIMIT_MEMLOCK, RLIMIT_MSGQUEUE, RLIMIT_NICE, "
     "RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_RSS, RLIMIT_RTPRIO, RLIMIT_RTTIME, RLIMIT_SIGPENDING, RLIMIT_STACK"),
    (["process", "rlimits", 0, "soft"], -1, "process.rlimits[0].soft: -1 is out of range 0..18446744073709551615"),
    (["process", "capabilities", "bounding", 0], "chown",
     "process.capabilities.bounding[0]: must be a capability name such as CAP_CHOWN"),
    (["process", "oomScoreAdj"], 1001, "process.oomScoreAdj: 1001 is out of range -1000..1000"),
    (["process", "ioPriority"], {"class": "IOPRIO_CLASS_BE"}, "process.ioPriority.priority: is required"),
    (["process", "scheduler"], {"policy": "SCHED_FAST"},
     'process.scheduler.policy: "SCHED_FAST" is not one of SCHED_OTHER, SCHED_FIFO, SCHED_RR, '
     "SCHED_BATCH, SCHED_ISO, SCHED_IDLE, SCHED_DEADLINE"),
    (["mounts", 0, "destination"], _DELETE, "mounts[0].destination: is required"),
    (["mounts", 0, "options"], "ro", "mounts[0].options: must be an array, not a string"),
    (["mounts", 0, "uidMappings"], [{"containerID": 0, "hostID": 1, "size": 1}],
     "mounts[0].uidMappings: requires gidMappings too"),
    (["hooks"], {"prestart": [{"path": "true"}]}, "hooks.prestart[0].path: must be an absolute path"),
    (["hooks"], {"poststop": [{"path": "/bin/true", "timeout": 0}]},
     "hooks.poststop[0].timeout: must be a number of seconds greater than zero"),
    (["annotations"], {"": "x"}, 'annotations[""]: key must not be empty'),
    (["annotations"], {"com.example.n": 2}, 'annotations["com.example.n"]: must be a string, not an integer'),
    (["linux", "namespaces", 0, "type"], "net",
     'linux.namespaces[0].type: "net" is not one of pid, network, mount, ipc, uts, user, cgroup, time'),
    (["linux", "namespaces", 0, "path"], "proc/1/ns/pid", "linux.namespaces[0].path: must be an absolute path"),
    (["linux", "maskedPaths", 0], "proc/kcore", "linux.maskedPaths[0]: must be an absolute path"),
    (["linux", "uidMappings"], [{"containerID": 0, "hostID": 1000}], "linux.uidMappings[0].size: is required"),
    (["linux", "devices"], [{"path": "/dev/fuse", "type": "c", "major": 10}], "linux.devices[0].minor: is required"),
    (["linux", "devices"], [{"path": "/dev/x", "type": "x", "major": 1, "minor": 1}],
     'linux.devices[0].type: "x" is not one of c, b, u, p'),
    (["linux", "resources", "devices", 0, "access"], "rwx", "linux.resources.devices[0].access: must be made of r, w and m"),
    (["linux", "resources", "devices", 0, "allow"], _DELETE, "linux.resources.devices[0].allow: is required"),
    (["linux", "resources", "memory"], {"limit": "1G"}, "linux.resources.memory.limit: must be an integer, not a string"),
    (["linux", "resources", "memory"], {"swappiness": 101},
     "linux.resources.memory.swappiness: 101 is out of range 0..100"),
    (["linux", "resources", "cpu"], {"cpus": "0-3;7"}, "linux.resources.cpu.cpus: must be a list like 0-3,7"),
    (["linux", "resources", "blockIO"], {"weightDevice": [{"major": 8, "minor": 0}]},
     "linux.resources.blockIO.weightDevice[0]: must set weight or leafWeight"),
    (["linux", "resources", "blockIO"], {"weight": 70000},
     "linux.resources.blockIO.weight: 70000 is out of range 0..65535"),
    (["linux", "resources", "hugepageLimits"], [{"pageSize": "2M", "limit": 1}],
     "linux.resources.hugepageLimits[0].pageSize: must be a size with a unit such as 64KB, 2MB or 1GB"),
    (["linux", "resources", "rdma"], {"mlx5_1": {}}, "linux.resources.rdma.mlx5_1: must set hcaHandles or hcaObjects"),
    (["linux", "timeOffsets"], {"realtime": {"secs": 1}},
     'linux.timeOffsets.realtime: key "realtime" is not one of monotonic, boottime'),
    (["linux", "sysctl"], {"net.ipv4.ip_forward": 1},
     'linux.sysctl["net.ipv4.ip_forward"]: must be a string, not an integer'),
    (["linux", "seccomp"], {"syscalls": []}, "linux.seccomp.defaultAction: is required"),
    (["linux", "seccomp"], {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]},
     "linux.seccomp.syscalls[0].names: must name at least one system call"),
    (["linux", "seccomp"], {"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"},
     "linux.seccomp.listenerMetadata: requires listenerPath too"),
    (["linux", "seccomp"], {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86_64"]},
     'linux.seccomp.architectures[0]: "x86_64" is not one of SCMP_ARCH_X86, SCMP_ARCH_X86_64, SCMP_ARCH_X32, '
     "SCMP_ARCH_ARM, SCMP_ARCH_AARCH64, SCMP_ARCH_MIPS, SCMP_ARCH_MIPS64, SCMP_ARCH_MIPS64N32, SCMP_ARCH_MIPSEL, "
     "SCMP_ARCH_MIPSEL64, SCMP_ARCH_MIPSEL64N32, SCMP_ARCH_PPC, SCMP_ARCH_PPC64, SCMP_ARCH_PPC64LE, "
     "SCMP_ARCH_S390, SCMP_ARCH_S390X, SCMP_ARCH_PARISC, SCMP_ARCH_PARISC64, SCMP_ARCH_RISCV64, "
     "SCMP_ARCH_LOONGARCH64, SCMP_ARCH_M68K, SCMP_ARCH_SH, SCMP_ARCH_SHEB"),
    (["linux", "seccomp"], {"defaultAction": "SCMP_ACT_ALLOW",
                            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                                          "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]},
     "linux.seccomp.syscalls[0].args[0].index: must be a system call argument index from 0 to 5"),
    (["linux", "rootfsPropagation"], "rprivate",
     'linux.rootfsPropagation: "rprivate" is not one of shared, slave, private, unbindable'),
    (["linux", "intelRdt"], {"memBwSchema": "L3:0=1"}, "linux.intelRdt.memBwSchema: must start with MB: and hold no newline"),
    (["linux", "personality"], {"domain": "LINUX64"}, 'linux.personality.domain: "LINUX64" is not one of LINUX, LINUX32'),
    (["linux", "memoryPolicy"], {"nodes": "0"}, "linux.memoryPolicy.mode: is required"),
]


@pytest.mark.parametrize("path,value,expected", BROKEN, ids=[".".join(map(str, b[0])) + "=" + repr(b[1])[:20]
                                                              for b in BROKEN])
def test_one_broken_field_gives_exactly_one_line(runc_config, path, value, expected):
    cfg = copy.deepcopy(runc_config)
    _set(cfg, path, value)
    got = ["%s: %s" % p for p in problems(cfg)]
    assert got == [expected]


def test_several_problems_are_all_reported_in_path_order(runc_config):
    cfg = copy.deepcopy(runc_config)
    del cfg["ociVersion"]
    cfg["process"]["args"] = []
    cfg["linux"]["maskedPaths"][3] = "rel"
    cfg["hooks"] = {"prestart": [{"path": "rel"}]}
    assert [p[0] for p in problems(cfg)] == [
        "hooks.prestart[0].path", "linux.maskedPaths[3]", "ociVersion", "process.args"]


@pytest.mark.parametrize("doc,expected", [
    ([], "(root): must be an object, not an array"),
    ({"ociVersion": "1.3.0", "root": {"path": "rootfs"}, "process": []},
     "process: must be an object, not an array"),
])
def test_wrong_shapes(doc, expected):
    assert ["%s: %s" % p for p in problems(doc)] == [expected]


# ------------------------------------------------------------------ semantic rules

def test_duplicate_namespaces_and_rlimits(runc_config):
    cfg = copy.deepcopy(runc_config)
    cfg["linux"]["namespaces"].append({"type": "pid"})
    cfg["process"]["rlimits"].append({"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1})
    assert problems(cfg) == []
    assert validate.semantic_problems(cfg) == [
        ("process.rlimits[1].type", "duplicate rlimit RLIMIT_NOFILE (first at rlimits[0])"),
        ("linux.namespaces[5].type", "duplicate namespace pid (first at namespaces[0])"),
    ]


def test_root_directory_must_exist_in_the_bundle(runc_config, tmp_path):
    assert validate.semantic_problems(runc_config, str(tmp_path)) == [
        ("root.path", "%s/rootfs: no such directory" % tmp_path)]
    (tmp_path / "rootfs").write_text("")
    assert validate.semantic_problems(runc_config, str(tmp_path)) == [
        ("root.path", "%s/rootfs: not a directory" % tmp_path)]
    (tmp_path / "rootfs").unlink()
    (tmp_path / "rootfs").mkdir()
    assert validate.semantic_problems(runc_config, str(tmp_path)) == []


def test_other_major_version_and_burst_over_quota(runc_config):
    cfg = copy.deepcopy(runc_config)
    cfg["ociVersion"] = "2.0.0"
    cfg["linux"]["resources"]["cpu"] = {"quota": 1000, "burst": 2000}
    assert validate.semantic_problems(cfg) == [
        ("ociVersion", "runtime-spec 2.0.0 is not supported, only 1.x"),
        ("linux.resources.cpu.burst", "2000 is larger than quota 1000")]
    cfg["linux"]["resources"]["cpu"] = {"quota": -1, "burst": 2000}
    assert validate.semantic_problems(cfg)[1:] == []


def test_semantic_rules_survive_wrong_types():
    for doc in ([], {"process": [], "linux": {"namespaces": "pid"}}, {"linux": {"namespaces": [1, {"type": 2}]}}):
        validate.semantic_problems(doc, "/nonexistent")


# ------------------------------------------------------------------ state and features

STATE = {"ociVersion": "1.3.0", "id": "c1", "status": "running", "pid": 4422,
         "bundle": "/containers/redis", "annotations": {"myKey": "myValue"}}


@pytest.mark.parametrize("change,expected", [
    ({}, []),
    ({"status": "stopped", "pid": 0}, []),
    ({"status": "paused"}, []),        # runtimes MAY define more states
    ({"status": "created", "pid": _DELETE}, ["pid: is required"]),
    ({"status": "running", "pid": 0}, ["pid: must be >= 1"]),
    ({"bundle": "redis"}, ["bundle: must be an absolute path"]),
    ({"id": ""}, ["id: must not be empty"]),
    ({"ociVersion": _DELETE, "status": _DELETE}, ["ociVersion: is required", "status: is required"]),
])
def test_state_documents(change, expected):
    doc = dict(STATE)
    for k, v in change.items():
        _set(doc, [k], v)
    assert ["%s: %s" % p for p in problems(doc, "state")] == expected


def test_runc_features_output_is_valid():
    exe = shutil.which("runc")
    if exe is None:
        pytest.skip("runc is not installed (make deps installs it)")
    out = subprocess.run([exe, "features"], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("this runc has no features command: %s" % out.stderr.strip())
    assert problems(json.loads(out.stdout), "features") == []


@pytest.mark.parametrize("change,expected", [
    ({"ociVersionMax": _DELETE}, ["ociVersionMax: is required"]),
    ({"hooks": None, "linux": None, "annotations": None}, []),
    ({"hooks": ["preStart"]}, ['hooks[0]: "preStart" is not one of prestart, createRuntime, createContainer, '
                               "startContainer, poststart, poststop"]),
    ({"newThing": True}, ["newThing: is not defined by runtime-spec 1.3.0"]),
    ({"linux": {"cgroup": {"v3": True}}}, ["linux.cgroup.v3: is not defined by runtime-spec 1.3.0"]),
    ({"linux": {"seccomp": {"enabled": "yes"}}},
     ["linux.seccomp.enabled: must be a boolean or null, not a string"]),
    ({"linux": {"namespaces": ["net"]}},
     ['linux.namespaces[0]: "net" is not one of pid, network, mount, ipc, uts, user, cgroup, time']),
])
def test_features_documents(change, expected):
    doc = {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0", "hooks": ["prestart"],
           "linux": {"namespaces": ["pid"], "cgroup": {"v1": True}, "seccomp": {"enabled": True},
                     "mountExtensions": {"idmap": {"enabled": False}}}}
    for k, v in change.items():
        _set(doc, [k], v)
    assert ["%s: %s" % p for p in problems(doc, "features")] == expected


# ------------------------------------------------------------------ the command

PYRUNC = os.environ.get("PYRUNC") or os.path.join(ROOT_DIR, ".venv", "bin", "pyrunc")
if not os.path.exists(PYRUNC):
    PYRUNC = None


def run_cli(*args, cwd=None, stdin=None):
    cmd = [PYRUNC] if PYRUNC else [sys.executable, "-m", "pyrunc"]
    return subprocess.run(cmd + ["validate", *args], cwd=cwd, input=stdin, capture_output=True, text=True)


@pytest.fixture
def bundle(tmp_path, runc_config):
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(runc_config))
    return tmp_path


def test_cli_valid_bundle_in_cwd_and_by_flag(bundle):
    for args, cwd in (((), bundle), (("--bundle", str(bundle)), "/"), (("-b", str(bundle)), "/")):
        r = run_cli(*args, cwd=cwd)
        assert (r.returncode, r.stdout, r.stderr) == (0, "config.json: valid (runtime-spec 1.3.0)\n", "")


def test_cli_lists_every_violation_and_exits_1(bundle, runc_config):
    cfg = copy.deepcopy(runc_config)
    cfg["process"]["args"] = []
    cfg["linux"]["namespaces"].append({"type": "pid"})
    (bundle / "config.json").write_text(json.dumps(cfg))
    (bundle / "rootfs").rmdir()
    r = run_cli("--bundle", str(bundle))
    assert r.returncode == 1 and r.stderr == ""
    assert r.stdout.splitlines() == [
        "config.json: process.args: must be a non-empty array",
        "config.json: root.path: %s/rootfs: no such directory" % bundle,
        "config.json: linux.namespaces[5].type: duplicate namespace pid (first at namespaces[0])",
    ]


@pytest.mark.parametrize("content,expected", [
    (None, "config.json: read {b}/config.json: no such file or directory"),
    ('{"ociVersion": "1.3.0",\n  "root": }', "config.json: invalid json: line 2 column 11: expecting value"),
    (b"\xff\xfe{}", "config.json: invalid json: byte 0: not utf-8"),
])
def test_cli_unreadable_config_is_one_line_on_stderr(tmp_path, content, expected):
    if isinstance(content, bytes):
        (tmp_path / "config.json").write_bytes(content)
    elif content is not None:
        (tmp_path / "config.json").write_text(content)
    r = run_cli("-b", str(tmp_path))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == expected.format(b=tmp_path) + "\n"


def test_cli_state_and_features_from_stdin_and_file(tmp_path):
    r = run_cli("--state", "-", stdin=json.dumps(STATE))
    assert (r.returncode, r.stdout) == (0, "stdin: valid (runtime-spec 1.3.0)\n")
    f = tmp_path / "features.json"
    f.write_text(json.dumps({"ociVersionMin": "1.0.0"}))
    r = run_cli("--features", str(f))
    assert (r.returncode, r.stdout) == (1, "%s: ociVersionMax: is required\n" % f)
    r = run_cli("--features", str(f), "--bundle", str(tmp_path))
    assert r.returncode == 1 and "only one of" in r.stderr and "Traceback" not in r.stderr


# ------------------------------------------------------------------ the hot path stays light

def test_jsonschema_stays_off_the_hot_path():
    code = (
        "import sys\n"
        "import pyrunc.validate, pyrunc.cli\n"
        "from pyrunc.commands import create, run, start, state, kill, delete\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('jsonschema', 'referencing', 'rpds'))\n"
        "print(' '.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT_DIR, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
