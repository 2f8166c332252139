"""exec: a new process in a running container.

The process joins every namespace of the container's init (/proc/<pid>/ns/*, the user
namespace first), its cgroups, and gets its own user, capabilities, rlimits, seccomp
and no_new_privs.  The pid namespace only applies to children, so the native side
always goes through stage-1, which clones the process with CLONE_PARENT: its parent is
this `pyrunc exec`, and after a detached exec returns, our caller's subreaper.
"""
from pyrunc import _os as os

from pyrunc import container as _container
from pyrunc import spec as _spec
from pyrunc.errors import ConfigError, InitError, PyruncError, StateError


def process_from_file(path):
    from pyrunc import jsonfast

    try:
        with open(path, "rb") as f:
            raw = jsonfast.loads(f.read())
    except OSError as err:
        raise ConfigError("read process file %s: %s" % (path, os.strerror(err.errno).lower())) from None
    except jsonfast.JSONError as err:
        raise ConfigError("process file %s: invalid JSON: %s" % (path, err)) from None
    if not isinstance(raw, dict):
        raise ConfigError("process file %s: must be a JSON object" % path)
    return _parse_process(raw, path)


def _parse_process(raw, where, check_text=True):
    saved = _spec.CONFIG
    _spec.CONFIG = where
    try:
        if check_text:
            _spec.check_strings(raw, ("process",))
        proc = _spec._process({"process": raw})
    finally:
        _spec.CONFIG = saved
    _spec.flush_warnings()
    return proc


def process_from_flags(base, args, opts):
    """runc exec without --process: the container's process, with the flags applied"""
    raw = dict(base)
    raw["args"] = args
    raw["terminal"] = bool(opts.tty)
    if opts.cwd:
        raw["cwd"] = opts.cwd
    if opts.env:
        raw["env"] = list(raw.get("env") or []) + opts.env
    user = dict(raw.get("user") or {})
    if opts.user:
        uid, _, gid = opts.user.partition(":")
        try:
            user["uid"] = int(uid)
            if gid:
                user["gid"] = int(gid)
        except ValueError:
            raise ConfigError("invalid --user %r: want uid[:gid]" % opts.user) from None
    if opts.additional_gids:
        try:
            user["additionalGids"] = [int(g) for g in opts.additional_gids]
        except ValueError:
            raise ConfigError("invalid --additional-gids") from None
    raw["user"] = user
    if opts.cap:
        caps = {k: list(v) for k, v in (raw.get("capabilities") or {}).items()}
        # as runc: --cap widens bounding, effective and permitted; ambient only when the
        # process already has an inheritable set (an ambient capability must also be
        # inheritable, and --cap does not make one inheritable)
        kinds = ["bounding", "effective", "permitted"]
        if "inheritable" in caps:
            kinds.append("ambient")
        for kind in kinds:
            lst = caps.setdefault(kind, [])
            for c in opts.cap:
                if c not in lst:
                    lst.append(c)
        raw["capabilities"] = caps
    if opts.no_new_privs:
        raw["noNewPrivileges"] = True
    if opts.apparmor is not None:
        raw["apparmorProfile"] = opts.apparmor
    if opts.process_label is not None:
        raw["selinuxLabel"] = opts.process_label
    # command-line words cannot hold a NUL, and bytes that are not UTF-8 arrive as
    # surrogate escapes that plan.py turns back into those bytes: no text check
    return _parse_process(raw, "exec", check_text=False)


def exec_process(root, cid, proc, *, detach=False, pid_file=None, console_socket=None,
                 preserve_fds=0, proc_from_flags=None, ignore_paused=False, sub_cgroups=None):
    """Start proc in container cid; foreground: return its exit status (128+signal).
    ignore_paused (exec --ignore-paused): start it in a frozen container anyway (it
    stays frozen with the rest until resume)."""
    from pyrunc import plan as _plan
    from pyrunc import state as _state
    from pyrunc import sync as _sync
    from pyrunc.native import ffi, lib

    c = _container.Container.load(root, cid, lock=False)
    try:
        status = c.status()
        if status == "stopped":
            raise StateError("cannot exec in a stopped container")
        if status == "paused" and not ignore_paused:
            raise StateError("cannot exec in a paused container")
        if status == "creating":
            raise StateError("cannot exec in a container that is still being created")
        bundle_raw = _bundle_config(c.st["bundle"])
        if proc is None:
            base = bundle_raw.get("process") or {}
            proc = process_from_flags(base, *proc_from_flags)
        if proc.terminal and console_socket is None and detach:
            raise PyruncError("cannot allocate tty if pyrunc will detach without setting console socket")
        if console_socket is not None and not proc.terminal:
            raise PyruncError("cannot use console socket if pyrunc will not detach or allocate tty")
        lsm = None
        if proc.apparmor_profile or proc.selinux_label:
            from pyrunc import lsm as _lsm

            lsm = _lsm.exec_attr(proc)  # None where that LSM is off: ignored, as runc
        seccomp = None
        sc = (bundle_raw.get("linux") or {}).get("seccomp")
        if sc:
            from pyrunc import seccomp as _seccomp

            seccomp = _seccomp.prepare(sc, root)
        _container._occupy_preserved(preserve_fds)
        console = _container._connect_console(console_socket) if console_socket else None
        # the container's session keyring, unless it was created with --no-new-keyring
        keyring = None if c.st.get("no_new_keyring") else _plan.session_keyring(c.id)
        plan = _plan.build_exec(proc, c.st["pid"], c.st.get("namespaces", ()), seccomp=seccomp,
                                preserve_fds=preserve_fds, lsm=lsm, keyring=keyring)
        # The init may have died since status() above and its pid gone to another
        # process (a host one: we would run in its namespaces).  If the pid still has
        # the init's start time now, the namespace files just opened (or skipped as
        # ours) were the init's: a pid is not reused while its process lives.
        info = _state.proc_start_time(c.st["pid"])
        if info is None or info[0] in ("Z", "X") or info[1] != c.st.get("init_start"):
            plan.close()
            raise StateError("cannot exec in a stopped container")
        try:
            cg = _join_plan(plan, c.st, sub_cgroups)
        except BaseException:
            plan.close()
            raise
        pid = 0
        ch = None
        master = -1
        from pyrunc import log as _log

        log = _log.get()
        # --debug: runc's step names (see container.py)
        if log.debug_on:
            log.debug("nsexec container setup: joining the namespaces of %s (init pid %d)"
                      % (cid, c.st["pid"]))
        try:
            pidp = ffi.new("int *")
            errp = ffi.new("struct prc_msg *")
            plan.leave_arenas_out()
            if lib.prc_spawn(plan.c, pidp, errp) < 0:
                raise _sync.error_from(errp)
            ch = _sync.Channel(plan.c.sync_fd)
            plan.close()
            stage1 = pidp[0]
            mtype, value, _ = _recv_pid(ch, stage1)
            pid = value
            if log.debug_on:
                log.debug("child process in init(): pid %d" % pid)
            if cg is not None:
                cg.apply(pid)  # what the child could not join itself (see _join_plan)
                _container._stop_rcuwarm()
            if proc.oom_score_adj is not None:
                _container._write_proc(pid, "oom_score_adj", str(proc.oom_score_adj))
            ch.send(_sync.MSG_GO)
            while True:
                mtype, value, fd = ch.recv()
                if mtype == _sync.MSG_PTY:
                    if console is None:
                        # foreground `exec -t`: we keep the master and proxy it (below)
                        master = fd
                        continue
                    try:
                        _container._send_console(console, fd)
                    finally:
                        os.close(fd)
                elif mtype == _sync.MSG_SECCOMP_FD:
                    try:
                        from pyrunc import seccomp as _seccomp

                        # runc: "pid" is the exec'd process, state.pid the init
                        _seccomp.send_to_listener(fd, seccomp, c.oci_state(), pid)
                    finally:
                        os.close(fd)
                    ch.send(_sync.MSG_GO)
                elif mtype == _sync.MSG_READY:
                    if log.debug_on:
                        log.debug("setns_init: about to exec %s" % " ".join(proc.args))
                    break
                elif mtype == 0:
                    raise InitError("exec process exited during setup")
            # the child execs at once: EOF on the sync socket (it is close-on-exec)
            # means the exec succeeded; an error record means it did not
            mtype, _, _ = ch.recv()
            if pid_file:
                from pyrunc.state import write_pid_file

                try:
                    write_pid_file(pid_file, pid)
                except OSError as err:
                    # the caller could never find this process: take it away again
                    raise PyruncError("exec: write pid file %s: %s"
                                      % (pid_file, os.strerror(err.errno).lower())) from None
        except BaseException:
            if master >= 0:
                os.close(master)
            if pid > 0:
                try:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass
            raise
        finally:
            plan.close()
            if ch is not None:
                ch.close()
            if console is not None:
                console.close()
    finally:
        c.close()
    if detach:
        return 0
    return _wait(pid, master)


def _recv_pid(ch, stage1):
    from pyrunc import sync as _sync

    try:
        mtype, value, fd = ch.recv()
    finally:
        os.waitpid(stage1, 0)
    if mtype != _sync.MSG_PID:
        raise InitError("exec: stage-1 exited without starting the process")
    return mtype, value, fd


def _wait(pid, master=-1):
    """wait for the foreground process (proxying its terminal if it has one; the
    proxy installs its own SIGWINCH handler and puts ours back), passing on the
    signals a shell would send us"""
    saved = _container.forward_signals(pid)
    try:
        return _container.wait_exit_code(pid, master)
    finally:
        _container.restore_signals(saved)


def _join_plan(plan, st, sub_cgroups=None):
    """Let the exec'd process get into the container's cgroups without the kernel's
    cgroup-migration grace period (13 ms here; pyrunc/rcuwarm.py explains it):
    stage-1 joins the v1 hierarchies itself, before its setns calls, by a thread-only
    move (csrc/child/util.c); the process is cloned straight into the cgroup2
    directory (clone3 CLONE_INTO_CGROUP) unless the container has a user or cgroup
    namespace, where, after setns, the kernel would refuse that clone.  Whatever is
    left the parent writes after the spawn, with the grace period started now in the
    background.  Returns the manager, or None without cgroups.  sub_cgroups: exec
    --cgroup's values (sub-cgroups of the container's to join instead)."""
    if not st.get("cgroup"):
        if sub_cgroups:
            raise ConfigError("exec --cgroup: the container has no cgroups")
        return None
    from pyrunc.cgroups import load_manager

    cg = load_manager(st["cgroup"])
    if sub_cgroups:
        cg.sub_cgroups(sub_cgroups)
    joins = cg.v1_join_dirs()
    # a sub-cgroup's fd is ours alone (the manager keeps the others): closed with the
    # namespace fds right after the spawn
    plan.ns_fds.extend(fd for (fd, path), h in zip(joins, [h for h in cg.hs if h is not cg.v2])
                       if cg._sub.get(h))
    plan.join_cgroups(joins)
    ns = st.get("namespaces", ())
    if cg.v2 is not None:
        fd = cg.v2_dirfd() if "user" not in ns and "cgroup" not in ns else None
        if fd is not None:
            plan.c.cgroup_fd = fd
            if cg._sub.get(cg.v2):
                plan.ns_fds.append(fd)
        else:
            from pyrunc import rcuwarm

            rcuwarm.start()
    return cg


def _bundle_config(bundle):
    from pyrunc import jsonfast

    try:
        with open(os.join(bundle, "config.json"), "rb") as f:
            raw = jsonfast.loads(f.read())
    except (OSError, jsonfast.JSONError) as err:
        raise ConfigError("read %s/config.json: %s" % (bundle, err)) from None
    return raw if isinstance(raw, dict) else {}
