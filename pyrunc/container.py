"""Container lifecycle: create, start, run, kill, delete, state.

create:  state dir -> cgroups -> plan -> spawn (one FFI call) -> id maps, cgroup join,
         GO -> hooks round trip -> READY -> state.json + pid file.  Any failure undoes
         everything done so far: the process is killed and reaped, the cgroups and the
         state directory removed, so nothing is left behind.
The init is never reaped by pyrunc once create succeeded: its parent is our caller's
subreaper (containerd's shim, conmon) or pid 1.
"""
from pyrunc import _os as os

from pyrunc import log as _log
from pyrunc import state as _state
from pyrunc.errors import InitError, PyruncError, StateError

SIGKILL = 9


class Container:
    """A container in a state root.  Use create(), or load() for an existing one."""

    __slots__ = ("root", "id", "cdir", "st", "channel", "pid", "pty")

    def __init__(self, root, cid, cdir, st):
        self.root = root
        self.id = cid
        self.cdir = cdir
        self.st = st
        self.channel = None
        self.pid = st.get("pid", 0) if st else 0
        self.pty = -1

    # ---- loading ----

    @classmethod
    def load(cls, root, cid, lock=True, force=False):
        """lock: wait for the container's lock, but never for a dead create: the
        clone of a killed `create` (the init before its exec) shares the locked open
        file and would hold the lock forever.  force (delete --force): wait at most
        FORCE_WAIT for a live holder too, then go on without the lock."""
        cdir = _state.ContainerDir.open(root, cid, lock=False)
        try:
            st = _state.lock_state(cdir, force) if lock else cdir.read()
        except BaseException:
            cdir.close()
            raise
        return cls(root, cid, cdir, st)

    def close(self):
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        self.cdir.close()

    def status(self):
        return _state.status_of(self.st, self.cdir)

    def oci_state(self, status=None):
        return _state.oci_state(self.id, self.st, status or self.status())

    def _hook_state(self, status):
        st = self.st
        d = {"ociVersion": st["ociVersion"], "id": self.id, "status": status,
             "pid": st.get("pid", 0), "bundle": st["bundle"]}
        if st.get("annotations"):
            d["annotations"] = st["annotations"]
        return d

    # ---- create ----

    @classmethod
    def create(cls, root, cid, bundle, *, pid_file=None, console_socket=None, no_pivot=False,
               preserve_fds=0, run_mode=False, systemd_cgroup=False, no_new_keyring=False):
        """Create a container; with run_mode the init waits on the sync socket, not a fifo.
        no_new_keyring: its processes keep their caller's session keyring (runc's flag)."""
        from pyrunc import spec as _spec

        bundle = os.abspath(bundle)
        _state.check_id(cid)
        spec = _spec.load(bundle)
        proc = spec.process
        if proc.terminal and console_socket is None and not run_mode:
            raise PyruncError("cannot allocate tty if pyrunc will detach without setting console socket")
        if console_socket is not None and not proc.terminal:
            raise PyruncError("cannot use console socket if pyrunc will not detach or allocate tty")
        lsm = mount_label = None
        if proc.apparmor_profile or proc.selinux_label or spec.mount_label:
            from pyrunc import lsm as _lsm

            lsm = _lsm.exec_attr(proc)  # None where that LSM is off: ignored, as runc
            mount_label = _lsm.mount_label(spec)
        preserve_fds += _listen_fds()
        _occupy_preserved(preserve_fds)

        cdir = _state.ContainerDir.make(root, cid)
        self = cls(root, cid, cdir, None)
        undo = _Undo(self)
        # without a mount namespace the child mounts in ours: a failed create must take
        # its rootfs bind away, and only if it got that far (count the mounts there)
        binds = _mounts_at(spec.root_path) if "mount" not in spec.namespaces else -1
        try:
            self._create(spec, undo, pid_file=pid_file, console_socket=console_socket,
                         no_pivot=no_pivot, preserve_fds=preserve_fds, run_mode=run_mode,
                         systemd_cgroup=systemd_cgroup, lsm=lsm, mount_label=mount_label,
                         no_new_keyring=no_new_keyring)
        except BaseException:
            undo.run()
            if binds >= 0 and _mounts_at(spec.root_path) > binds:
                _detach_rootfs(spec.root_path)
            raise
        _spec.flush_warnings()
        return self

    def _create(self, spec, undo, *, pid_file, console_socket, no_pivot, preserve_fds,
                run_mode, systemd_cgroup, lsm, mount_label, no_new_keyring):
        from pyrunc import plan as _plan
        from pyrunc import sync as _sync
        from pyrunc.native import ffi, lib

        cdir = self.cdir
        if not run_mode:
            cdir.make_fifo()

        # a console socket must exist before anything is started (runc dials first)
        console = _connect_console(console_socket) if console_socket is not None else None
        undo.console = console

        from pyrunc.cgroups import create_manager

        cg = create_manager(spec.cgroups_path, self.id, systemd=systemd_cgroup)
        planned, existing = _planned_cgroups(cg)
        if existing:
            _check_existing_cgroup(cg)
        undo.cgroups = cg
        # Crash safety: state.json says what is about to be made before it is made,
        # so that `delete --force` after a SIGKILL of this create at any moment finds
        # the cgroups (here: the directories that do not exist yet), then the init's
        # pid (below, before GO), and removes them.  "creating" marks the record as
        # unfinished, "creator" lets later commands tell a live create from a dead one.
        rec = {"ociVersion": spec.oci_version, "id": self.id, "pid": 0, "bundle": spec.bundle,
               "rootfs": spec.root_path, "created": _state.now_rfc3339(), "annotations": {},
               "namespaces": sorted(spec.namespaces), "systemd": systemd_cgroup,
               "creating": True, "creator": _state.self_id(), "cgroup": planned}
        cdir.write(rec)
        cg.create()
        # always: runc applies its default device rules even without linux.resources.
        # Where that cannot race the init (Manager.set_is_atomic), they go on once it is
        # cloned, beside its rootfs setup: runc too sets them once its init is running.
        late_set = cg.set_is_atomic()  # the systemd manager answers for its cgroupfs one
        if not late_set:
            cg.set(spec.resources or {})

        seccomp = None
        if spec.seccomp:
            from pyrunc import seccomp as _seccomp

            seccomp = _seccomp.prepare(spec.seccomp, self.root)
            # None: a profile asking for nothing (no defaultAction, no syscalls), as runc
            if seccomp is not None and seccomp.skipped:
                # as runc: names this libseccomp does not know are left out, said at debug
                _log.get().debug("seccomp: syscalls unknown to libseccomp skipped: %s"
                                 % ", ".join(seccomp.skipped))

        plan = _plan.build(spec, wait_mode=lib.PRC_WAIT_SYNC if run_mode else lib.PRC_WAIT_FIFO,
                           fifo_dirfd=cdir.fd, preserve_fds=preserve_fds, no_pivot=no_pivot,
                           cgroups=cg, seccomp=seccomp, lsm=lsm, mount_label=mount_label,
                           keyring=None if no_new_keyring else _plan.session_keyring(self.id))
        undo.plan = plan
        v2fd = cg.v2_dirfd() if hasattr(cg, "v2_dirfd") else None
        if v2fd is not None:
            plan.c.cgroup_fd = v2fd
        stage1 = plan.c.n_joins > 0 or plan.c.clone_flags & 0x80  # CLONE_NEWTIME
        if ("user" not in spec.namespaces or stage1) and hasattr(cg, "v1_join_dirs"):
            # the child joins its v1 cgroups itself, without the kernel's grace period
            # (csrc/child/util.c): stage-1 before its setns calls, else the init; an
            # init cloned straight into a new user namespace could not
            plan.join_cgroups(cg.v1_join_dirs())
        # with a cgroup namespace the init must be in its cgroups before it unshares it;
        # systemd (--systemd-cgroup) may move the init while it starts the scope
        cgns = "cgroup" in spec.namespaces
        early_cgroups = cgns or systemd_cgroup
        # The child builds its rootfs before GO when nothing there waits for us: its
        # mounts land in its own mount namespace, no id maps come first, and with a
        # cgroup namespace it is in its cgroups from the start.  Our pid record and
        # cgroup join below then overlap its mounts (csrc/child/init.c).
        placed = getattr(cg, "placed_by_clone", None)
        early = ("mount" in spec.namespaces and not plan.c.userns and not stage1
                 and not systemd_cgroup and (not cgns or (placed is not None and placed())))
        plan.c.early_setup = int(early)
        plan.c.early_needs_into = int(early and cgns and v2fd is not None)

        log = _log.get()
        # --debug: the steps runc logs at debug level, under the same names (its bats
        # suite and people reading logs look for them)
        if log.debug_on:
            log.debug("nsexec container setup: spawning the init of %s (clone flags %#x)"
                      % (self.id, plan.c.clone_flags))
        pidp = ffi.new("int *")
        errp = ffi.new("struct prc_msg *")
        plan.leave_arenas_out()
        r = lib.prc_spawn(plan.c, pidp, errp)
        if r < 0:
            raise _sync.error_from(errp)
        ch = _sync.Channel(plan.c.sync_fd)
        self.channel = ch
        plan.close()  # namespace fds: the child has its own copies now
        pid = pidp[0]
        if plan.c.n_joins > 0 or plan.c.clone_flags & 0x80:
            # stage-1 (joined namespaces, time namespace): it reports the real pid,
            # then exits; it is our child, reap it
            undo.pid = pid
            mtype, value, _ = _recv(ch)
            os.waitpid(pid, 0)
            undo.pid = 0
            if mtype != _sync.MSG_PID:
                raise InitError("container init: unexpected message %d" % mtype)
            pid = value
        undo.pid = pid
        self.pid = pid
        if log.debug_on:
            log.debug("child process in init(): pid %d, setting up the container" % pid)
        start = _state.proc_start_time(pid)
        if start is None:
            raise InitError("container init exited before it started")
        if late_set:
            cg.set(spec.resources or {})
        # the pid as soon as it is known: until GO the init only waits, or with
        # early_setup only mounts in its own namespaces, and dies with us (EOF, or
        # PDEATHSIG); from here `delete --force` can always find it
        rec["pid"] = pid
        rec["init_start"] = start[1]
        rec["cgroup"] = cgstate = cg.to_state()  # the same in the final record
        cdir.write(rec)

        if spec.namespaces.get("user", 1) is None:
            _write_id_maps(pid, spec)
        # The first write to cgroup.procs waits for an RCU grace period (the kernel's
        # threadgroup lock): ~13 ms here, for runc too.  pyrunc/rcuwarm.py started
        # that grace period when the verb was parsed; what is left of it overlaps the
        # child's rootfs setup: without a cgroup namespace nothing there depends on
        # its cgroup, so we join it while the child mounts.  With one, the child
        # unshares it right after GO: join first (with early_setup it is in all its
        # cgroups already, and apply() has nothing to write).
        # systemd (--systemd-cgroup) may move the init while it starts the scope: join first
        if early_cgroups:
            cg.apply(pid)
            _stop_rcuwarm()
        if spec.process.oom_score_adj is not None:
            _write_proc(pid, "oom_score_adj", str(spec.process.oom_score_adj))

        st = {
            "ociVersion": spec.oci_version,
            "id": self.id,
            "pid": pid,
            "init_start": start[1],
            "bundle": spec.bundle,
            "rootfs": spec.root_path,
            "created": _state.now_rfc3339(),
            "annotations": spec.annotations,
            "cgroup": cgstate,
            "hooks": _hooks_raw(spec),
            "namespaces": sorted(spec.namespaces),
            "systemd": systemd_cgroup,
            "creating": True,
            "creator": rec["creator"],
        }
        if no_new_keyring:
            st["no_new_keyring"] = True  # exec then keeps its caller's keyring too
        self.st = st
        _send_go(ch)
        if not early_cgroups:
            cg.apply(pid)
            _stop_rcuwarm()

        while True:
            mtype, value, fd = _recv(ch)
            if mtype == _sync.MSG_HOOKS:
                hs = spec.hooks
                if hs:
                    state = self._hook_state("creating")
                    # prestart (deprecated) and createRuntime: in the runtime's namespaces
                    for phase in ("prestart", "createRuntime"):
                        if phase in hs:
                            _run_hooks(phase, hs[phase], state)
                    if "createContainer" in hs:
                        # in the container's namespaces, before pivot_root (so the
                        # hook's path still resolves as on the host), as runc does
                        fds = _ns_fds(pid, spec.namespaces)
                        try:
                            # from the rootfs, as runc (its init chdirs there first):
                            # hooks may use paths relative to it
                            _run_hooks("createContainer", hs["createContainer"], state, fds,
                                       cwd=spec.root_path)
                        finally:
                            for nfd in fds:
                                os.close(nfd)
                ch.send(_sync.MSG_HOOKS_DONE)
            elif mtype == _sync.MSG_PTY:
                if console is None and run_mode:
                    # foreground run with a terminal: we proxy the pty ourselves
                    undo.pty = self.pty = fd
                    continue
                try:
                    _send_console(console, fd)
                finally:
                    os.close(fd)
            elif mtype == _sync.MSG_SECCOMP_FD:
                try:
                    from pyrunc import seccomp as _seccomp

                    _seccomp.send_to_listener(fd, seccomp, self.oci_state("creating"), pid)
                finally:
                    os.close(fd)
                ch.send(_sync.MSG_GO)
            elif mtype == _sync.MSG_READY:
                if log.debug_on:
                    log.debug("init: closing the pipe to signal completion: %s is set up, "
                              "waiting for start" % self.id)
                break
            elif mtype == 0:
                raise InitError("container init exited during setup")
            else:
                raise InitError("container init: unexpected message %d" % mtype)

        if console is not None:
            console.close()
            undo.console = None
        if pid_file:
            _state.write_pid_file(pid_file, pid)
        # unlock before the final state: were we killed in between, the init (our
        # clone, blocked on the fifo) would otherwise hold the lock forever
        cdir.unlock()
        del st["creating"], st["creator"]
        cdir.write(st)
        undo.pid = 0
        undo.cgroups = None
        undo.dir_made = False
        if not run_mode:
            ch.close()
            self.channel = None

    # ---- start ----

    def _start_hooks(self):
        """startContainer: in the container's namespaces (setns into its mount namespace
        lands in its root, so the path resolves there), before the init execs, under
        the container's seccomp filter, as runc runs them from its init.  A failure
        stops the container, as the spec says."""
        hs = self.st.get("hooks", {}).get("startContainer")
        if not hs:
            return
        seccomp = self._seccomp_for_hooks()
        fds = _ns_fds(self.st["pid"], self.st.get("namespaces", ()))
        try:
            _run_hooks("startContainer", _hook_objs(hs), self._hook_state("created"), fds,
                       seccomp=seccomp)
        except PyruncError:
            try:
                _signal_pid(self.st["pid"], self.st["init_start"], SIGKILL)
            except StateError:
                pass
            raise
        finally:
            for fd in fds:
                os.close(fd)

    def _seccomp_for_hooks(self):
        """the container's compiled filter (the cache makes this cheap), or None"""
        from pyrunc import jsonfast

        try:
            with open(os.path.join(self.st["bundle"], "config.json"), "rb") as f:
                sc = ((jsonfast.loads(f.read()) or {}).get("linux") or {}).get("seccomp")
        except (OSError, jsonfast.JSONError, AttributeError):
            return None
        if not sc:
            return None
        from pyrunc import seccomp as _seccomp

        return _seccomp.prepare(sc, self.root)

    def start(self):
        if self.channel is not None:
            # run: we just created it, and the init waits on the sync socket
            from pyrunc import sync as _sync

            self._start_hooks()
            ch = self.channel
            self.channel = None
            try:
                ch.send(_sync.MSG_START)
                # The init's end of the socket is close-on-exec: EOF means it has
                # exec'd.  A failure in between (an execveat the seccomp profile
                # refuses, say) arrives as its error record and fails `run` with it,
                # instead of an init that exits 1 without a word.
                ch.recv()
            finally:
                ch.close()
        else:
            _state.check_startable(self.st, self.cdir)
            self._start_hooks()
            _state.release_init(self.cdir, self.st["pid"], self.st.get("init_start"))
        hs = self.st.get("hooks", {}).get("poststart")
        if hs:
            try:
                _run_hooks("poststart", _hook_objs(hs), self._hook_state("running"))
            except PyruncError as err:
                # the spec: a failing poststart hook is logged, the container keeps running
                _log.get().warn(str(err))

    # ---- kill / delete ----

    def kill(self, sig, all_processes=False):
        if not all_processes:
            _state.kill_init(self.st, self.cdir, sig)
            return
        if self.status() == "stopped":
            return  # runc: kill --all of a stopped container succeeds
        self._cgroups().kill_all(sig)

    def _cgroups(self):
        from pyrunc.cgroups import load_manager

        return load_manager(self.st["cgroup"])

    def delete(self, force=False):
        status = self.status()
        if status in ("running", "paused", "creating") and not force:
            raise StateError("cannot delete container %s that is not stopped: %s" % (self.id, status))
        cg = self._cgroups() if self.st.get("cgroup") else None
        if self.st.get("creating"):
            # a create that was killed (or, with --force, one still running): take
            # away everything its record names; no hooks, it never was created
            self._kill_and_wait(cg, all_processes=_made_leaf(self.st.get("cgroup")))
            if cg is not None:
                cg.destroy()
            if "mount" not in self.st.get("namespaces", ("mount",)):
                _detach_rootfs(self.st["rootfs"])
            self.cdir.remove()
            return
        if status != "stopped":
            # a created container is deleted as runc does (containerd relies on it)
            if status == "paused" and cg is not None:
                cg.thaw()
            self._kill_and_wait(cg)
        elif cg is not None and "pid" not in self.st.get("namespaces", ()):
            # without a pid namespace, children of the init outlive it: kill them
            cg.kill_all(SIGKILL)
        hs = self.st.get("hooks", {}).get("poststop")
        if hs:
            try:
                _run_hooks("poststop", _hook_objs(hs), self._hook_state("stopped"))
            except PyruncError as err:
                _log.get().warn(str(err))
        if cg is not None:
            cg.destroy()
        if "mount" not in self.st.get("namespaces", ("mount",)):
            _detach_rootfs(self.st["rootfs"])
        self.cdir.remove()

    def _kill_and_wait(self, cg, all_processes=False):
        pid = self.st.get("pid", 0)
        if cg is not None:
            # a frozen task does not die of SIGKILL until thawed: thaw first, whoever
            # froze it (pause, a killed kill --all), so that the wait below ends
            try:
                if cg.paused():
                    cg.thaw()
            except (OSError, PyruncError):
                pass
        if pid > 0:
            try:
                _signal_pid(pid, self.st.get("init_start"), SIGKILL)
            except StateError:
                pass
        if cg is not None and (all_processes or "pid" not in self.st.get("namespaces", ())):
            try:
                cg.kill_all(SIGKILL)
            except (OSError, PyruncError):
                pass  # destroy() kills again what is left, and says what failed
        if pid > 0:
            _wait_gone(pid, self.st.get("init_start"), timeout=2.0)


def _check_existing_cgroup(cg):
    """runc 1.1's checks of a cgroup that exists before create (_planned_cgroups
    found it): a frozen one is refused (the init would hang in it, and `run` with
    it), a non-empty one is warned about and used"""
    hs = cg.hs
    from pyrunc import spec as _spec
    from pyrunc.cgroups import CgroupError

    try:
        frozen = cg.paused()
    except (CgroupError, OSError):
        frozen = False  # not in the freezer hierarchy: nothing there can be frozen
    finally:
        for h in hs:
            h.close()  # create() opens what it made itself
    if frozen:
        raise PyruncError("container's cgroup unexpectedly frozen")
    try:
        n = len(cg.pids())
    except (CgroupError, OSError):
        n = 0
    if n:
        # runc 1.1 adds that this will be refused in 1.2; we only warn, as 1.1 does
        _spec._warn("container's cgroup is not empty: %d process(es) found" % n)


def _made_leaf(cgstate):
    """whether create made the container's own cgroup directory (then every process
    in it is the container's); not for a cgroup that existed before"""
    try:
        return any(h[1] in h[4] for h in cgstate["h"])
    except (KeyError, TypeError, IndexError):
        return False


def _stop_rcuwarm():
    """end pyrunc/rcuwarm.py's warming, if this process started it (exec does, when it
    must move a process itself); create never does, so it need not load that module"""
    import sys

    warm = sys.modules.get("pyrunc.rcuwarm")
    if warm is not None:
        warm.stop()


def _planned_cgroups(cg):
    """(the cgroup record before create(): each hierarchy's directories that do not
    exist yet, i.e. what create() is about to make (what destroy() removes); whether
    the container's own cgroup exists already in some hierarchy)"""
    hs = getattr(cg, "hs", None)
    if not hs or getattr(cg, "prefix", None) is None or not hasattr(hs[0], "rel"):
        return cg.to_state(), False  # another kind of manager (systemd): its own record
    saved = [h.made for h in hs]
    existing = False
    try:
        for h in hs:
            parts = h.rel.split("/")
            missing = []
            for i in range(len(parts), 0, -1):
                p = "/".join(parts[:i])
                # lstat's question without an exception for each missing directory
                # (every one of them, on a fresh create)
                if os.access(h.mnt + "/" + p, os.F_OK, follow_symlinks=False):
                    break
                missing.append(p)
            existing = existing or not missing
            h.made = list(reversed(missing))
        return cg.to_state(), existing
    finally:
        for h, m in zip(hs, saved):
            h.made = m


def _mounts_at(path):
    """how many mounts are stacked on `path` (mountinfo's mount point field)"""
    want = os.path.realpath(path).replace("\\", "\\134").replace(" ", "\\040") \
        .replace("\t", "\\011").replace("\n", "\\012")
    with open("/proc/self/mountinfo") as f:
        return sum(1 for line in f if line.split(" ", 5)[4] == want)


def _detach_rootfs(rootfs):
    """A container without a mount namespace mounted its rootfs bind (and everything
    under it) in ours: detach that bind, the top mount on the rootfs, once it is gone."""
    import ctypes  # only for such containers; the usual delete does not pay for it
    import errno

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(os.fsencode(rootfs), 2) < 0:  # MNT_DETACH
        err = ctypes.get_errno()
        if err != errno.EINVAL:  # EINVAL: not a mount point (already detached)
            _log.get().warn("unmount rootfs %s: %s" % (rootfs, os.strerror(err)))


class _Undo:
    """What a failed create must take back, in reverse order."""

    __slots__ = ("c", "pid", "cgroups", "plan", "console", "dir_made", "pty")

    def __init__(self, c):
        self.c = c
        self.pid = 0
        self.cgroups = None
        self.plan = None
        self.console = None
        self.dir_made = True
        self.pty = -1

    def run(self):
        c = self.c
        if c.channel is not None:
            c.channel.close()
            c.channel = None
        if self.plan is not None:
            self.plan.close()
        if self.console is not None:
            self.console.close()
        if self.pty >= 0:
            os.close(self.pty)
        if self.pid > 0:
            # our own child until create returns: kill it and reap it
            try:
                os.kill(self.pid, SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                _wait_gone(self.pid, None)
        if self.cgroups is not None:
            try:
                if self.pid > 0:
                    self.cgroups.kill_all(SIGKILL)
                self.cgroups.destroy()
            except (OSError, PyruncError) as err:
                _log.get().warn("cleanup cgroups: %s" % err)
        if self.dir_made:
            c.cdir.remove()
        c.cdir.close()


def _recv(ch):
    return ch.recv()


def _send_go(ch):
    """GO; a child that failed before it (early_setup) has closed its end: its report
    waits in the socket and says why, not the EPIPE of our send"""
    from pyrunc import sync as _sync

    try:
        ch.send(_sync.MSG_GO)
    except InitError:
        if _recv(ch)[0] == 0:
            raise InitError("container init exited during setup") from None
        raise


_signal_pid = _state.signal_init


def _wait_gone(pid, start, timeout=10.0):
    """wait until pid has exited (a zombie counts: its parent reaps it, not us)"""
    import select
    import time

    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        deadline = time.monotonic() + timeout
        p = select.poll()
        p.register(pidfd, select.POLLIN)
        while time.monotonic() < deadline:
            if p.poll(100):
                return
            info = _state.proc_start_time(pid)
            if info is None or (start is not None and info[1] != start) or info[0] in ("Z", "X"):
                return
    finally:
        os.close(pidfd)


def _ns_fds(pid, namespaces):
    """fds of the child's namespaces to join for a hook, user first; the pid namespace
    too (prc_spawn_in_ns forks once more after joining it, as it only applies to children)"""
    from pyrunc.tables import JOIN_ORDER, NAMESPACES

    fds = []
    try:
        for t in JOIN_ORDER:
            if t in namespaces:
                name = NAMESPACES[t][1]
                if os.stat("/proc/%d/ns/%s" % (pid, name)).st_ino != os.stat("/proc/self/ns/" + name).st_ino:
                    fds.append(os.open("/proc/%d/ns/%s" % (pid, name), os.O_RDONLY | os.O_CLOEXEC))
    except OSError:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def _write_proc(pid, name, value):
    """/proc/<pid>/<name> through csrc/child/procfs.c: only on procfs, no symlink or
    mount followed (the same code as the child's sysctl writes)"""
    from pyrunc.native import lib

    data = value.encode()
    r = lib.prc_proc_write_file(("%d/%s" % (pid, name)).encode(), data, len(data))
    if r < 0:
        raise PyruncError("write /proc/%d/%s: %s" % (pid, name, os.strerror(-r).lower()))


def _write_id_maps(pid, spec):
    """The parent writes the child's maps.  As root it has CAP_SETUID/SETGID in the
    parent namespace and writes any map.  Unprivileged, the kernel lets it map only
    its own ids, one line each, and gid_map only after setgroups is denied; anything
    larger (podman's configs map subordinate ids) goes through the setuid helpers
    newuidmap/newgidmap, which check /etc/subuid and /etc/subgid, as runc does."""
    if os.geteuid() == 0:
        for name, maps in (("uid_map", spec.uid_mappings), ("gid_map", spec.gid_mappings)):
            if maps:
                _write_proc(pid, name, _map_text(maps))
        return
    own = (os.geteuid(), os.getegid())
    for i, (name, maps, helper) in enumerate((("uid_map", spec.uid_mappings, "newuidmap"),
                                              ("gid_map", spec.gid_mappings, "newgidmap"))):
        if not maps:
            continue
        if len(maps) == 1 and maps[0].size == 1 and maps[0].host_id == own[i]:
            if name == "gid_map":
                _write_proc(pid, "setgroups", "deny")
            _write_proc(pid, name, _map_text(maps))
            continue
        _run_idmap_helper(helper, pid, maps)


def _map_text(maps):
    return "".join("%d %d %d\n" % (m.container_id, m.host_id, m.size) for m in maps)


def _run_idmap_helper(helper, pid, maps):
    import shutil
    import subprocess

    path = shutil.which(helper, path="/usr/bin:/bin:/usr/sbin:/sbin")
    if path is None:
        raise PyruncError("linux.%sMappings: mapping more than your own id needs %s (Debian's uidmap package)"
                          % ("uid" if helper == "newuidmap" else "gid", helper))
    argv = [path, str(pid)]
    for m in maps:
        argv += [str(m.container_id), str(m.host_id), str(m.size)]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if p.returncode:
        msg = p.stderr.decode("utf-8", "replace").strip().splitlines()
        raise PyruncError("%s %d: %s" % (helper, pid, msg[-1] if msg else "exit status %d" % p.returncode))


def _hooks_raw(spec):
    out = {}
    for phase in ("startContainer", "poststart", "poststop"):
        if phase in spec.hooks:
            out[phase] = [{"path": h.path, "args": h.args, "env": h.env, "timeout": h.timeout}
                          for h in spec.hooks[phase]]
    return out


def _run_hooks(phase, hooks, state, ns_fds=None, cwd=None, seccomp=None):
    # imported when a container has hooks: most have none, and every command pays imports
    from pyrunc import hooks as _hooks

    return _hooks.run(phase, hooks, state, ns_fds, cwd=cwd, seccomp=seccomp)


def _hook_objs(raw):
    from pyrunc.spec import Hook

    return [Hook(h["path"], h.get("args") or [], h.get("env") or [], h.get("timeout")) for h in raw]


def _listen_fds():
    # systemd socket activation: LISTEN_FDS fds after 0-2 are passed on (runc does)
    n = os.getenv("LISTEN_FDS")
    if n and n.isdigit() and os.getenv("LISTEN_PID") == str(os.getpid()):
        return int(n)
    return 0


def _occupy_preserved(n):
    """A preserved fd number that is not open would be taken by one of our own files
    (the state dir, a namespace fd) and leak into the container: park /dev/null there."""
    for fd in range(3, 3 + n):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open("/dev/null", os.O_RDWR)
            if null != fd:
                os.dup2(null, fd, inheritable=False)
                os.close(null)


class _Console:
    __slots__ = ("fd",)

    def __init__(self, fd):
        self.fd = fd

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _connect_console(path):
    import _socket

    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as err:
        s.close()
        raise PyruncError("dial unix %s: connect: %s" % (path, os.strerror(err.errno).lower())) from None
    return _Console(s.detach())


def _send_console(console, fd):
    """one sendmsg: payload "/dev/ptmx" (as runc) and exactly one fd, the pty master"""
    import _socket
    import array

    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, console.fd)
    try:
        s.sendmsg([b"/dev/ptmx"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array.array("i", [fd]))])
    finally:
        s.detach()


def run_container(root, cid, bundle, *, detach=False, pid_file=None, console_socket=None,
                  no_pivot=False, preserve_fds=0, systemd_cgroup=False, keep=False,
                  no_new_keyring=False):
    """create + start; in the foreground, wait for the init and delete the container
    (keep: leave it, stopped, with its cgroups, for `delete`)"""
    c = Container.create(root, cid, bundle, pid_file=pid_file, console_socket=console_socket,
                         no_pivot=no_pivot, preserve_fds=preserve_fds, run_mode=True,
                         systemd_cgroup=systemd_cgroup, no_new_keyring=no_new_keyring)
    forwarded = [] if detach else forward_signals(c.pid)
    try:
        c.start()
    except BaseException:
        try:
            c.delete(force=True)
        finally:
            c.close()
        raise
    if detach:
        c.close()
        return 0
    try:
        code = wait_exit_code(c.pid, c.pty)
        if not keep:
            # the container is gone: clean up like `delete`
            c.st["pid"] = 0
            c.delete(force=True)
        return code
    finally:
        restore_signals(forwarded)
        c.close()


def forward_signals(pid):
    """Forward what a shell would send us to pid, as runc does; returns the handlers
    to give back to restore_signals()."""
    import _signal

    def forward(signum, frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    return [(sig, _signal.signal(sig, forward))
            for sig in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT,
                        _signal.SIGUSR1, _signal.SIGUSR2, _signal.SIGWINCH)]


def restore_signals(saved):
    import _signal

    for sig, handler in saved:
        _signal.signal(sig, handler)


def wait_exit_code(pid, pty=-1):
    """Wait for our child pid, proxying its terminal when pty >= 0; its exit code, or
    128+signal when a signal killed it.  (waitpid is retried on EINTR by Python, our
    forwarding handler raises nothing.)"""
    status = _proxy_pty(pty, pid) if pty >= 0 else os.waitpid(pid, 0)[1]
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _proxy_pty(master, pid):
    """Copy our stdin to the container's pty and its output to our stdout until the
    init exits; our terminal (if stdin is one) is raw meanwhile and its size follows
    ours.  Returns the wait status."""
    import _signal
    import fcntl
    import select
    import termios

    tty = os.isatty(0)
    saved = None
    if tty:
        saved = termios.tcgetattr(0)
        raw = termios.tcgetattr(0)
        # cfmakeraw
        raw[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
                    | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
        raw[1] &= ~termios.OPOST
        raw[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
        raw[2] &= ~(termios.CSIZE | termios.PARENB)
        raw[2] |= termios.CS8
        termios.tcsetattr(0, termios.TCSANOW, raw)

        def resize(signum=None, frame=None):
            try:
                fcntl.ioctl(master, termios.TIOCSWINSZ, fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))
            except OSError:
                pass

        resize()
        old_winch = _signal.signal(_signal.SIGWINCH, resize)
    pidfd = os.pidfd_open(pid)
    p = select.poll()
    p.register(master, select.POLLIN)
    p.register(pidfd, select.POLLIN)
    try:
        p.register(0, select.POLLIN)
    except (OSError, ValueError):
        pass  # no usable stdin: only the container's output is copied
    try:
        done = False
        while not done:
            try:
                events = p.poll()
            except InterruptedError:
                continue
            for fd, ev in events:
                if fd == master:
                    try:
                        data = os.read(master, 65536)
                    except OSError:  # EIO: every slave fd is closed
                        data = b""
                    if not data:
                        p.unregister(master)
                        continue
                    os.write(1, data)
                elif fd == 0:
                    data = os.read(0, 65536) if ev & select.POLLIN else b""
                    if not data:
                        p.unregister(0)
                        continue
                    os.write(master, data)
                elif fd == pidfd:
                    done = True
        # drain what the container wrote last
        while True:
            try:
                data = os.read(master, 65536) if select.select([master], [], [], 0)[0] else b""
            except OSError:
                data = b""
            if not data:
                break
            os.write(1, data)
        _, status = os.waitpid(pid, 0)
        return status
    finally:
        os.close(pidfd)
        os.close(master)
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
            _signal.signal(_signal.SIGWINCH, old_winch)


list_containers = _state.list_containers
