"""The TAP reading of run_runtime_tools.py, on streams shaped like tap-go's output.

These run without the suite: they pin the counting rules the baseline relies on.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run_runtime_tools as rt  # noqa: E402

SPEC_ERROR_STYLE = """TAP version 13
ok 1 - has expected hostname
  ---
  {
    "actual": "mrsdalloway",
    "expected": "mrsdalloway"
  }
  ...
not ok 2 - has expected soft RLIMIT_NOFILE
  ---
  {
    "actual": 3999,
    "expected": 3000,
    "type": "RLIMIT_NOFILE"
  }
  ...
ok 3 # SKIP linux.mountlabel not set
not ok 4 # TODO not there yet
not ok 5 - devices c 10:229 rwm is set correctly
# expect: c 10:229 rwm, actual: b 0:0 m
# Refer to: https://example.invalid
1..6
"""


def test_counts_plan_and_failure_reasons():
    counts, plan, failures, results = rt.parse_tap(SPEC_ERROR_STYLE)
    assert counts == {"pass": 1, "fail": 2, "skip": 1, "todo": 1, "err": 0}
    assert plan == 6
    assert [(n, d) for n, d, _ in failures] == [(2, "has expected soft RLIMIT_NOFILE"),
                                              (5, "devices c 10:229 rwm is set correctly")]
    assert rt.reason(failures[0][2]) == "expected 3000, got 3999"
    assert rt.reason(failures[1][2]) == "expect: c 10:229 rwm, actual: b 0:0 m"
    assert [r[1] for r in results] == ["pass", "fail", "skip", "todo", "fail"]
    # one result missing from the plan is reported
    assert rt.status_of(counts, plan, 0, "", SPEC_ERROR_STYLE) == "missing 1"


def test_yaml_before_result_and_nested_tap_are_not_counted():
    # RuntimeInsideValidate: diagnostic first, quoting runtimetest's own TAP, then the result
    text = """TAP version 13
  ---
  {
    "stderr": "",
    "stdout": "TAP version 13\\nok 1 - a\\nnot ok 2 - inner check\\n1..2\\n"
  }
  ...
not ok 1 - check root propagation: shared
1..1
"""
    counts, _, failures, _ = rt.parse_tap(text)
    assert counts["pass"] == 0 and counts["fail"] == 1
    assert rt.reason(failures[0][2]) == "inside: not ok 2 - inner check"


def test_error_without_a_result_is_counted_apart():
    # the lifecycle executables (hooks, prestart...) report failure only this way
    text = """TAP version 13
  ---
  {
    "error": "Pre-start hooks MUST be called after the `start` operation is called\\nRefer to: x"
  }
  ...
1..0
"""
    counts, plan, failures, _ = rt.parse_tap(text)
    assert counts == {"pass": 0, "fail": 0, "skip": 0, "todo": 0, "err": 1}
    assert plan == 0
    assert rt.reason(failures[0][2]) == "Pre-start hooks MUST be called after the `start` operation is called"


def test_silent_success_of_fail_executables_and_logrus_stderr():
    # *_fail executables print nothing and exit 0 when the runtime refused the config
    zero = {"pass": 0, "fail": 0, "skip": 0, "todo": 0, "err": 0}
    assert rt.status_of(zero, None, 0, "", "") == "ok"
    err = 'failed to create the container\ntime="x" level=error msg="create failed: \\"x\\" bad"\nexit status 1\n'
    assert rt.status_of(zero, None, 1, err, "") == 'exit 1; no tap; create failed: "x" bad'
    assert rt.status_of(zero, None, None, "", "") == "timeout; no tap"


def test_compare_lists_lost_passes_by_description():
    def row(name, results, status="ok"):
        counts = {"pass": 0, "fail": 0, "skip": 0, "todo": 0, "err": 0}
        for r in results:
            counts[r[1]] += 1
        return {"name": name, "counts": counts, "status": status, "results": results,
                "failures": [(r[0], r[2], r[3]) for r in results if r[1] == "fail"],  # (num, desc, diag)
                "stderr_tail": ["create: boom"]}

    base = {"runtime": "runc", "executables": [
        row("a", [(1, "pass", "x", None), (2, "pass", "y", None), (3, "pass", "y", None)]),
        row("b", [(1, "pass", "z", None)])]}
    mine = [row("a", [(1, "pass", "y", None), (2, "fail", "x", {"error": "nope"})]),
            row("b", [], status="exit 1")]
    text = rt.compare(mine, base)
    assert "3 results pass for the base runtime and not here" in text
    assert "    #1 x -> fail: nope" in text
    assert "    #3 y -> missing" in text      # the second "y" never ran
    assert "b: 1 of 1 base passes lost [exit 1]" in text
    assert "    stderr: create: boom" in text


# ---- run_runc_bats.py: bats --tap through a pty (script -qec) ----

import run_runc_bats as rb  # noqa: E402

BATS_TAP = ("1..4\r\n"
            "ok 1 runc exec\r\n"
            "not ok 2 runc exec [exit codes]\r\n"
            "# (in test file exec.bats, line 35)\r\n"
            "#   `[ \"$status\" -eq 255 ]' failed\r\n"
            "ok 3 runc exec --cgroup subcgroup [v2] # skip test requires cgroups_v2\r\n"
            "ok 4 runc run # skip works # but not this\r\n")


def test_bats_tap_counts_and_names():
    counts, plan, results = rb.parse_tap(BATS_TAP)
    assert plan == 4
    assert counts == {"ok": 1, "fail": 1, "skip": 2}
    assert results[0] == ("runc exec", "ok")
    assert results[1] == ("runc exec [exit codes]", "fail")
    assert results[2] == ("runc exec --cgroup subcgroup [v2]", "skip")


def test_bats_tap_without_results_is_flagged():
    counts, plan, results = rb.parse_tap("curl: (6) Could not resolve host\r\n")
    assert plan is None and results == [] and counts == {"ok": 0, "fail": 0, "skip": 0}
