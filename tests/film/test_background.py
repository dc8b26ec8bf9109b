"""Work in a background thread: order kept, errors handed back, a stop drops the rest."""

from __future__ import annotations

import threading
import time

import pytest

from vidcolor.film.background import Background


def test_items_are_consumed_in_order_by_another_thread():
    seen, threads = [], set()

    def consume(item):
        threads.add(threading.current_thread().name)
        seen.append(item)

    worker = Background(consume, depth=2, name="test-worker")
    for k in range(50):
        worker.put(k)
    worker.finish()
    assert seen == list(range(50)) and threads == {"test-worker"}


def test_an_error_in_the_thread_reaches_the_caller():
    def consume(item):
        if item == 3:
            raise OSError(28, "No space left on device")

    worker = Background(consume, depth=1)
    with pytest.raises(OSError, match="No space"):
        for k in range(100):
            worker.put(k)
        worker.finish()


def test_stop_drops_what_is_queued():
    seen = []

    def slow(item):
        time.sleep(0.05)
        seen.append(item)

    worker = Background(slow, depth=20)
    for k in range(20):
        worker.put(k)
    worker.stop()
    assert len(seen) < 20 and seen == list(range(len(seen)))
