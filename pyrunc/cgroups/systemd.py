"""--systemd-cgroup: the container's cgroup is a transient systemd scope.

As runc does it: cgroupsPath "slice:prefix:name" names the scope <prefix>-<name>.scope
in <slice>.  systemd refuses a scope without processes, so the unit can only be started
once the init exists: create() makes the scope's directories itself (where systemd will
put them: the slice's expanded path, e.g. a-b.slice -> a.slice/a-b.slice) so that the
limits are set and the init is cloned/joined there exactly as with cgroupfs; apply(pid)
then asks systemd over D-Bus (StartTransientUnit, Delegate=yes) to make those
directories a scope holding the init, waits for the job, makes again what systemd
removed and joins every hierarchy again.  delete stops the unit (StopUnit), then removes
what is left.

D-Bus is spoken by pyrunc/cgroups/dbus.py, imported only here, over systemd's private
socket (root, peer to peer).  Tested against systemd 252 on a hybrid host
(tests/integration/test_systemd_cgroup.py boots one).
"""
import os

from pyrunc.cgroups.fs import CgroupError

_BUS = ("/run/systemd/private", "/run/dbus/system_bus_socket")
_OBJ = "/org/freedesktop/systemd1"
_MGR = "org.freedesktop.systemd1.Manager"
_PROPS = "org.freedesktop.DBus.Properties"


def parse_path(cgroups_path, container_id):
    """(slice, prefix, name) as runc reads them; runc's defaults: system.slice,
    "runc" (pyrunc here: ours), the container id"""
    if not cgroups_path:
        return "system.slice", "pyrunc", container_id
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise CgroupError('linux.cgroupsPath: expected "slice:prefix:name" for systemd cgroups, got %r'
                          % cgroups_path)
    slice_, prefix, name = parts
    if slice_ and (not slice_.endswith(".slice") or "/" in slice_):
        raise CgroupError("linux.cgroupsPath: %r is not a systemd slice name (name.slice)" % slice_)
    if "/" in prefix or "/" in name:
        raise CgroupError("linux.cgroupsPath: %r: prefix and name must not contain /" % cgroups_path)
    return slice_ or "system.slice", prefix, name or container_id


def unit_name(prefix, name):
    # runc: a name already ending in .slice is a slice; otherwise prefix-name.scope
    if name.endswith(".slice"):
        return name
    return "%s-%s.scope" % (prefix, name) if prefix else name + ".scope"


def expand_slice(slice_):
    """the slice's cgroup path: systemd nests a-b-c.slice in a-b.slice in a.slice;
    -.slice is the root"""
    if slice_ == "-.slice":
        return ""
    base = slice_[:-len(".slice")]
    if not base or base.startswith("-") or base.endswith("-") or "--" in base:
        raise CgroupError("linux.cgroupsPath: %r is not a valid systemd slice name" % slice_)
    out, acc = [], ""
    for part in base.split("-"):
        acc = acc + "-" + part if acc else part
        out.append(acc + ".slice")
    return "/".join(out)


def _bus_path(prefix):
    """the private socket, or None (the system bus is not spoken)"""
    if os.path.exists(prefix + _BUS[0]):
        return _BUS[0]
    return None


def create_manager(cgroups_path, container_id, prefix=""):
    slice_, pfx, name = parse_path(cgroups_path, container_id)
    unit = unit_name(pfx, name)
    if unit.endswith(".slice"):
        raise CgroupError("systemd cgroup driver: %s: a slice as a container's cgroup is not supported by pyrunc;"
                          " name a scope (slice:prefix:name)" % unit)
    bus = _bus_path(prefix)
    if bus is None and os.path.exists(prefix + _BUS[1]):
        raise CgroupError("systemd cgroup driver: cannot create %s in %s: no %s, and pyrunc does not speak"
                          " the system bus; run as root on a systemd host, or without --systemd-cgroup"
                          % (unit, slice_, _BUS[0]))
    if bus is None:
        raise CgroupError("systemd cgroup driver: cannot create %s in %s: no systemd is reachable on this host"
                          " (no %s); run without --systemd-cgroup" % (unit, slice_, " or ".join(_BUS)))
    from pyrunc import cgroups

    path = "/" + "/".join(p for p in (expand_slice(slice_), unit) if p)
    inner = cgroups.create_manager(path, container_id, systemd=False, prefix=prefix)
    return Manager(inner, unit, slice_, bus, container_id)


def load_manager(state):
    from pyrunc import cgroups

    sd = state["systemd"]
    inner = dict(state)
    del inner["systemd"]
    m = Manager(cgroups.load_manager(inner), sd["unit"], sd["slice"], sd["bus"], sd.get("id", ""))
    m.started = True  # exec joins the scope; it must not start it again
    return m


class Manager:
    """the cgroupfs manager of the scope's directories, plus the unit's lifecycle"""

    def __init__(self, inner, unit, slice_, bus, cid):
        self.inner = inner
        self.unit = unit
        self.slice = slice_
        self.bus = bus
        self.cid = cid
        self.conn = None
        self.started = False

    def __getattr__(self, name):
        # paths, v2_dirfd, v1_join_dirs, pids, kill_all, freeze, stats, update...:
        # the scope is an ordinary cgroup once it exists
        return getattr(self.inner, name)

    def _connect(self):
        if self.conn is None:
            from pyrunc.cgroups import dbus

            try:
                self.conn = dbus.Connection(self.bus)
            except (OSError, dbus.DBusError) as err:
                raise CgroupError("systemd cgroup driver: connect to %s: %s" % (self.bus, _why(err))) from None
        return self.conn

    def _disconnect(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _job(self, member, sig, args):
        """call a Manager method that queues a job and wait for the job's end: its
        JobRemoved signal, or, should that not come (signals sent before the reply are
        still seen; this guards against a missed one), the job object vanishing, then
        the unit's state.  Returns the job's result ("done" on success)."""
        import time

        from pyrunc.cgroups import dbus

        c = self._connect()
        try:
            signals = []
            # No Subscribe: systemd sends every signal to its private socket's
            # clients unasked (JobRemoved arrived so in every test run).
            job = c.call(_OBJ, _MGR, member, sig, args, signals=signals)[0]
            deadline = time.monotonic() + 30
            c.sock.settimeout(0.5)
            while True:
                for m in signals:
                    if m.member == "JobRemoved" and len(m.body) == 4 and m.body[1] == job:
                        return m.body[3]
                signals = []
                try:
                    m = c.recv()
                except TimeoutError:
                    if time.monotonic() > deadline:
                        raise
                    try:
                        c.call(job, _PROPS, "Get", "ss", ("org.freedesktop.systemd1.Job", "State"),
                               signals=signals)
                        continue  # still queued or running
                    except dbus.DBusError:
                        pass  # the job is gone: judge by the unit
                    return "done" if self._active(member == "StopUnit", signals) else "failed"
                if m.type == dbus.SIGNAL:
                    signals.append(m)
        except (OSError, dbus.DBusError) as err:
            self._disconnect()
            raise CgroupError("systemd cgroup driver: %s %s: %s" % (member, self.unit, _why(err)),
                              getattr(err, "errno", 0) or 0) from None

    def _active(self, stopping, signals):
        """whether the unit is where the job was to take it"""
        from pyrunc.cgroups import dbus

        try:
            path = self.conn.call(_OBJ, _MGR, "GetUnit", "s", (self.unit,), signals=signals)[0]
            state = self.conn.call(path, _PROPS, "Get", "ss", ("org.freedesktop.systemd1.Unit", "ActiveState"),
                                   signals=signals)[0][1]
        except dbus.DBusError as err:
            if err.name.endswith(".NoSuchUnit"):
                return stopping
            raise
        return state in ("inactive", "failed") if stopping else state == "active"

    def create(self):
        # Before anything is made: systemd must be reachable, and the scope must not
        # exist, since its directories would be ours too: a failed create's cleanup
        # would kill its processes and remove its cgroups.
        from pyrunc.cgroups import dbus

        c = self._connect()
        try:
            path = c.call(_OBJ, _MGR, "GetUnit", "s", (self.unit,))[0]
            state = c.call(path, _PROPS, "Get", "ss", ("org.freedesktop.systemd1.Unit", "ActiveState"))[0][1]
        except dbus.DBusError as err:
            if not err.name.endswith(".NoSuchUnit"):
                self._disconnect()
                raise CgroupError("systemd cgroup driver: look up %s: %s" % (self.unit, err)) from None
            state = None
        except OSError as err:
            self._disconnect()
            raise CgroupError("systemd cgroup driver: look up %s: %s" % (self.unit, _why(err))) from None
        if state in ("inactive", "failed"):
            # a unit of that name just ended (a container deleted, its id reused):
            # systemd removes its cgroups asynchronously, ours too if we made them
            # now; wait until it has collected the unit
            import time

            end = time.monotonic() + 5
            while state is not None and time.monotonic() < end:
                time.sleep(0.02)
                try:
                    c.call(_OBJ, _MGR, "GetUnit", "s", (self.unit,))
                except dbus.DBusError:
                    state = None
        if state not in (None, "inactive", "failed"):
            self._disconnect()
            raise CgroupError("systemd cgroup driver: create %s in %s: the unit already exists (%s)"
                              % (self.unit, self.slice, state))
        self.inner.create()

    def set(self, res, devices=True):
        self.inner.set(res, devices)

    def _properties(self, pid):
        props = [("Description", ("s", "pyrunc container %s" % self.cid)),
                 ("Slice", ("s", self.slice)),
                 ("Delegate", ("b", True)),
                 ("DefaultDependencies", ("b", False)),
                 ("PIDs", ("au", [pid])),
                 # a devices policy makes systemd manage the v1 devices controller for
                 # the scope; without one it moves the init up to the slice there and
                 # removes the scope's directory, at a moment of its choosing.  Strict
                 # and empty: apply() writes the container's own rules right after.
                 ("DevicePolicy", ("s", "strict")),
                 # the same for the other controllers systemd knows (runc sets these too):
                 # one it does not manage for the scope it trims away asynchronously
                 ("MemoryAccounting", ("b", True)),
                 ("CPUAccounting", ("b", True)),
                 ("IOAccounting", ("b", True)),
                 ("TasksAccounting", ("b", True)),
                 ("DeviceAllow", ("a(ss)", []))]
        res = self.inner.resources or {}
        mem = (res.get("memory") or {}).get("limit")
        if isinstance(mem, int) and mem > 0:
            props.append(("MemoryMax", ("t", mem)))
        tasks = (res.get("pids") or {}).get("limit")
        if isinstance(tasks, int) and tasks > 0:
            props.append(("TasksMax", ("t", tasks)))
        return props

    def apply(self, pid):
        if self.started:
            self.inner.apply(pid)
            return
        result = self._job("StartTransientUnit", "ssa(sv)a(sa(sv))",
                           (self.unit, "replace", self._properties(pid), []))
        self.started = True
        self._disconnect()
        if result != "done":
            raise CgroupError("systemd cgroup driver: start %s in %s: the job ended %r" % (self.unit, self.slice,
                                                                                         result))
        # Starting the unit moved the init, in every v1 hierarchy whose controller
        # systemd does not enable for the scope (devices here, without DeviceAllow=),
        # up to the nearest ancestor that has it, and when it made the slice too, it
        # removed our directory of the scope there.  Make what is missing again (its
        # limits with it), then join every hierarchy again, by write: the child's own
        # joins (v1_join_dirs) and clone3 into cgroup2 no longer hold.
        from pyrunc.cgroups import fs

        inner = self.inner
        for h in inner.hs:
            h.close()  # an fd of a removed directory would still open the dead one
            try:
                made = fs.mkdir(h.open_root(inner.prefix), h.rel, h.mnt if inner.prefix else None)
            except OSError as err:
                raise CgroupError("create cgroup %s: %s" % (h.path, fs.strerror(err.errno)), err.errno) from None
            if made:
                h.made.extend(d for d in made if d not in h.made)
                if "cpuset" in h.ctrls:
                    inner._cpuset_init(h, made)
        # systemd wrote its own values (the device policy above at least): ours again
        inner.set(inner.resources)
        self.inner._child_joins = False
        self.inner._into = False
        self.inner.apply(pid)

    def to_state(self):
        st = self.inner.to_state()
        st["systemd"] = {"unit": self.unit, "slice": self.slice, "bus": self.bus, "id": self.cid}
        return st

    def destroy(self):
        err = None
        # never stop a unit this container did not start (a name clash: UnitExists)
        if self.started and _bus_path(self.inner.prefix) is not None:
            try:
                self._job("StopUnit", "ss", (self.unit, "replace"))
            except CgroupError as e:
                # a scope whose processes are gone has already been collected
                if "NoSuchUnit" not in str(e):
                    err = e
            finally:
                self._disconnect()
        self.inner.destroy()
        if err is not None:
            raise err


def _why(err):
    if isinstance(err, OSError) and err.errno:
        return os.strerror(err.errno).lower()
    return str(err) or type(err).__name__
