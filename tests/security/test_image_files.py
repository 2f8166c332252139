"""Files of the image that the runtime reads itself (the container's /etc/passwd, for a
default HOME) are opened inside the root, never through a magic link to the host, and
only when they are regular files: a fifo there must not hang create."""
import os


from tests.conftest import requires_root
from tests.security.mountattack import image_link, set_namespaces, via_magic
from tests.security.test_console import opened, watch_opens

pytestmark = requires_root


def no_home(bundle):
    env = bundle.config["process"]["env"]
    bundle.config["process"]["env"] = [e for e in env if not e.startswith("HOME=")]


def test_passwd_through_magic_link_is_not_read(runtime, bundle, tmp_path):
    canary = str(tmp_path / "host-passwd")
    with open(canary, "w") as f:
        f.write("root:x:0:0:root:/leaked-from-host:/bin/sh\n")
    no_home(bundle)
    set_namespaces(bundle, "network", "ipc", "mount")  # no pid namespace: /proc/<pid>/root is the host's
    image_link(bundle, "/etc/passwd", via_magic(canary))
    bundle.args("/bin/sh", "-c", 'echo "$HOME"')
    w = watch_opens(canary)
    try:
        r = runtime.run("run", "-b", bundle.path, bundle.id)
        was_opened = opened(w)
    finally:
        os.close(w)
    assert not was_opened, "the host file was opened as the container's /etc/passwd"
    assert r.returncode == 0, r.stderr
    assert r.stdout == "/\n"


def test_passwd_fifo_does_not_hang_create(runtime, bundle):
    no_home(bundle)
    os.unlink(bundle.rootfs + "/etc/passwd")
    os.mkfifo(bundle.rootfs + "/etc/passwd")
    bundle.args("/bin/sh", "-c", 'echo "$HOME"')
    r = runtime.run("run", "-b", bundle.path, bundle.id, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "/\n"


def test_passwd_home_still_found(runtime, bundle):
    no_home(bundle)
    with open(bundle.rootfs + "/etc/passwd", "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    bundle.args("/bin/sh", "-c", 'echo "$HOME"')
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0 and r.stdout == "/root\n", r.stderr
