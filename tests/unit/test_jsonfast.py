import json
import math

import pytest

from pyrunc import jsonfast


@pytest.mark.parametrize("text", [
    '{"a": [1, 2.5, true, false, null, "x\\u00e9\\n"], "b": {}}', "[]", ' "s" ', "0", "-1.5e3",
    '{"nested": {"deep": [[[]]]}}', '"\\ud83d\\ude00"'])
def test_loads_matches_json(text):
    assert jsonfast.loads(text) == json.loads(text)


def test_loads_bytes_and_nan():
    assert jsonfast.loads(b'{"a": 1}') == {"a": 1}
    assert math.isnan(jsonfast.loads("NaN"))


@pytest.mark.parametrize("text,where", [
    ('{"a": 1', "line 1 column 8"), ('{"a": 1} x', "extra data"), ("", "empty"),
    ('{"a":\n nul}', "line 2"), (b"\xff", "utf-8")])
def test_loads_errors_name_the_place(text, where):
    with pytest.raises(jsonfast.JSONError) as e:
        jsonfast.loads(text)
    assert where in str(e.value)


@pytest.mark.parametrize("obj", [
    {"a": [1, {"b": "é\"\\"}], "c": None, "e": {}, "f": [], "g": 1.5, "h": True},
    [], {}, "x", 0])
def test_dumps_roundtrip_and_matches_json_indent(obj):
    assert json.loads(jsonfast.dumps(obj)) == obj
    assert jsonfast.dumps(obj, indent=2) == json.dumps(obj, indent=2, ensure_ascii=False)


def test_dumps_rejects_unknown_types():
    with pytest.raises(TypeError):
        jsonfast.dumps({"a": object()})
