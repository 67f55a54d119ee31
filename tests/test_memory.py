"""Peak memory does not grow with the length of the video (benchmarks/memory.py, smaller)."""

from benchmarks.memory import measure


def test_peak_memory_of_1000_frames_is_within_10_percent_of_100():
    short, long = measure(320, 180)
    assert long <= 1.10 * short, (short, long)
