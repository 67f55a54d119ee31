import pytest

from vdenoise.cli.options import parse_encoder_opts, parse_tile, parse_time
from vdenoise.errors import UsageError


def test_time_parsing():
    assert parse_time("90.5", "--start") == 90.5
    assert parse_time("1:30", "--start") == 90
    assert parse_time("01:00:01.5", "--start") == 3601.5
    with pytest.raises(UsageError):
        parse_time("-3", "--start")


def test_tile_and_encoder_options():
    assert parse_tile("auto") is None and parse_tile("0") == 0 and parse_tile("512") == 512
    with pytest.raises(UsageError):
        parse_tile("-5")
    assert parse_encoder_opts(["preset=slow", "x264-params=aq-mode=3"]) == {
        "preset": "slow",
        "x264-params": "aq-mode=3",
    }
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_encoder_opts(["=3"])
