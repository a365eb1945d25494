"""What the stand-in remembers about requests: headers, one record per request, the log.

The log is bounded twice (number of records and bytes of bodies) so a long-running
server never grows without bound; ``wait_for`` counts every request regardless.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Deque, Dict, Iterable, List, Optional, Tuple

__all__ = ["Headers", "RequestLog", "RequestRecord"]


class Headers(Dict[str, str]):
    """Request headers as a dict (names as sent, first value wins) with case-insensitive
    ``[]``, ``get`` and ``in``; ``get_all`` gives repeated headers."""

    def __init__(self, items: Iterable[Tuple[str, str]]) -> None:
        super().__init__()
        self._items: List[Tuple[str, str]] = list(items)
        self._lower: Dict[str, str] = {}
        for name, value in self._items:
            key = name.lower()
            if key not in self._lower:
                self._lower[key] = value
                super().__setitem__(name, value)

    def __getitem__(self, name: str) -> str:
        return self._lower[name.lower()]

    def get(self, name: str, default: Any = None) -> Any:
        """The first value sent under ``name`` (any case), or ``default``."""
        return self._lower.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lower

    def get_all(self, name: str) -> List[str]:
        """Every value sent under ``name`` (any case), in order."""
        key = name.lower()
        return [v for n, v in self._items if n.lower() == key]

    def items_raw(self) -> List[Tuple[str, str]]:
        """The header lines as received, duplicates included."""
        return list(self._items)

    def __reduce__(self) -> Tuple[Any, Tuple[List[Tuple[str, str]]]]:
        """Copy and pickle from the header lines, so the lookup index is rebuilt."""
        return (Headers, (list(self._items),))


@dataclass
class RequestRecord:
    """One request the stand-in received (``/_dev/`` control calls are not recorded).

    ``body`` is the decompressed body, or None when it was not read (dropped, refused
    before reading) or could not be gunzipped; ``raw_size`` is its size on the wire.
    ``received_at`` is ``time.monotonic()`` when the request line and headers were in.
    ``status`` is None and ``answered`` False when no answer was written (faults,
    client gone). ``fault`` names the scripted fault applied, ``events`` counts the
    events stored from this request.
    """

    method: str
    path: str
    headers: Headers
    received_at: float
    query: str = ""
    status: Optional[int] = None
    body: Optional[bytes] = None
    raw_size: int = 0
    answered: bool = False
    fault: Optional[str] = None
    events: int = 0
    client: str = ""
    _body_bytes: int = field(default=0, repr=False, compare=False)
    _evicted: bool = field(default=False, repr=False, compare=False)

    def json(self) -> Any:
        """The body parsed as JSON (None when there is no body)."""
        return None if self.body is None else json.loads(self.body)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-friendly form for ``GET /_dev/requests`` (body as text)."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": dict(self.headers.items()),
            "status": self.status,
            "answered": self.answered,
            "body": None if self.body is None else self.body.decode("utf-8", "replace"),
            "raw_size": self.raw_size,
            "received_at": self.received_at,
            "fault": self.fault,
            "events": self.events,
            "client": self.client,
        }


class RequestLog:
    """The newest ``size`` records whose bodies together fit in ``max_bytes``."""

    def __init__(self, size: int, max_bytes: int) -> None:
        if size < 0 or max_bytes < 0:
            raise ValueError("request_log_size and request_log_bytes must not be negative")
        self._cond = threading.Condition(threading.Lock())
        self._log: Deque[RequestRecord] = deque()
        self._size = size
        self._max_bytes = max_bytes
        self._bytes = 0
        self._received = 0

    def add(self, record: RequestRecord) -> None:
        """Log a request as it arrives (its body comes later, with ``attach_body``)."""
        with self._cond:
            self._received += 1
            if self._size:
                self._log.append(record)
                self._trim()
            else:
                record._evicted = True
            self._cond.notify_all()

    def attach_body(self, record: RequestRecord, body: Optional[bytes]) -> None:
        """Attach the body to a logged request, keeping the log within its byte budget."""
        with self._cond:
            record.body = body
            if body is not None and not record._evicted:
                record._body_bytes = len(body)
                self._bytes += len(body)
                self._trim()

    def _trim(self) -> None:
        log = self._log
        while log and (len(log) > self._size or self._bytes > self._max_bytes):
            old = log.popleft()
            old._evicted = True
            self._bytes -= old._body_bytes

    def snapshot(self) -> List[RequestRecord]:
        """Copies of the logged records, oldest first."""
        with self._cond:
            return [replace(r) for r in self._log]

    def wait_for(self, n: int, timeout: Optional[float]) -> bool:
        """Block until at least ``n`` requests have arrived since the last clear."""
        with self._cond:
            return self._cond.wait_for(lambda: self._received >= n, timeout)

    def clear(self) -> None:
        """Forget every record and the arrival count."""
        with self._cond:
            for record in self._log:
                record._evicted = True
            self._log.clear()
            self._bytes = 0
            self._received = 0
