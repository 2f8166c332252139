"""Fixtures for pyimage's tests: real docker-registry processes on 127.0.0.1 (plain,
htpasswd, TLS, token auth), a private store and docker config per test, and a runner
for the pyimage command line exactly as a user calls it."""
import json
import os
import shutil
import subprocess
import uuid

import pytest

from tests.image import build_image as bi
from tests.image.registry import Registry

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYIMAGE = os.environ.get("PYIMAGE") or os.path.join(TOP, ".venv", "bin", "pyimage")
USER, PASSWORD = "alice", "wonderland"


def have(tool):
    return shutil.which(tool) is not None


requires_registry = pytest.mark.skipif(not have("docker-registry"), reason="docker-registry not installed")


class Runner:
    """runs pyimage with a private store and a private $DOCKER_CONFIG"""

    def __init__(self, tmp):
        self.store = os.path.join(tmp, "store")
        self.home = os.path.join(tmp, "home")
        os.makedirs(os.path.join(self.home, ".docker"), exist_ok=True)
        self.env = dict(os.environ, HOME=self.home, DOCKER_CONFIG=os.path.join(self.home, ".docker"),
                        PYIMAGE_RETRY_BACKOFF="0.05")
        self.env.pop("PYIMAGE_STORE", None)

    def __call__(self, *args, check=True, input=None, store=True, env=None, timeout=120):
        cmd = [PYIMAGE] + (["--store", self.store] if store else []) + [str(a) for a in args]
        p = subprocess.run(cmd, capture_output=True, text=True, input=input, env=dict(self.env, **(env or {})),
                           timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError("%s failed (%d): %s" % (" ".join(cmd), p.returncode, p.stderr))
        return p

    def docker_config(self, cfg):
        with open(os.path.join(self.home, ".docker", "config.json"), "w") as f:
            json.dump(cfg, f)


def assert_one_line_error(p, *needles):
    assert p.returncode != 0, p.stdout
    err = p.stderr.strip()
    assert "Traceback" not in err, err
    lines = [l for l in err.splitlines() if not l.startswith("pyimage: warning:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("pyimage: "), err
    for n in needles:
        assert n in lines[0], err
    return lines[0]


@pytest.fixture
def pyimage(tmp_path):
    return Runner(str(tmp_path))


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    if not have("docker-registry"):
        pytest.skip("docker-registry not installed")
    reg = Registry(str(tmp_path_factory.mktemp("registry"))).start()
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory):
    if not have("docker-registry") or not have("htpasswd"):
        pytest.skip("docker-registry or htpasswd (apache2-utils) not installed")
    reg = Registry(str(tmp_path_factory.mktemp("authreg")), users={USER: PASSWORD}).start()
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory):
    if not have("docker-registry") or not have("openssl"):
        pytest.skip("docker-registry or openssl not installed")
    reg = Registry(str(tmp_path_factory.mktemp("tlsreg")), tls=True).start()
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def layout(tmp_path_factory):
    """an OCI layout to build test images in before pushing them"""
    return str(tmp_path_factory.mktemp("layout"))


def unique(name="img"):
    return "%s-%s" % (name, uuid.uuid4().hex[:8])


def push(layout, registry_or_addr, repo, layers, config=None, compression="gzip", docker=False, creds=None,
         cert_dir=None, insecure=False):
    """build an image and push it; returns the full reference"""
    addr = registry_or_addr if isinstance(registry_or_addr, str) else registry_or_addr.address
    ref_name = unique("build")
    bi.build_image(layout, ref_name, layers, config=config, compression=compression, docker=docker)
    dest = "%s/%s" % (addr, repo)
    bi.push_image(layout, ref_name, dest, creds=creds, cert_dir=cert_dir, insecure=insecure)
    return dest


@pytest.fixture(scope="session")
def busybox_ref(registry, layout):
    return push(layout, registry, "test/busybox:1", [bi.busybox_layer()])
