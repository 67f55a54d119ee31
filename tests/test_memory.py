"""Peak memory does not grow with the length of the video (benchmarks/memory.py, smaller)."""

import pytest

from benchmarks.memory import measure


@pytest.mark.parametrize(("model", "width", "height"), [("identity", 320, 180), ("stbn", 80, 48)])
def test_peak_memory_of_1000_frames_is_within_10_percent_of_100(model, width, height):
    short, long = measure(width, height, model)
    assert long <= 1.10 * short, (short, long)
