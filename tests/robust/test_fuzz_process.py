"""`exec --process` JSON and `update --resources` JSON, mutated in-process (fast):
the parser either refuses with a ConfigError / UsageError naming the field, or the
result fills the native plan without any other exception (OverflowError from cffi,
UnicodeEncodeError...)."""
import json
import os

import pytest

from pyrunc import jsonfast
from pyrunc import plan as _plan
from pyrunc import process as _process
from pyrunc.commands import update as _update
from pyrunc.errors import ConfigError, UsageError
from tests.robust import fuzzlib

SEED = os.environ.get("PYRUNC_FUZZ_SEED", "pyrunc-fuzz-1")
CASES = int(os.environ.get("PYRUNC_FUZZ_PROCESS_CASES", "2000"))


def _mutated(section, index):
    """the fuzzer's mutations of the whole config, cut down to one section"""
    text, desc = fuzzlib.mutate(SEED + "/" + section, index, "/x")
    try:
        raw = jsonfast.loads(text)
    except jsonfast.JSONError:
        return text, desc  # a text-level mutation: parse it as the section itself
    if not isinstance(raw, dict):
        return json.dumps(raw), desc
    if section == "process":
        part = raw.get("process")
    else:
        part = (raw.get("linux") or {}).get("resources") if isinstance(raw.get("linux"), dict) else raw.get("linux")
    return json.dumps(part), desc


def test_process_json(tmp_path):
    path = tmp_path / "process.json"
    outcomes = {"refused": 0, "accepted": 0}
    for i in range(CASES):
        text, desc = _mutated("process", i)
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            proc = _process.process_from_file(str(path))
        except ConfigError as err:
            outcomes["refused"] += 1
            continue
        except Exception as err:  # noqa: BLE001 - the point of the test
            pytest.fail("case %d (%s): %s: %s" % (i, desc, type(err).__name__, err))
        plan = _plan.Plan()
        try:
            _plan._process(plan, proc, False)
        except Exception as err:  # noqa: BLE001
            pytest.fail("case %d (%s): plan: %s: %s" % (i, desc, type(err).__name__, err))
        outcomes["accepted"] += 1
    assert outcomes["refused"] and outcomes["accepted"], outcomes


def test_resources_json():
    outcomes = {"refused": 0, "accepted": 0}
    for i in range(CASES):
        text, desc = _mutated("resources", i)
        try:
            r = jsonfast.loads(text.encode("utf-8", "surrogatepass"))
            _update.check_json(r, "update: --resources f")
        except (jsonfast.JSONError, UsageError):
            outcomes["refused"] += 1
            continue
        except Exception as err:  # noqa: BLE001
            pytest.fail("case %d (%s): %s: %s" % (i, desc, type(err).__name__, err))
        outcomes["accepted"] += 1
    assert outcomes["refused"] and outcomes["accepted"], outcomes
