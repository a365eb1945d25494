"""The live feed behind the browser page: stored events and rejected requests, in order.

Ingestion only appends to a bounded ring under a lock and wakes the readers; each
reader (one Server-Sent Events connection) keeps its own position and does its own
writing, so a slow or stalled browser never holds up a request. ``close()`` wakes every
reader so ``DevServer.stop()`` never waits on an open page.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

__all__ = ["LiveFeed"]

#: Entries kept for pages that connect (or reconnect) later, and their total size.
DEFAULT_CAPACITY = 1000
DEFAULT_MAX_CHARS = 32 * 1024 * 1024

Entry = Tuple[int, str]


class LiveFeed:
    """A bounded, numbered sequence of JSON texts with blocking reads after a position."""

    def __init__(
        self, capacity: int = DEFAULT_CAPACITY, max_chars: int = DEFAULT_MAX_CHARS
    ) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._entries: Deque[Entry] = deque()
        self._rejections: Deque[Dict[str, Any]] = deque(maxlen=capacity)
        self._capacity = capacity
        self._max_chars = max_chars
        self._chars = 0
        self._seq = 0
        self._closed = False

    def _append(self, text: str) -> None:
        """Number and keep one entry, dropping the oldest beyond the count or size budget
        (the newest entry is always kept)."""
        self._seq += 1
        self._entries.append((self._seq, text))
        self._chars += len(text)
        entries = self._entries
        while len(entries) > 1 and (
            len(entries) > self._capacity or self._chars > self._max_chars
        ):
            self._chars -= len(entries.popleft()[1])

    def publish_events(self, payloads: Sequence[str]) -> None:
        """Add stored events (their stored JSON text, as is) and wake the readers."""
        with self._cond:
            for payload in payloads:
                self._append('{"kind":"event","event":' + payload + "}")
            self._cond.notify_all()

    def publish_rejection(self, rejection: Dict[str, Any]) -> None:
        """Record a rejected request (kept for ``rejections()``) and wake the readers."""
        text = json.dumps({"kind": "rejection", "rejection": rejection}, ensure_ascii=False)
        with self._cond:
            self._rejections.append(rejection)
            self._append(text)
            self._cond.notify_all()

    def rejections(self) -> List[Dict[str, Any]]:
        """The newest rejected requests, oldest first."""
        with self._cond:
            return [dict(r) for r in self._rejections]

    def reset(self) -> None:
        """Forget everything; open pages are told to clear (numbering goes on)."""
        with self._cond:
            self._entries.clear()
            self._rejections.clear()
            self._chars = 0
            self._append('{"kind":"reset"}')
            self._cond.notify_all()

    def read_after(self, after: int, timeout: float) -> Optional[List[Entry]]:
        """Entries numbered above ``after``, waiting up to ``timeout`` for the first one.

        Returns [] on timeout and None once the feed is closed. A position from the
        future (a page left open across a server restart) starts over with a reset.
        """
        with self._cond:
            if after > self._seq:
                return [(self._seq, '{"kind":"reset"}'), *self._entries]
            if not self._cond.wait_for(lambda: self._closed or self._seq > after, timeout):
                return []
            if self._closed:
                return None
            return [entry for entry in self._entries if entry[0] > after]

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._closed

    def close(self) -> None:
        """Wake every reader and end their streams."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
