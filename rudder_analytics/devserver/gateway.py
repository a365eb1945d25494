"""The shared state of one stand-in data plane, as the HTTP layer uses it.

``DevServer`` builds one ``Gateway`` and hands it to the request handlers; this small
public interface (auth, admission, the connection registry, what to do with a stored or
refused request) is everything a handler may touch, so the facade's own attributes stay
private to it.
"""

from __future__ import annotations

import socket
import threading
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Sequence, Set, TextIO, Tuple

from .console import ConsolePrinter
from .faults import FaultPlan
from .live import LiveFeed
from .protocol import Accepted, RateLimiter, format_received_at, message
from .records import RequestLog, RequestRecord
from .storage import EventStore
from .wire import basic_auth_user, format_rfc3339, reason_phrase

__all__ = ["Gateway"]

_FAULT_REASONS = {
    "drop": "dropped on purpose before reading (drop_next)",
    "store_then_drop": "stored, then the answer was lost on purpose (store_then_drop_next)",
    "hang": "no answer on purpose (hang_next)",
}

# Bodies of rejected requests are kept (for the page) up to this many characters.
_REJECTED_BODY_CHARS = 16 * 1024


class Gateway:
    """Settings, storage, faults, request log, live feed and open connections."""

    def __init__(
        self,
        *,
        write_keys: Sequence[str],
        disabled_write_keys: Sequence[str],
        max_request_bytes: int,
        legacy_bodies: bool,
        rate_limit: Optional[Tuple[int, float]],
        max_concurrent_requests: Optional[int],
        db: Optional[str],
        console: Optional[str],
        console_stream: Optional[TextIO],
        request_log_size: int,
        request_log_bytes: int,
    ) -> None:
        self.write_keys: Tuple[str, ...] = tuple(write_keys)
        self.disabled_write_keys: Tuple[str, ...] = tuple(disabled_write_keys)
        self.max_request_bytes = max_request_bytes
        self.legacy_bodies = legacy_bodies
        self.limiter: Optional[RateLimiter] = (
            RateLimiter(int(rate_limit[0]), float(rate_limit[1])) if rate_limit else None
        )
        self.log: RequestLog = RequestLog(request_log_size, request_log_bytes)
        self.console: Optional[ConsolePrinter] = (
            ConsolePrinter(console, console_stream) if console else None
        )
        self.store: EventStore = EventStore(db)
        self.faults: FaultPlan = FaultPlan()
        self.feed: LiveFeed = LiveFeed()
        self.ok_body: bytes = message("ok", legacy_bodies).encode()
        self.health_body: bytes = b""
        self.stopping: threading.Event = threading.Event()
        #: Tells a page that reconnects whether it still talks to the same server.
        self.instance: str = uuid.uuid4().hex
        self._enabled = frozenset(self.write_keys)
        self._disabled = frozenset(self.disabled_write_keys)
        self._max_inflight = max_concurrent_requests
        self._inflight_lock = threading.Lock()
        self._inflight = 0
        self._conn_lock = threading.Lock()
        self._connections: Set[socket.socket] = set()
        self._threads: Set[threading.Thread] = set()

    def started(self) -> None:
        """Fix the health answer (its sync times are the start time)."""
        sync = format_rfc3339(datetime.now(timezone.utc))
        self.health_body = (
            '{"appType":"EMBEDDED","server":"UP","db":"UP","acceptingEvents":"TRUE",'
            '"routingEvents":"TRUE","mode":"NORMAL","backendConfigMode":"API",'
            f'"lastSync":"{sync}","lastRegulationSync":"{sync}"}}'
        ).encode()

    # --- requests ------------------------------------------------------------------------

    def authenticate(self, header: str) -> Tuple[Optional[str], str]:
        """(answer key or None, write key) for an ``Authorization`` header."""
        key = basic_auth_user(header)
        if not key:
            return "no_write_key", ""
        if key in self._enabled:
            return None, key
        if key in self._disabled:
            return "source_disabled", key
        return "invalid_write_key", key

    def enter(self) -> bool:
        """Take a request slot; False when ``max_concurrent_requests`` are in flight."""
        if self._max_inflight is None:
            return True
        with self._inflight_lock:
            if self._inflight >= self._max_inflight:
                return False
            self._inflight += 1
            return True

    def leave(self) -> None:
        """Give back the slot taken by ``enter()``."""
        if self._max_inflight is None:
            return
        with self._inflight_lock:
            self._inflight -= 1

    def stored(self, accepted: Accepted) -> None:
        """Store one request's events, then show them (console, live page)."""
        self.store.insert(accepted.rows)
        if self.console is not None:
            self.console.print_events(accepted.events)
        self.feed.publish_events([row[5] for row in accepted.rows])

    def rejected(self, record: RequestRecord, reason: str) -> None:
        """Show a request answered with an error (or not answered at all)."""
        status = record.status if record.answered else None
        if not reason:
            if status is not None:
                reason = reason_phrase(status)
            else:
                reason = _FAULT_REASONS.get(record.fault or "", "no answer (the client went away)")
        body = record.body
        text = None if body is None else body[: _REJECTED_BODY_CHARS * 4].decode("utf-8", "replace")
        rejection: Dict[str, Any] = {
            "time": format_received_at(datetime.now(timezone.utc)),
            "method": record.method,
            "path": record.path,
            "status": status,
            "reason": reason,
            "fault": record.fault,
            "write_key": basic_auth_user(record.headers.get("Authorization")),
            "client": record.client,
            "body": None if text is None else text[:_REJECTED_BODY_CHARS],
        }
        if self.console is not None:
            self.console.print_rejection(rejection)
        self.feed.publish_rejection(rejection)

    def reset(self) -> None:
        """Clear events, the request log, the faults, the rate limit and the page."""
        self.store.reset()
        self.faults.clear()
        if self.limiter is not None:
            self.limiter.reset()
        self.log.clear()
        self.feed.reset()

    # --- connections ---------------------------------------------------------------------

    def register(self, sock: socket.socket) -> bool:
        """Note an open connection (False once stopping: the handler must close it)."""
        with self._conn_lock:
            if self.stopping.is_set():
                return False
            self._connections.add(sock)
            self._threads.add(threading.current_thread())
            return True

    def unregister(self, sock: socket.socket) -> None:
        """Forget a connection whose handler is done."""
        with self._conn_lock:
            self._connections.discard(sock)
            self._threads.discard(threading.current_thread())

    def open_connections(self) -> Tuple[List[socket.socket], List[threading.Thread]]:
        """Open sockets and the threads serving them (for ``stop()``)."""
        with self._conn_lock:
            return list(self._connections), list(self._threads)

    def stop(self) -> None:
        """Wake everything that waits: hanging requests, open live pages."""
        self.stopping.set()
        self.feed.close()
