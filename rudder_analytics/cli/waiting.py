"""Saying what a command is waiting for, once a wait on the data plane passes 2 seconds.

The commands send through the SDK's public API only: the notices come from polling
``client.stats()`` (``failed_requests`` and ``last_error``) while a send is under
way, so ``retrying: <the last error>`` appears while requests fail and are retried,
and ``waiting for an answer from HOST`` while a request gets no answer at all.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, Optional, TypeVar
from urllib.parse import urlsplit

__all__ = ["NOTICE_AFTER", "POLL_INTERVAL", "WaitNotices", "run_watched"]

NOTICE_AFTER = 2.0
"""Seconds a wait lasts before it is explained."""
REPEAT_AFTER = 10.0
"""Seconds before the same explanation is printed again."""
POLL_INTERVAL = 0.1
"""Seconds between two looks at a send in progress."""

T = TypeVar("T")


class WaitNotices:
    """Prints (through ``emit``) why a wait that began at ``since`` is still going on."""

    def __init__(self, client: Any, emit: Callable[[str], None]) -> None:
        self._client = client
        self._emit = emit
        self._host = urlsplit(client.config.data_plane_url).netloc
        self._failures = self._failed_requests()
        self._failed_at = float("-inf")
        self._said: Optional[str] = None
        self._said_at = float("-inf")

    def _failed_requests(self) -> int:
        count: int = self._client.stats()["failed_requests"]
        return count

    def poll(self, since: Optional[float], now: Optional[float] = None) -> None:
        """Look at the client once; ``since`` is when the current wait began (None: none)."""
        now = time.monotonic() if now is None else now
        failures = self._failed_requests()
        if failures != self._failures:
            self._failures = failures
            self._failed_at = now
        if since is None or now - since < NOTICE_AFTER:
            return
        reason = self._reason(since)
        if reason != self._said or now - self._said_at >= REPEAT_AFTER:
            self._said, self._said_at = reason, now
            self._emit(reason)

    def _reason(self, since: float) -> str:
        last_error = self._client.stats()["last_error"]
        if self._failed_at >= since and last_error:
            return f"retrying: {last_error}"
        return f"waiting for an answer from {self._host}"


def run_watched(call: Callable[[], T], notices: WaitNotices) -> T:
    """Run ``call`` in a helper thread, explaining long waits; return or raise its outcome.

    The calling thread only waits on an event, so Ctrl-C interrupts it at once even
    while the request hangs (the helper thread is a daemon and does not hold up exit).
    """
    outcome: Dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc
        finally:
            done.set()

    since = time.monotonic()
    threading.Thread(target=target, name="rudder-cli-send", daemon=True).start()
    while not done.wait(POLL_INTERVAL):
        notices.poll(since)
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value
