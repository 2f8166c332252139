#!/bin/sh
# make demo: build a tiny busybox bundle locally and run a container from it with pyrunc.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
py="$top/.venv/bin/python3"
pyrunc="$top/.venv/bin/pyrunc"
work=$(mktemp -d /tmp/pyrunc-demo.XXXXXX)
root="$work/state"
trap '"$pyrunc" --root "$root" delete --force demo >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

echo "== building a busybox root filesystem in $work/bundle/rootfs"
mkdir -p "$work/bundle/rootfs/bin" "$work/bundle/rootfs/etc" "$work/bundle/rootfs/tmp"
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
for a in sh echo hostname id ls cat uname ps; do ln -s busybox "$work/bundle/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/bundle/rootfs/etc/passwd"

echo "== pyrunc spec (runc's default config.json)"
"$pyrunc" spec --bundle "$work/bundle"
"$py" - "$work/bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
cfg = json.load(open(path))
cfg["process"]["terminal"] = False
cfg["hostname"] = "demo"
cfg["process"]["args"] = ["/bin/sh", "-c",
    "echo hello from a pyrunc container; echo hostname: $(hostname); id; "
    "echo processes:; ps; echo kernel: $(uname -r)"]
json.dump(cfg, open(path, "w"), indent=2)
PY

echo "== pyrunc run demo"
"$pyrunc" --root "$root" run --bundle "$work/bundle" demo
echo "== exit status $?"
