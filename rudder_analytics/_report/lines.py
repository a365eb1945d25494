"""Where losses become words: one line per cause, and drop totals that are never hidden.

A process that loses events says so even when nobody configured logging: each
line goes to the ``rudder_analytics`` logger when some handler would show a
WARNING from it, and otherwise straight to stderr (never both, never one line
per event). What is said:

- the first time a request fails for a cause (``connection refused by
  127.0.0.1:18799``) while its events stay queued for a retry, at once;
- drops, summed by reason and cause: the first at once, the rest at most once
  per :data:`WARNING_INTERVAL`; what a window held back is said by the next
  line, and by :meth:`Reporter.flush` (called at ``flush()``, ``shutdown()`` and
  exit), so a total is never hidden behind a "1 queue_full".

No user callback runs here (see :mod:`.callbacks`), and nothing is emitted while
a lock is held: a logging handler may re-enter the SDK.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Callable, Optional

__all__ = ["WARNING_INTERVAL", "Reporter", "emit", "enable_debug_logging", "logging_configured"]

logger: logging.Logger = logging.getLogger("rudder_analytics")

WARNING_INTERVAL = 10.0
"""Seconds between two drop summaries (a cause's first line is never delayed)."""

_SILENT_REASONS = frozenset(("invalid", "shutdown"))
"""Drops said otherwise: by an exception raised at the call, or by the "not delivered at
shutdown/exit" line, which counts each of them once."""


def logging_configured() -> bool:
    """True if a WARNING from our logger would reach some handler."""
    current: Optional[logging.Logger] = logger
    while current is not None:
        if any(not isinstance(h, logging.NullHandler) for h in current.handlers):
            return True
        current = current.parent if current.propagate else None
    return False


def enable_debug_logging() -> None:
    """``debug=True``: DEBUG on our logger, with a stderr handler only if nothing would print."""
    logger.setLevel(logging.DEBUG)
    has_output = any(not isinstance(h, logging.NullHandler) for h in logger.handlers)
    if not has_output and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)


def emit(text: str) -> None:
    """Say ``text`` once: to the logger if logging is configured, else on stderr."""
    if logging_configured():
        logger.warning("%s", text)
        return
    try:
        sys.stderr.write(f"rudder_analytics: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # stderr closed or gone (daemons, exit)
        pass


def _drop_line(reason: str, cause: Optional[str], count: int) -> str:
    if reason == "queue_full":
        return f"queue full: {count:,} event(s) dropped"
    if reason == "after_shutdown":
        return f"{count:,} event(s) tracked after shutdown() dropped"
    what = f"{count:,} event(s) dropped ({reason})"
    return f"{what}: {cause}" if cause else what


class Reporter:
    """The loss lines of one client. Thread-safe; never raises."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sink: Callable[[str], None] = emit) -> None:
        self._clock = clock
        self._sink = sink
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._retrying: set[str] = set()
        """Causes already said while their events wait for a retry."""
        self._held: dict[tuple[str, Optional[str]], int] = {}
        self._last_summary = float("-inf")

    def reset_after_fork(self) -> None:
        """A forked child starts with nothing said and a fresh lock."""
        self._reset()

    def retrying(self, cause: str) -> None:
        """A request failed and will be retried: say so the first time for ``cause``."""
        with self._lock:
            if cause in self._retrying:
                return
            self._retrying.add(cause)
        self._sink(f"cannot deliver yet: {cause} (events kept queued, retrying)")

    def recovered(self) -> None:
        """A request succeeded: a cause that comes back is said again."""
        if self._retrying:
            with self._lock:
                self._retrying.clear()

    def dropped(self, reason: str, count: int, cause: Optional[str] = None) -> None:
        """Count a drop; say it now if no summary went out in the last window."""
        if count <= 0 or reason in _SILENT_REASONS:
            return
        now = self._clock()
        with self._lock:
            key = (reason, cause)
            self._held[key] = self._held.get(key, 0) + count
            if now - self._last_summary < WARNING_INTERVAL:
                return
            lines = self._take_held(now)
        for line in lines:
            self._sink(line)

    def flush(self) -> None:
        """Say every held-back total now (flush, shutdown, exit)."""
        with self._lock:
            lines = self._take_held(self._clock()) if self._held else []
        for line in lines:
            self._sink(line)

    def _take_held(self, now: float) -> list[str]:
        lines = [_drop_line(reason, cause, count)
                 for (reason, cause), count in sorted(self._held.items(), key=str)]
        self._held.clear()
        self._last_summary = now
        return lines
