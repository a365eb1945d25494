"""``DevServer``: the object that runs a stand-in data plane (the package's facade).

It checks the settings, builds the shared ``Gateway`` state, runs the threaded HTTP
server (``handler``) in a background thread and offers the inspection and fault methods
that tests call. Request handling lives in ``routes``, ``ingest`` and ``handler``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from types import TracebackType
from typing import Any, Dict, Iterable, List, Optional, TextIO, Tuple, Type, Union

from .faults import Fault, retry_after_text
from .gateway import Gateway
from .handler import Server
from .protocol import DEFAULT_MAX_REQUEST_BYTES
from .records import Headers, RequestRecord
from .wire import format_rfc3339, is_loopback

__all__ = [
    "DEFAULT_WRITE_KEY",
    "DevServer",
    "Headers",
    "RequestRecord",
    "format_rfc3339",
    "is_loopback",
]

logger: logging.Logger = logging.getLogger("rudder_analytics.devserver")

DEFAULT_WRITE_KEY = "test-write-key"

_Filter = Optional[str]


class DevServer:
    """A local stand-in for rudder-server's data plane, for tests, demos and benchmarks.

    ``with DevServer() as server:`` starts it on a free loopback port in a background
    thread; ``server.url`` is the data plane URL to give the SDK. Stored events, the
    request log and the fault plan are available as methods, and over HTTP under
    ``/_dev/`` (see the package docstring); a browser at ``server.url + "/"`` gets a
    live page of arriving events and rejected requests. ``stop()`` leaves the stored
    events readable.
    """

    def __init__(
        self,
        write_keys: Union[str, Iterable[str]] = (DEFAULT_WRITE_KEY,),
        disabled_write_keys: Union[str, Iterable[str]] = (),
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        legacy_bodies: bool = False,
        rate_limit: Optional[Tuple[int, float]] = None,
        max_concurrent_requests: Optional[int] = None,
        host: str = "127.0.0.1",
        port: int = 0,
        db: Union[str, os.PathLike[str], None] = None,
        console: Optional[str] = None,
        *,
        console_stream: Optional[TextIO] = None,
        request_log_size: int = 10_000,
        request_log_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.write_keys: Tuple[str, ...] = _keys(write_keys, "write_keys")
        self.disabled_write_keys: Tuple[str, ...] = _keys(
            disabled_write_keys, "disabled_write_keys"
        )
        both = set(self.write_keys) & set(self.disabled_write_keys)
        if both:
            raise ValueError(f"write keys both enabled and disabled: {sorted(both)}")
        if isinstance(max_request_bytes, bool) or not isinstance(max_request_bytes, int):
            raise TypeError("max_request_bytes must be an int")
        if max_request_bytes <= 0:
            raise ValueError("max_request_bytes must be positive")
        if max_concurrent_requests is not None and max_concurrent_requests < 1:
            raise ValueError("max_concurrent_requests must be at least 1")
        self.max_request_bytes = max_request_bytes
        self.legacy_bodies: bool = bool(legacy_bodies)
        self.rate_limit = rate_limit
        self.max_concurrent_requests = max_concurrent_requests
        self.host = host
        self._requested_port = int(port)
        self.db: Optional[str] = os.fspath(db) if db is not None else None
        self._gateway = Gateway(
            write_keys=self.write_keys,
            disabled_write_keys=self.disabled_write_keys,
            max_request_bytes=max_request_bytes,
            legacy_bodies=self.legacy_bodies,
            rate_limit=rate_limit,
            max_concurrent_requests=max_concurrent_requests,
            db=self.db,
            console=console,
            console_stream=console_stream,
            request_log_size=request_log_size,
            request_log_bytes=request_log_bytes,
        )
        self._store = self._gateway.store
        self._faults = self._gateway.faults
        self._httpd: Optional[Server] = None
        self._thread: Optional[threading.Thread] = None
        self._port: Optional[int] = None
        self._stopped = False

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> DevServer:
        """Bind and serve in a background thread; returns self. Warns off loopback."""
        if self._httpd is not None or self._stopped:
            raise RuntimeError("a DevServer can be started once")
        if not is_loopback(self.host):
            logger.warning(
                "listening on %s, which is not a loopback address: anyone who can reach it"
                " can send events and use the /_dev/ control API",
                self.host,
            )
        httpd = Server((self.host, self._requested_port), self._gateway, self)
        self._httpd = httpd
        self._port = int(httpd.server_address[1])
        self._gateway.started()
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"rudder-devserver:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, cut open connections (live pages too) and wake hanging handlers;
        idempotent, and returns within about ``timeout`` seconds."""
        if self._stopped:
            return
        self._stopped = True
        self._gateway.stop()
        httpd = self._httpd
        if httpd is None:
            return
        deadline = time.monotonic() + timeout
        httpd.shutdown()
        httpd.server_close()
        connections, threads = self._gateway.open_connections()
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Stop, then close the database (stored events are no longer readable)."""
        self.stop()
        self._store.close()

    def __enter__(self) -> DevServer:
        if self._httpd is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the free port picked when 0 was asked for)."""
        if self._port is None:
            raise RuntimeError("the DevServer is not started")
        return self._port

    @property
    def url(self) -> str:
        """Data plane URL, e.g. ``http://127.0.0.1:8080`` (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def page_url(self) -> str:
        """The live page for a browser, e.g. ``http://127.0.0.1:8080/``."""
        return self.url + "/"

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._httpd is not None and not self._stopped

    # --- stored events -----------------------------------------------------------------

    def events(
        self,
        type: _Filter = None,
        user_id: _Filter = None,
        message_id: _Filter = None,
        *,
        anonymous_id: _Filter = None,
        event: _Filter = None,
        write_key: _Filter = None,
    ) -> List[Dict[str, Any]]:
        """Stored events (enriched by the server), in arrival order, optionally filtered."""
        return self._store.events(
            type=type,
            user_id=user_id,
            message_id=message_id,
            anonymous_id=anonymous_id,
            event=event,
            write_key=write_key,
        )

    def jobs(
        self,
        type: _Filter = None,
        user_id: _Filter = None,
        message_id: _Filter = None,
        *,
        anonymous_id: _Filter = None,
        event: _Filter = None,
        write_key: _Filter = None,
    ) -> List[Dict[str, Any]]:
        """Stored records in the gateway's shape ``{batch, requestIP, writeKey, receivedAt}``."""
        return self._store.jobs(
            type=type,
            user_id=user_id,
            message_id=message_id,
            anonymous_id=anonymous_id,
            event=event,
            write_key=write_key,
        )

    def count(
        self,
        type: _Filter = None,
        user_id: _Filter = None,
        message_id: _Filter = None,
        *,
        anonymous_id: _Filter = None,
        event: _Filter = None,
        write_key: _Filter = None,
    ) -> int:
        """Number of stored events matching the filters."""
        return self._store.count(
            type=type,
            user_id=user_id,
            message_id=message_id,
            anonymous_id=anonymous_id,
            event=event,
            write_key=write_key,
        )

    def wait_for_events(self, n: int, timeout: float = 10.0) -> bool:
        """Block (on a Condition, no polling) until at least ``n`` events are stored."""
        return self._store.wait_for(n, timeout)

    # --- request log -------------------------------------------------------------------

    def requests(self) -> List[RequestRecord]:
        """Snapshots of the logged requests, oldest first (``/_dev/`` calls excluded).

        The log keeps the newest ``request_log_size`` requests whose bodies together fit
        in ``request_log_bytes``; ``wait_for_requests`` counts every request regardless.
        """
        return self._gateway.log.snapshot()

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> bool:
        """Block until at least ``n`` requests have arrived since the last reset."""
        return self._gateway.log.wait_for(n, timeout)

    def rejections(self) -> List[Dict[str, Any]]:
        """The newest (up to 1,000) requests answered with an error or not answered,
        oldest first: ``time method path status reason fault write_key client body``."""
        return self._gateway.feed.rejections()

    def reset(self) -> None:
        """Clear stored events, the request log, the rejections (open pages are cleared
        too), the fault plan and the rate limit."""
        self._gateway.reset()

    # --- faults ------------------------------------------------------------------------

    def fail_next(
        self,
        n: int,
        status: int = 503,
        retry_after: Union[int, float, str, None] = None,
        body: Union[str, bytes, None] = None,
    ) -> None:
        """Answer the next ``n`` ingestion POSTs with ``status`` and store nothing.

        ``retry_after`` (seconds or a string) adds a ``Retry-After`` header. ``body``
        defaults to the gateway's text for that status; a str is sent like ``http.Error``
        (plus a newline), bytes verbatim.
        """
        self._faults.add(_fail_fault(status, retry_after, body), n)

    def fail_fraction(
        self,
        p: float,
        status: int = 503,
        retry_after: Union[int, float, str, None] = None,
        seed: Optional[int] = None,
    ) -> None:
        """Fail each ingestion POST with probability ``p`` until the faults are cleared."""
        self._faults.set_fraction(float(p), _fail_fault(status, retry_after, None), seed)

    def set_latency(self, seconds: float) -> None:
        """Wait ``seconds`` before handling each ingestion POST (0 turns it off)."""
        self._faults.set_latency(float(seconds))

    def drop_next(self, n: int) -> None:
        """Close the connection of the next ``n`` ingestion POSTs without reading or answering."""
        self._faults.add(Fault("drop"), n)

    def store_then_drop_next(self, n: int) -> None:
        """Store the next ``n`` ingestion POSTs as usual, then close without answering."""
        self._faults.add(Fault("store_then_drop"), n)

    def hang_next(self, n: int, seconds: float = 30.0) -> None:
        """Read the next ``n`` ingestion POSTs, then hang ``seconds`` (or until stop) and close."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        self._faults.add(Fault("hang", seconds=float(seconds)), n)

    def clear_faults(self) -> None:
        """Remove every scripted fault, random failures and latency."""
        self._faults.clear()

    def fault_plan(self) -> Dict[str, Any]:
        """The current fault plan as data."""
        return self._faults.snapshot()

    def config(self) -> Dict[str, Any]:
        """The settings this server runs with (for ``GET /_dev/config``)."""
        return {
            "url": self.url if self._port is not None else None,
            "write_keys": list(self.write_keys),
            "disabled_write_keys": list(self.disabled_write_keys),
            "max_request_bytes": self.max_request_bytes,
            "legacy_bodies": self.legacy_bodies,
            "rate_limit": list(self.rate_limit) if self.rate_limit else None,
            "max_concurrent_requests": self.max_concurrent_requests,
            "db": self.db,
        }


def _fail_fault(
    status: int, retry_after: Union[int, float, str, None], body: Union[str, bytes, None]
) -> Fault:
    """A checked ``fail`` step (bad arguments raise in the caller)."""
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError("status must be an HTTP status code (100-599)")
    if body is not None and not isinstance(body, (str, bytes)):
        raise TypeError("body must be str, bytes or None")
    return Fault("fail", status=status, retry_after=retry_after_text(retry_after), body=body)


def _keys(value: Union[str, Iterable[str]], name: str) -> Tuple[str, ...]:
    """Normalise a write key argument: one string or an iterable of non-empty strings."""
    keys = (value,) if isinstance(value, str) else tuple(value)
    for key in keys:
        if not isinstance(key, str) or not key:
            raise ValueError(f"{name} must hold non-empty strings, got {key!r}")
    return keys
