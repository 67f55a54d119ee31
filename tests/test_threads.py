import threading
import time

import pytest

from vdenoise.threads import Consumer, Prefetcher


def test_prefetcher_yields_everything_in_order():
    assert list(Prefetcher(range(100), depth=4)) == list(range(100))


def test_prefetcher_stays_within_its_depth():
    produced = []

    def items():
        for i in range(100):
            produced.append(i)
            yield i

    it = iter(Prefetcher(items(), depth=3))
    next(it)
    time.sleep(0.2)
    assert len(produced) <= 1 + 3 + 1  # consumed, queued, one blocked in put
    it.close()


def test_prefetcher_raises_the_producers_error():
    def items():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(Prefetcher(items(), depth=2))


def test_closing_a_prefetcher_releases_a_blocked_producer():
    before = threading.active_count()
    it = iter(Prefetcher(iter(range(10**6)), depth=1))
    next(it)
    it.close()
    time.sleep(0.3)
    assert threading.active_count() == before


def test_consumer_handles_everything_then_finishes():
    seen = []
    consumer = Consumer(seen.append, depth=2)
    for i in range(50):
        consumer.put(i)
    consumer.finish()
    assert seen == list(range(50))


def test_consumer_error_reaches_the_producer():
    def handle(item):
        if item == 3:
            raise ValueError("encoder failed")

    consumer = Consumer(handle, depth=1)
    with pytest.raises(ValueError, match="encoder failed"):
        for i in range(100):
            consumer.put(i)
        consumer.finish()


def test_consumer_abort_drops_the_rest():
    seen = []
    consumer = Consumer(lambda i: (time.sleep(0.01), seen.append(i)), depth=10)
    for i in range(10):
        consumer.put(i)
    consumer.abort()
    assert len(seen) < 10
