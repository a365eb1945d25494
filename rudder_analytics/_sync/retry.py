"""The blocking pieces of the retry policy: waits that shutdown can cut short, and the
thread-safe ``Retry-After`` hold shared by a client's workers and synchronous sends.

The rules themselves (what is retried, backoff, ``Retry-After`` parsing, what a
failure is called) are pure functions in :mod:`rudder_analytics._core.policy`.
Every wait here is an ``Event.wait``, so shutdown ends it at once (``backoff``'s
own decorators sleep with ``time.sleep``, which nothing can interrupt: only its
schedule is used, by the core).
"""

from __future__ import annotations

import threading
import time

__all__ = ["RetryAfterGate", "wait_until"]


def wait_until(deadline: float, cancel: threading.Event) -> bool:
    """Wait until ``time.monotonic()`` reaches ``deadline``; False if ``cancel`` was set.

    Loops because ``Event.wait`` may return a hair early; a retry is never sent
    before its time.
    """
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return not cancel.is_set()
        if cancel.wait(remaining):
            return False


class RetryAfterGate:
    """A data plane's ``Retry-After``, shared by every worker of one client.

    ``Retry-After`` speaks for the server, not for the one request it answered: once
    any worker reads it, no worker sends again before it expires.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.until: float = 0.0
        """``time.monotonic()`` before which nothing may be sent."""

    def hold_until(self, when: float) -> None:
        """Extend the hold to ``when`` (never shortens it)."""
        with self._lock:
            if when > self.until:
                self.until = when
