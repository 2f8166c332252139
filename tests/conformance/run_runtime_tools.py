#!/usr/bin/env python3
"""Run an already built opencontainers/runtime-tools validation suite against a runtime.

    run_runtime_tools.py --runtime-tools /tmp/runtime-tools [--runtime PATH] [NAME ...]

Each validation executable (`validation/<name>/<name>.t`) is a standalone Go program that
builds bundles from `rootfs-<arch>.tar.gz`, copies `runtimetest` into them (both looked up
relative to the current directory, hence cwd = the runtime-tools tree) and drives the
runtime named by the env var RUNTIME.  It prints TAP 13 on stdout.  We run each one as
root with a timeout, count its top-level TAP results and print one table row per
executable plus a total.  Nothing here builds the suite: see tests/conformance/README.md.

Counting rules (the same for every runtime, so tables are comparable):
  pass  `ok N ...` without a directive
  skip  `ok N # SKIP ...` (or `not ok ... # SKIP`)
  todo  any result with a `# TODO` directive (reported, not counted as pass or fail)
  fail  `not ok N ...`
Only unindented lines are results: the YAML diagnostics that follow a result (and the
nested TAP of runtimetest they may quote) are indented JSON and never counted.  The
status column flags what the counts alone would hide: a non-zero exit, a timeout, a
plan that promised more results than were printed, or no TAP at all.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

RESULT = re.compile(r"^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?(.*)$")
DIRECTIVE = re.compile(r"#\s*(SKIP|TODO)\b", re.IGNORECASE)
PLAN = re.compile(r"^1\.\.(\d+)")


def parse_tap(text):
    """Return (counts, plan, failures, results) of one executable's TAP stream.

    results lists (number, status, description, diagnostic) for every result, status
    being pass, fail, skip or todo; it is what --compare matches between two runs.

    failures lists (number, description, diagnostic) for each `not ok` and for each bare
    error diagnostic (counted as "err", with number None).  tap-go prints a result's YAML
    block after it (SpecErrorOK) or, in RuntimeInsideValidate, before it; the lifecycle
    tests (hooks, prestart, ...) report a failed lifecycle only as a YAML block with an
    "error" key and no result at all, then `1..0`.  Those would be invisible in the
    pass/fail counts, hence the separate column.
    """
    counts = {"pass": 0, "fail": 0, "skip": 0, "todo": 0, "err": 0}
    plan = None
    items = []      # ("result", ok, num, desc, directive) | ("yaml", obj) | ("plan", n) | ("other",)
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith(" "):
            if line.strip() == "---":
                block = [line]
                while i < len(lines) and lines[i].startswith(" "):
                    block.append(lines[i])
                    i += 1
                    if block[-1].strip() == "...":
                        break
                items.append(("yaml", _diagnostic(block)))
            continue
        m = PLAN.match(line)
        if m:
            plan = int(m.group(1))
            items.append(("plan", plan))
            continue
        if line.startswith("#"):
            items.append(("comment", line[1:].strip()))
            continue
        m = RESULT.match(line)
        if not m:
            items.append(("other",))
            continue
        ok, num, desc = m.groups()
        d = DIRECTIVE.search(desc)
        directive = d.group(1).upper() if d else ""
        if d:
            desc = desc[:d.start()].strip()
        items.append(("result", ok == "ok", int(num) if num else None, desc.strip(), directive))

    failures = []
    results = []
    for k, it in enumerate(items):
        prev = items[k - 1] if k > 0 else ("other",)
        nxt = items[k + 1] if k + 1 < len(items) else ("other",)
        if it[0] == "yaml":
            if prev[0] != "result" and nxt[0] != "result" and isinstance(it[1], dict) \
                    and "error" in it[1]:
                counts["err"] += 1
                failures.append((None, "(error without a result)", it[1]))
            continue
        if it[0] != "result":
            continue
        _, ok, num, desc, directive = it
        diag = nxt[1] if nxt[0] == "yaml" else prev[1] if prev[0] == "yaml" else None
        if diag is None and nxt[0] == "comment":
            # some checks explain themselves in `# ...` lines instead of YAML
            j = k + 1
            notes = []
            while j < len(items) and items[j][0] == "comment" and not items[j][1].startswith("Refer to"):
                notes.append(items[j][1])
                j += 1
            diag = "; ".join(notes) or None
        if directive == "SKIP":
            status = "skip"
        elif directive == "TODO":
            status = "todo"
        elif ok:
            status = "pass"
        else:
            status = "fail"
            failures.append((num, desc, diag))
        counts[status] += 1
        results.append((num, status, desc, diag if status == "fail" else None))
    return counts, plan, failures, results


def _diagnostic(diag_lines):
    """The YAML block of tap-go is JSON indented by two spaces between `---` and `...`."""
    body = [ln[2:] for ln in diag_lines if ln.strip() not in ("---", "...")]
    if body and body[0].lstrip().startswith("---"):
        body[0] = body[0].lstrip()[3:]
    try:
        return json.loads("\n".join(body))
    except ValueError:
        return "\n".join(ln.strip() for ln in diag_lines) or None


def find_executables(tree):
    vdir = os.path.join(tree, "validation")
    found = []
    for name in sorted(os.listdir(vdir)):
        exe = os.path.join(vdir, name, name + ".t")
        if os.access(exe, os.X_OK):
            found.append((name, exe))
    return found


def run_one(tree, exe, runtime, timeout, tmp_root):
    """Run one executable; return (stdout, stderr, returncode or None on timeout, seconds)."""
    # A private TMPDIR per executable: bundles (os.MkdirTemp) land there, so whatever a
    # failing runtime leaves behind is visible and attributable.
    tmpdir = tempfile.mkdtemp(prefix=os.path.basename(exe)[:-2] + "-", dir=tmp_root)
    # mkdtemp gives 0700; a container whose root is mapped to another uid (user namespace
    # tests) must still be able to traverse down to its bundle, as it can under /tmp
    os.chmod(tmpdir, 0o755)
    env = dict(os.environ, RUNTIME=runtime, TMPDIR=tmpdir)
    start = time.monotonic()
    # own session: on timeout the whole group (the .t, the runtime, hooks) is killed
    proc = subprocess.Popen([exe], cwd=tree, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        rc = None
    elapsed = time.monotonic() - start
    mounts = cleanup(tmpdir)
    return (out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), rc, elapsed, mounts)


def mounts_under(path):
    """Mount points at or below path in our mount namespace, deepest first."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            # field 5 is the mount point, with space, tab, newline and backslash octal-escaped
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == path or mp.startswith(path + "/"):
                found.append(mp)
    return sorted(found, key=len, reverse=True)


def cleanup(tmpdir):
    """Remove one executable's TMPDIR; return how many mounts were left there.

    Some tests leave bundles behind whatever the runtime does, and linux_ns_itype runs a
    container in the host mount namespace, so its rootfs mounts stay on the host.  Mounts
    are detached before removal: rmtree does not stop at mount points.
    """
    left = mounts_under(tmpdir)
    for mp in left:
        subprocess.run(["umount", "-l", mp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if mounts_under(tmpdir):
        sys.stderr.write("run_runtime_tools: %s: mounts remain, not removed\n" % tmpdir)
    else:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return len(left)


def status_of(counts, plan, rc, stderr, stdout):
    notes = []
    if rc is None:
        notes.append("timeout")
    elif rc != 0:
        notes.append("exit %d" % rc)
    seen = counts["pass"] + counts["fail"] + counts["skip"] + counts["todo"]
    if not stdout.strip():
        # the *_fail executables print nothing and exit 0 when the runtime correctly
        # refused the config; silence is only suspicious together with a failure exit
        if rc != 0:
            notes.append("no tap")
    elif plan is None:
        notes.append("no plan")
    elif seen < plan:
        notes.append("missing %d" % (plan - seen))
    said = useful_stderr(stderr)
    if notes and said:
        # the end of a wrapped error chain names the cause
        last = said[-1]
        notes.append(last if len(last) <= 90 else "..." + last[-87:])
    return "; ".join(notes) or "ok"


def useful_stderr(stderr):
    """stderr lines minus the Go error trailers that say nothing ("exit status 1", "Refer to: ...")."""
    lines = []
    for ln in stderr.strip().splitlines():
        if not ln.strip() or re.match(r"exit status \d+$", ln) or ln.startswith("Refer to:"):
            continue
        # logrus lines (runc): keep only the message
        m = re.match(r'time="[^"]*" level=\w+ msg="(.*)"$', ln)
        lines.append(m.group(1).replace('\\"', '"') if m else ln)
    return lines


def table(rows, title):
    width = max([len("executable")] + [len(r["name"]) for r in rows])
    out = [title, "",
           "%-*s %5s %5s %5s %5s %4s  %6s  %s" % (width, "executable", "pass", "fail", "skip", "todo",
                                                  "err", "secs", "status"),
           "-" * (width + 50)]
    tot = {"pass": 0, "fail": 0, "skip": 0, "todo": 0, "err": 0}
    for r in rows:
        c = r["counts"]
        for k in tot:
            tot[k] += c[k]
        out.append("%-*s %5d %5d %5d %5d %4d  %6.1f  %s" % (
            width, r["name"], c["pass"], c["fail"], c["skip"], c["todo"], c["err"], r["secs"],
            r["status"]))
    out.append("-" * (width + 50))
    bad = sum(1 for r in rows if r["status"] != "ok")
    out.append("%-*s %5d %5d %5d %5d %4d  %6.1f  %d executables, %d with a status" % (
        width, "TOTAL", tot["pass"], tot["fail"], tot["skip"], tot["todo"], tot["err"],
        sum(r["secs"] for r in rows), len(rows), bad))
    return "\n".join(out) + "\n", tot


def reason(diag):
    """One short line saying why a result failed, from its tap-go YAML diagnostic."""
    if not isinstance(diag, dict):
        return (diag or "").replace("\n", " ")[:200]
    parts = []
    if "actual" in diag or "expected" in diag:
        parts.append("expected %s, got %s" % (json.dumps(diag.get("expected")),
                                              json.dumps(diag.get("actual"))))
    if diag.get("error"):
        parts.append(diag["error"].split("\nRefer to:")[0].replace("\n", " ").strip())
    if diag.get("stderr", "").strip():
        parts.append("stderr: " + diag["stderr"].strip().splitlines()[-1])
    # RuntimeInsideValidate quotes runtimetest's own TAP: name its failing checks
    nested = [ln for ln in diag.get("stdout", "").splitlines() if ln.startswith("not ok")]
    if nested:
        parts.append("inside: " + " | ".join(nested[:3]))
    return "; ".join(parts)[:300]


def failure_report(rows):
    out = ["", "failing results (not ok, and errors reported without a result):"]
    for r in rows:
        for num, desc, diag in r["failures"]:
            out.append("%s #%s: %s" % (r["name"], "-" if num is None else num, desc))
            why = reason(diag)
            if why:
                out.append("    " + why)
        unexplained = any(not reason(d) for _, _, d in r["failures"])
        if r["status"] != "ok":
            out.append("%s: %s" % (r["name"], r["status"]))
        if r["status"] != "ok" or unexplained:
            # the executable's own stderr says what went wrong for checks that do not
            for ln in r["stderr_tail"][-2:]:
                out.append("    stderr: " + ln[:250])
    return "\n".join(out) + "\n"


def _keyed(results):
    """{(description, n-th occurrence): (number, status, diagnostic)}: numbers shift when
    a run stops early, descriptions do not"""
    seen = {}
    out = {}
    for num, status, desc, diag in results:
        k = seen.get(desc, 0)
        seen[desc] = k + 1
        out[(desc, k)] = (num, status, diag)
    return out


def compare(rows, base, limit=12):
    """Side-by-side counts against an earlier --json run, then every result that passed
    there and does not pass here (the roadmap), grouped by executable."""
    brows = {r["name"]: r for r in base["executables"]}
    width = max([len("executable")] + [len(r["name"]) for r in rows])
    out = ["", "compared with %s:" % base["runtime"], "",
           "%-*s  %-19s  %-19s  %s" % (width, "executable", " base pass/fail/skip", " this pass/fail/skip",
                                       " lost"),
           "-" * (width + 48)]
    lost_total = 0
    details = []
    for r in rows:
        b = brows.get(r["name"])
        if b is None:
            continue
        mine = _keyed(r["results"])
        lost = []
        for key, (num, status, _) in _keyed(b["results"]).items():
            if status != "pass":
                continue
            got = mine.get(key)
            if got is None or got[1] != "pass":
                lost.append((key[0], num, got))
        new_err = r["counts"]["err"] - b["counts"]["err"]
        lost_total += len(lost)
        bc, c = b["counts"], r["counts"]
        out.append("%-*s  %5d %5d %5d    %5d %5d %5d    %5d%s" % (
            width, r["name"], bc["pass"], bc["fail"], bc["skip"], c["pass"], c["fail"], c["skip"],
            len(lost), "  +%d err" % new_err if new_err > 0 else ""))
        if not lost and new_err <= 0 and (r["status"] == "ok" or b["status"] != "ok"):
            continue
        details.append("%s: %d of %d base passes lost%s" % (
            r["name"], len(lost), bc["pass"], "" if r["status"] == "ok" else " [%s]" % r["status"]))
        if lost and not r["results"]:
            for ln in r["stderr_tail"][-2:]:
                details.append("    stderr: " + ln[:250])
            continue
        for desc, num, got in lost[:limit]:
            if got is None:
                details.append("    #%s %s -> missing" % (num, desc))
            else:
                why = reason(got[2])
                details.append("    #%s %s -> %s%s" % (num, desc, got[1], ": " + why if why else ""))
        if len(lost) > limit:
            details.append("    ... and %d more" % (len(lost) - limit))
        if any(got is None or not reason(got[2]) for _, _, got in lost):
            for ln in r["stderr_tail"][-2:]:
                details.append("    stderr: " + ln[:250])
        if new_err > 0:
            for num, desc, diag in r["failures"]:
                if num is None:
                    details.append("    error without a result: " + reason(diag))
    out.append("-" * (width + 48))
    out.append("%d results pass for the base runtime and not here" % lost_total)
    return "\n".join(out + [""] + details) + "\n"


def runtime_version(runtime):
    try:
        p = subprocess.run([runtime, "--version"], capture_output=True, text=True, timeout=10)
        return p.stdout.strip().splitlines()[0] if p.stdout.strip() else "unknown version"
    except (OSError, subprocess.TimeoutExpired) as err:
        return "unknown version (%s)" % err


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runtime-tools", default=os.environ.get("RUNTIME_TOOLS", "/tmp/runtime-tools"),
                    help="built runtime-tools tree (default $RUNTIME_TOOLS or /tmp/runtime-tools)")
    ap.add_argument("--runtime", default=None,
                    help="runtime binary (default .venv/bin/pyrunc of this checkout)")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds per executable")
    ap.add_argument("--tap-dir", default=None,
                    help="keep each executable's raw TAP and stderr here")
    ap.add_argument("--json", default=None, help="also write the results as JSON to this file")
    ap.add_argument("--output", default=None, help="also write the table to this file")
    ap.add_argument("--failures", action="store_true",
                    help="after the table, list every failing result with its diagnostic")
    ap.add_argument("--compare", default=None, metavar="JSON",
                    help="a --json file of another run (e.g. runc): add a side-by-side table and "
                         "list every result that passed there and does not pass here")
    ap.add_argument("names", nargs="*", help="only these executables (e.g. create kill)")
    a = ap.parse_args(argv)

    if os.geteuid() != 0:
        sys.stderr.write("run_runtime_tools: the validation suite needs root\n")
        return 2
    tree = os.path.abspath(a.runtime_tools)
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    for need in ("runtimetest", "rootfs-%s.tar.gz" % arch, "validation"):
        if not os.path.exists(os.path.join(tree, need)):
            sys.stderr.write("run_runtime_tools: %s: missing %s (build the suite first, see "
                             "tests/conformance/README.md)\n" % (tree, need))
            return 2
    runtime = a.runtime
    if runtime is None:
        here = os.path.dirname(os.path.abspath(__file__))
        runtime = os.path.join(here, "..", "..", ".venv", "bin", "pyrunc")
    resolved = shutil.which(runtime)
    if resolved is None:
        sys.stderr.write("run_runtime_tools: runtime %s: not found or not executable\n" % runtime)
        return 2
    runtime = os.path.abspath(resolved)

    base = None
    if a.compare:
        try:
            with open(a.compare) as f:
                base = json.load(f)
            base["executables"][0]["results"]
        except (OSError, ValueError, KeyError, IndexError) as err:
            sys.stderr.write("run_runtime_tools: --compare %s: not a --json result file (%s)\n"
                             % (a.compare, err))
            return 2

    exes = find_executables(tree)
    if not exes:
        sys.stderr.write("run_runtime_tools: %s: no validation/*/*.t executables "
                         "(run its `make runtimetest validation-executables`)\n" % tree)
        return 2
    if a.names:
        unknown = set(a.names) - {n for n, _ in exes}
        if unknown:
            sys.stderr.write("run_runtime_tools: unknown executables: %s\n" % " ".join(sorted(unknown)))
            return 2
        exes = [(n, e) for n, e in exes if n in a.names]
    if a.tap_dir:
        os.makedirs(a.tap_dir, exist_ok=True)

    tmp_root = tempfile.mkdtemp(prefix="rtconf-")
    os.chmod(tmp_root, 0o755)
    rows = []
    for name, exe in exes:
        out, err, rc, secs, mounts = run_one(tree, exe, runtime, a.timeout, tmp_root)
        counts, plan, failures, results = parse_tap(out)
        st = status_of(counts, plan, rc, err, out)
        if mounts:
            st = (st + "; " if st != "ok" else "") + "left %d mounts" % mounts
        rows.append({"name": name, "counts": counts, "plan": plan, "rc": rc, "secs": secs,
                     "status": st, "failures": failures, "results": results,
                     "stderr_tail": useful_stderr(err)[-5:]})
        sys.stderr.write("%-40s pass %4d fail %3d skip %3d  %s\n" % (
            name, counts["pass"], counts["fail"], counts["skip"], st))
        if a.tap_dir:
            with open(os.path.join(a.tap_dir, name + ".tap"), "w") as f:
                f.write(out)
            if err:
                with open(os.path.join(a.tap_dir, name + ".stderr"), "w") as f:
                    f.write(err)
    try:
        os.rmdir(tmp_root)
    except OSError:
        pass

    title = "runtime-tools validation: %s (%s)\nsuite: %s (%s)" % (
        runtime, runtime_version(runtime), tree, _describe(tree))
    text, tot = table(rows, title)
    sys.stdout.write(text)
    if a.failures:
        text += failure_report(rows)
        sys.stdout.write(failure_report(rows))
    if base is not None:
        cmp = compare(rows, base)
        text += cmp
        sys.stdout.write(cmp)
    if a.output:
        with open(a.output, "w") as f:
            f.write(text)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runtime": runtime, "total": tot, "executables": rows}, f, indent=1)
    return 0 if tot["fail"] == 0 and tot["err"] == 0 and all(r["status"] == "ok" for r in rows) else 1


def _describe(tree):
    try:
        p = subprocess.run(["git", "-C", tree, "describe", "--long", "--always", "--tags"],
                           capture_output=True, text=True, timeout=10)
        return p.stdout.strip() or "no git"
    except (OSError, subprocess.TimeoutExpired):
        return "no git"


if __name__ == "__main__":
    sys.exit(main())
