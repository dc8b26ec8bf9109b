"""Work handed to a thread through a bounded queue, so that encoding overlaps colorization
(decoding already has its own thread in ``VideoReader``). An error in the thread comes
back to the caller at its next ``put`` or at ``finish``; memory is bounded by the queue."""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

_DONE = object()


class Background:
    """``put(item)`` queues ``consume(item)`` for the thread; ``finish()`` waits for all of
    it; ``stop()`` drops what is left (an interruption) and waits for the item in hand."""

    def __init__(self, consume: Callable[[Any], None], depth: int = 8, name: str = "vidcolor-background"):
        self._consume = consume
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE or self._stopping.is_set():
                return
            try:
                self._consume(item)
            except BaseException as e:  # handed to the caller
                self._error = e
                self._stopping.set()
                return

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def put(self, item) -> None:
        while True:
            self._raise()
            if not self._thread.is_alive():
                raise RuntimeError("the background thread has stopped")
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Wait until every queued item is consumed; raise the thread's error, if any."""
        while self._thread.is_alive():
            try:
                self._queue.put(_DONE, timeout=0.1)
                break
            except queue.Full:
                continue
        self._thread.join()
        self._raise()

    def stop(self) -> None:
        """Drop the queued items and wait for the one being consumed."""
        self._stopping.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        try:
            self._queue.put_nowait(_DONE)
        except queue.Full:
            pass
        self._thread.join()
