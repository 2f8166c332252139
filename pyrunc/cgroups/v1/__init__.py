"""cgroup v1: one module per controller.

Each has set(d, section, manager, update) (d: the container's fs.Dir in that
controller's hierarchy, section: its part of linux.resources) and, for the ones that
report, stats(d, out) filling runc's events fields.  The manager calls set() only
when the section asks for something, so a module is imported only when needed.
"""
