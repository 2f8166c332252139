# pyrunc + pyimage.  Two commands a newcomer needs: `make demo` and `make test`.
# Everything installs from this file: apt packages (as root, only the missing ones),
# a virtualenv in .venv/, the package (with its C core) and fast launchers.

# Debian's /usr/bin/python3 when there is one: it is linked statically and built with
# LTO and PGO, where pyenv's links libpython3.11.so at every start.  Measured here:
# 1 ms faster to start, 2 ms faster through pyrunc's imports, and every pyrunc command
# pays start-up.  (python3-venv and python3-dev come with `make deps`.)
PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python3
PIP := $(PY) -m pip --disable-pip-version-check -q
STAMP := $(VENV)/.installed

# Debian packages: build + test dependencies, and the reference tools we compare with.
APT_PKGS := gcc libc6-dev python3-venv python3-dev libseccomp-dev busybox-static runc crun containerd \
            docker-registry skopeo umoci strace hyperfine iproute2 util-linux \
            apache2-utils openssl uidmap passwd criu
# callers tested for real; without their recommends (podman's pull in systemd)
APT_NORECOMMENDS := podman conmon

PY_SOURCES := $(shell find pyrunc pyimage csrc -name '*.py' -o -name '*.c' -o -name '*.h' | grep -v _gen) pyproject.toml

.PHONY: all install deps vm-deps native test fuzz test-unit test-integration test-image test-cgroup2 test-lsm test-criu bench-criu demo bench bench-image conformance test-runc-bats clean bench-seccomp

all: install

deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing (run make as root)"; exit 1; fi; \
	  echo "apt-get install$$missing"; \
	  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; \
	fi
	@missing=""; for p in $(APT_NORECOMMENDS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing (run make as root)"; exit 1; fi; \
	  echo "apt-get install --no-install-recommends$$missing"; \
	  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null; \
	fi

$(PY):
	$(PYTHON) -m venv $(VENV)

# editable install in "compat" mode: a plain path in a .pth file (no import hook), and
# the cffi module built in place as pyrunc/_native*.so
$(STAMP): $(PY) $(PY_SOURCES)
	$(PIP) install "setuptools>=74" wheel "cffi>=1.16" "jsonschema>=4" "pytest>=7" "requests>=2.28" "zstandard>=0.21"
	$(PIP) install --no-build-isolation --config-settings editable_mode=compat -e .
	$(PY) -m pyrunc.launcher $(VENV)/bin
	@touch $@

install: $(STAMP)

native: install

test: deps install
	$(PY) -m pytest -q tests

# more mutated configs than `make test` runs (tests/robust/test_fuzz_config.py);
# FUZZ_SEED picks another seed, FUZZ_CASES another count
FUZZ_CASES ?= 3000
FUZZ_SEED ?= pyrunc-fuzz-2
fuzz: deps install
	PYRUNC_FUZZ_CASES=$(FUZZ_CASES) PYRUNC_FUZZ_SEED=$(FUZZ_SEED) $(PY) -m pytest -q tests/robust/test_fuzz_config.py

test-unit: install
	$(PY) -m pytest -q tests/unit

test-integration: deps install
	$(PY) -m pytest -q tests/integration

test-image: deps install
	$(PY) -m pytest -q tests/image

bench-image: deps install
	$(PY) bench/bench_image.py

# The VM targets boot Debian's kernel in qemu over a read-only view of this machine, with
# the checkout shared read-write (tests/vm/run-vm; the kernel is cached in /var/tmp).
# qemu's recommends (a desktop's worth) are not needed; apparmor brings apparmor_parser,
# which the AppArmor tests run in the guest (it loads nothing on a host without AppArmor);
# secilc compiles the SELinux tests' policy (tests/lsm/minimal.cil).
VM_APT_PKGS := qemu-system-x86 busybox-static apparmor secilc
vm-deps:
	@missing=""; for p in $(VM_APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing (run make as root)"; exit 1; fi; \
	  echo "apt-get install --no-install-recommends$$missing"; \
	  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null; \
	fi

VM := $(CURDIR)/tests/vm/run-vm
VM_TIMEOUT ?= 1200

# the cgroup tests on a kernel whose only cgroup mount is cgroup2 with every controller
# (pure v2: clone3 CLONE_INTO_CGROUP, the eBPF device program, cgroup.freeze, cgroup.kill)
CGV2_VM ?= $(VM)
CGROUP_TESTS := tests/integration/test_cgroups.py tests/integration/test_cgroup_containers.py \
                tests/integration/test_cgroup_join.py $(wildcard tests/unit/test_cgroups_*.py) \
                tests/rootless/test_rootless.py tests/unit/test_fastimport.py
test-cgroup2: deps vm-deps install
	$(CGV2_VM) -m cgroup2 -t $(VM_TIMEOUT) -w $(CURDIR) -C $(CURDIR) -- $(PY) -m pytest -q -rs $(CGROUP_TESTS)

# AppArmor and SELinux applied: once with AppArmor as the major LSM, once with SELinux
test-lsm: deps vm-deps install
	$(VM) -m apparmor -t $(VM_TIMEOUT) -w $(CURDIR) -C $(CURDIR) -- $(PY) -m pytest -q -rs tests/lsm
	$(VM) -m selinux -t $(VM_TIMEOUT) -w $(CURDIR) -C $(CURDIR) -- $(PY) -m pytest -q -rs tests/lsm

# checkpoint/restore: criu cannot work on this machine's kernel (`criu check` fails on
# its vdso), so the tests run in the VM on Debian's kernel, against pyrunc and runc; the
# time of each checkpoint and restore goes to $(CRIU_TIMINGS)
CRIU_TIMINGS ?= $(CURDIR)/.criu-timings
test-criu: deps vm-deps install
	rm -f $(CRIU_TIMINGS)
	$(VM) -m cgroup2 -t $(VM_TIMEOUT) -w $(CURDIR) -C $(CURDIR) -e CRIU_TIMINGS=$(CRIU_TIMINGS) -- \
	  $(PY) -m pytest -q -rs tests/criu tests/unit/test_criu_rpc.py
	@cat $(CRIU_TIMINGS) 2>/dev/null || true

# checkpoint/restore/delete timings, pyrunc against runc, in the same VM
bench-criu: deps vm-deps install
	$(VM) -m cgroup2 -t $(VM_TIMEOUT) -w $(CURDIR) -C $(CURDIR) -- $(PY) bench/bench_criu.py 4

demo: deps install
	@sh tests/demo.sh

# each verb against runc (and crun), the bare interpreter as the floor, ctr run --rm under
# containerd, then create with a Docker-shaped seccomp profile, cold and cached
bench: deps install
	$(PY) bench/bench_runtime.py
	$(PY) bench/bench_seccomp.py

# seccomp: compile/cache costs and create with a Docker-shaped profile (vs runc)
bench-seccomp: deps install
	$(PY) bench/bench_seccomp.py

# opencontainers/runtime-tools validation suite against RUNTIME (runc for a baseline).
# The suite is built beforehand outside the tree, see tests/conformance/README.md.
RUNTIME_TOOLS ?= /tmp/runtime-tools
RUNTIME ?= $(VENV)/bin/pyrunc
conformance: install
	$(PY) tests/conformance/run_runtime_tools.py --runtime-tools $(RUNTIME_TOOLS) --runtime $(RUNTIME) $(CONFORMANCE_FLAGS)

# runc's own integration suite (tests/integration/*.bats of a runc checkout, tag v1.1.5)
# against RUNTIME; the checkout is prepared beforehand, see tests/conformance/README.md.
# Per-file table; RUNC_BATS_FLAGS="--failures exec tty" lists failures, runs some files.
RUNC_SRC ?= /tmp/runc-src
test-runc-bats: install
	$(PY) tests/conformance/run_runc_bats.py --runc-src $(RUNC_SRC) --runtime $(RUNTIME) $(RUNC_BATS_FLAGS)

clean:
	rm -rf $(VENV) build csrc/_gen pyrunc/_native*.so pyrunc/_libseccomp*.so
