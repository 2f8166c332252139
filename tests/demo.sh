#!/bin/sh
# make demo: the whole flow a user runs, on this machine only.
#   1. a throw-away docker-registry on 127.0.0.1 (a random free port)
#   2. a small image built locally from Debian's busybox-static, pushed to it
#   3. pyimage bundle: pull it (plain http: a loopback registry) and make a bundle
#   4. pyrunc run: run the image's command in a container, its output below
# Everything lives in one temporary directory; the exit trap stops the registry,
# deletes the container and removes that directory, whatever step fails.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
py="$top/.venv/bin/python3"
pyimage="$top/.venv/bin/pyimage"
pyrunc="$top/.venv/bin/pyrunc"

if [ "$(id -u)" != 0 ]; then
	echo "demo: needs root (containers use namespaces, mounts and cgroups)" >&2
	exit 1
fi
for f in "$py" "$pyimage" "$pyrunc"; do
	[ -x "$f" ] || { echo "demo: $f missing: run 'make install' first" >&2; exit 1; }
done

work=$(mktemp -d /tmp/pyimage-demo.XXXXXX)
id="demo-$$"
cleanup() {
	trap '' INT TERM HUP     # a second signal must not cut the cleanup short
	"$pyrunc" --root "$work/state" delete --force "$id" >/dev/null 2>&1 || true
	PYTHONPATH="$top" "$py" -m tests.image.registry stop "$work/registry" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

step() { printf '\n== %s\n' "$*"; }

step "starting a throw-away docker-registry"
addr=$(PYTHONPATH="$top" "$py" -m tests.image.registry start "$work/registry")
echo "registry at http://$addr (storage in $work/registry)"

step "building a busybox image locally and pushing it to $addr/demo/busybox:1"
PYTHONPATH="$top" "$py" -m tests.image.build_image "$addr" demo/busybox:1 \
	--cmd 'echo hello from a container pulled by pyimage and run by pyrunc; echo hostname: $(hostname); id; echo processes:; ps -o pid,user,comm; echo kernel: $(uname -r)' \
	>/dev/null
echo "pushed $addr/demo/busybox:1"

step "pyimage bundle $addr/demo/busybox:1 bundle"
"$pyimage" --store "$work/store" bundle "$addr/demo/busybox:1" "$work/bundle"
"$pyimage" --store "$work/store" images
"$py" - "$work/bundle/config.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))["process"]
print("config.json (pyrunc spec's defaults + the image config): args %s, user %s, cwd %s"
      % (json.dumps(p["args"][:2] + ["..."]), json.dumps(p["user"]), p["cwd"]))
PY

step "pyrunc run $id"
"$pyrunc" --root "$work/state" run --bundle "$work/bundle" "$id"
echo
echo "== exit status 0; registry stopped and $work removed on exit"
