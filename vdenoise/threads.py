"""Two bounded hand-offs between threads, so decoding, compute and encoding overlap.

Both stop cleanly when either side fails: an exception in the background thread is raised
again in the caller, and closing from the caller releases a background thread blocked on a
full or empty queue.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_DONE = object()
_POLL = 0.1  # seconds between checks of the stop flag while blocked


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetcher(Generic[T]):
    """Runs an iterable in a background thread, at most `depth` items ahead of its consumer."""

    def __init__(self, items: Iterable[T], depth: int, name: str = "prefetch") -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(items,), name=name, daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, items: Iterable[T]) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
        except BaseException as e:  # handed to the consumer, raised there
            self._put(_Failure(e))
            return
        self._put(_DONE)

    def __iter__(self) -> Iterator[T]:
        try:
            while True:
                item = self._queue.get()
                if item is _DONE:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item  # type: ignore[misc]
        finally:
            self.close()

    def close(self) -> None:
        """Stop the background thread and wait for it."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(_POLL)


class Consumer(Generic[T]):
    """Feeds items to `handle` in a background thread through a queue of at most `depth`."""

    def __init__(self, handle: Callable[[T], None], depth: int, name: str = "consume") -> None:
        self._handle = handle
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=_POLL)
            except queue.Empty:
                continue
            if item is _DONE:
                return
            try:
                self._handle(item)  # type: ignore[arg-type]
            except BaseException as e:
                self._error = e
                return

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: T) -> None:
        """Queue an item; raises the background thread's error if it has failed."""
        while True:
            self._raise_if_failed()
            if not self._thread.is_alive():
                raise RuntimeError(f"{self._thread.name} thread has stopped")
            try:
                self._queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Wait until every queued item is handled; raise the background error if any."""
        self.put(_DONE)  # type: ignore[arg-type]
        self._thread.join()
        self._raise_if_failed()

    def abort(self) -> None:
        """Stop without handling what is still queued."""
        self._stop.set()
        self._thread.join()
