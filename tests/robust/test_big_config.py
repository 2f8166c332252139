"""A 64 MiB config.json: create works, and start, state and delete --force read the
state (which carries the annotations) in linear time."""
import json
import os
import time

from tests.conftest import cgroup_dirs, requires_root

pytestmark = requires_root


def test_64mib_config(runtime, bundle):
    bundle.args("true")
    bundle.config["annotations"] = {"big.%d" % i: "x" * (1 << 20) for i in range(64)}
    bundle.save()
    assert os.path.getsize(bundle.config_path) > 64 << 20
    for args in (("create", "-b", bundle.path, bundle.id), ("state", bundle.id), ("start", bundle.id),
                 ("state", bundle.id), ("delete", "--force", bundle.id)):
        t = time.monotonic()
        r = runtime.run(*args, timeout=60)
        took = time.monotonic() - t
        assert r.returncode == 0, (args, r.stderr)
        # quadratic reading took minutes; linear is well under a second idle
        assert took < 20, (args, took)
        if args[0] == "state":
            assert len(json.loads(r.stdout)["annotations"]) == 64
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))
    assert cgroup_dirs(bundle.id) == []
