import pytest

from pyrunc.cli import parse
from pyrunc.commands import create, kill
from pyrunc.errors import UsageError
from pyrunc.state import check_id


def test_flags_anywhere_and_equals_forms():
    opts, args = parse(["x", "--bundle=/b", "--pid-file", "/p", "--no-pivot"], create.FLAGS, create.DEFAULTS)
    assert args == ["x"]
    assert opts.bundle == "/b" and opts.pid_file == "/p" and opts.no_pivot is True
    opts, args = parse(["-b", "/c", "y"], create.FLAGS, create.DEFAULTS)
    assert opts.bundle == "/c" and args == ["y"]


def test_unknown_flag_and_missing_value():
    with pytest.raises(UsageError, match="not defined"):
        parse(["--nope"], create.FLAGS, create.DEFAULTS)
    with pytest.raises(UsageError, match="needs an argument"):
        parse(["--bundle"], create.FLAGS, create.DEFAULTS)


def test_double_dash_ends_flags():
    opts, args = parse(["-a", "--", "id", "-9"], kill.FLAGS, kill.DEFAULTS)
    assert opts.all and args == ["id", "-9"]


@pytest.mark.parametrize("cid", ["abc", "a-b_c.d+e", "0" * 64])
def test_valid_ids(cid):
    check_id(cid)


@pytest.mark.parametrize("cid", ["", ".", "..", "a/b", "../x", "a b", "é"])
def test_invalid_ids(cid):
    with pytest.raises(Exception, match="invalid container ID"):
        check_id(cid)


def test_exec_stops_at_the_command_and_collects_repeated_flags():
    from pyrunc.commands import exec_

    opts, args = parse(["-e", "A=1", "--env=B=2", "cid", "sh", "-c", "echo -n x", "--tty"],
                       exec_.FLAGS, exec_.DEFAULTS, exec_.REPEATED, exec_.STOP_AFTER)
    assert opts.env == ["A=1", "B=2"]
    assert opts.tty is False
    assert args == ["cid", "sh", "-c", "echo -n x", "--tty"]
