"""The sender threads of an ``import``: batches in, outcomes into the :class:`Tally`.

Daemon threads rather than a ``ThreadPoolExecutor``: the executor's threads are
joined at interpreter exit, so one request hanging on a dead data plane would hold
up Ctrl-C for as long as its timeout and retries last. A request still in flight
when the command gives up or is interrupted is left to its daemon thread.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, List, Optional

from .progress import Tally

__all__ = ["Senders"]


class Senders:
    """``threads`` threads sending batches through ``client.send``, with a short backlog."""

    def __init__(self, client: Any, threads: int, tally: Tally) -> None:
        self._client = client
        self._tally = tally
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=threads)
        self._lock = threading.Condition()
        self._unfinished = 0
        """Batches handed over and not yet settled or cancelled."""
        self._in_flight = 0
        """Messages in requests under way."""
        self._busy_since: Optional[float] = None
        self._stopping = threading.Event()
        self._frozen = False
        self._problems: List[str] = []
        self._threads = [threading.Thread(target=self._run, name=f"rudder-import-{n}",
                                          daemon=True) for n in range(threads)]
        for thread in self._threads:
            thread.start()

    # --- the reader's side ------------------------------------------------------------

    def submit(self, batch: Any, timeout: float) -> bool:
        """Hand ``batch`` over; False if the backlog stayed full for ``timeout`` seconds."""
        with self._lock:
            self._unfinished += 1
        try:
            self._queue.put(batch, timeout=timeout)
        except queue.Full:
            self._settled()
            return False
        except BaseException:  # Ctrl-C inside put: it may or may not be queued
            self._settled()
            raise
        return True

    def wait(self, timeout: float) -> bool:
        """True once every batch handed over is settled; waits at most ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._unfinished > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
            return True

    def cancel(self) -> None:
        """Send nothing more: batches not started stay unsent (and are not counted)."""
        self._stopping.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return
            self._settled()

    def close(self) -> None:
        """Let idle threads end (threads still in a request end after it, as daemons)."""
        self._stopping.set()
        for _ in self._threads:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                return

    def waiting_since(self) -> Optional[float]:
        """Since when requests have been under way with none finishing (None: no request)."""
        with self._lock:
            return self._busy_since

    def freeze(self) -> int:
        """Stop counting outcomes (the summary is being taken); messages still under way."""
        with self._lock:
            self._frozen = True
            return self._in_flight

    def problems(self) -> List[str]:
        """Unexpected errors of sender threads since the last call (for the reader to show)."""
        with self._lock:
            taken, self._problems = self._problems, []
            return taken

    # --- the sender threads -----------------------------------------------------------

    def _settled(self) -> None:
        with self._lock:
            self._unfinished -= 1
            self._lock.notify_all()

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            if self._stopping.is_set():
                self._settled()
                continue
            self._send(batch)
            self._settled()

    def _send(self, batch: Any) -> None:
        count = len(batch)
        with self._lock:
            if self._in_flight == 0:
                self._busy_since = time.monotonic()
            self._in_flight += count
        try:
            result = self._client.send(batch)
            delivered, failed = result.delivered, result.failed
        except Exception as exc:  # never lose count of a batch, whatever happened
            with self._lock:
                self._problems.append(f"a request failed unexpectedly: {exc!r}")
            delivered, failed = 0, count
        with self._lock:  # one lock with the in-flight count: the summary adds up
            if not self._frozen:
                self._tally.settle(delivered, failed)
            self._in_flight -= count
            self._busy_since = time.monotonic() if self._in_flight else None
