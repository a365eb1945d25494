"""The HTTP layer of the stand-in data plane and the ``DevServer`` object that runs it.

Threaded ``http.server`` with HTTP/1.1 keep-alive. Each response is written with one
``write`` (headers and body together, Nagle off) and always carries ``Content-Length``.
Per request: route, fault plan, auth (before the body), read and gunzip, the gateway rules
(``protocol.build_events``), one SQLite transaction, then ``ok``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import ipaddress
import json
import logging
import os
import socket
import struct
import sys
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import (
    Any,
    Deque,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    Set,
    TextIO,
    Tuple,
    Type,
    Union,
    cast,
)
from urllib.parse import unquote, urlsplit

from . import control
from .console import ConsolePrinter
from .faults import Fault, FaultPlan, retry_after_text
from .protocol import (
    DEFAULT_MAX_REQUEST_BYTES,
    INGEST_ROUTES,
    ProtocolError,
    RateLimiter,
    build_events,
    fault_text,
    message,
    status_of,
)
from .storage import EventStore

__all__ = ["DEFAULT_WRITE_KEY", "DevServer", "Headers", "RequestRecord"]

logger = logging.getLogger("rudder_analytics.devserver")

DEFAULT_WRITE_KEY = "test-write-key"

# Go's net/http discards at most this much of an unread request body to keep the
# connection; past it the connection is closed after the answer.
_DISCARD_LIMIT = 256 * 1024
_TEXT = "text/plain; charset=utf-8"
_JSON = "application/json; charset=utf-8"
_CORS_METHODS = ("GET", "POST", "HEAD")


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


_date_cache: Tuple[int, str] = (0, "")


def _http_date() -> str:
    """``Date`` header value, formatted once per second."""
    global _date_cache
    now = int(time.time())
    cached = _date_cache
    if cached[0] == now:
        return cached[1]
    text = formatdate(now, usegmt=True)
    _date_cache = (now, text)
    return text


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


def basic_auth_user(header: Optional[str]) -> str:
    """Go's ``r.BasicAuth()`` username, or "" when the header is missing or malformed."""
    if not header or len(header) < 6 or header[:6].lower() != "basic ":
        return ""
    try:
        decoded = base64.b64decode(header[6:].replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return ""
    text = decoded.decode("utf-8", "surrogateescape")
    if ":" not in text:
        return ""
    return text.split(":", 1)[0]


def is_loopback(host: str) -> bool:
    """True for loopback addresses and ``localhost`` names."""
    if host in ("localhost",) or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` bound to one ``DevServer``; daemon handler threads."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: Tuple[str, int], devserver: DevServer) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.devserver = devserver
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connection errors are normal here (faults, clients giving up): log at debug."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            logger.debug("connection from %s ended: %r", client_address, exc)
        else:
            logger.exception("error while handling a request from %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    """One connection: parses requests and answers them like rudder-server's gateway."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "rudder-analytics-devserver"

    _dev: DevServer
    _record: Optional[RequestRecord]
    _lose_response: bool

    def setup(self) -> None:
        super().setup()
        self._dev = cast(_Server, self.server).devserver
        self._record = None
        self._lose_response = False
        if not self._dev._register(self.connection):
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._dev._unregister(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """No per-request logging (``http.server`` would print every request to stderr)."""

    # Every method goes through one dispatcher, so unknown routes and wrong methods are
    # answered like chi answers them (404 / 405) rather than with http.server's 501.
    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    # --- routing ---------------------------------------------------------------------

    def _dispatch(self) -> None:
        target = self.path
        if not target.startswith("/"):
            target = urlsplit(target).path or "/"
        path, _, query = target.partition("?")
        if "%" in path:
            path = unquote(path)
        if path == control.PREFIX or path.startswith(control.PREFIX + "/"):
            self._record = None
            self._lose_response = False
            self._control(path, query)
            return
        dev = self._dev
        record = RequestRecord(
            method=self.command,
            path=path,
            query=query,
            headers=Headers(self.headers.items()),
            received_at=time.monotonic(),
            client=str(self.client_address[0]),
        )
        self._record = record
        self._lose_response = False
        if (
            self.command == "OPTIONS"
            and self._header("Access-Control-Request-Method")
            and self._header("Origin")
        ):
            dev._log_request(record)
            self._preflight()
            return
        admitted = dev._enter()
        # Logged once admitted: a test that saw request n logged knows it holds a slot.
        dev._log_request(record)
        if not admitted:
            self._finish_unread()
            self._send_error_text(503, message("service_unavailable"))
            return
        try:
            self._route(path)
        finally:
            dev._leave()

    def _route(self, path: str) -> None:
        method = self.command
        if path in ("/health", "/"):
            if method == "GET":
                self._finish_unread()
                self._send(200, self._dev._health_body(), _JSON)
            else:
                self._finish_unread()
                self._send(405, b"", None, extra=(("Allow", "GET"),))
            return
        req_type = INGEST_ROUTES.get(path)
        if req_type is None:
            self._finish_unread()
            self._send_error_text(404, "404 page not found")
        elif method != "POST":
            self._finish_unread()
            self._send(405, b"", None, extra=(("Allow", "POST"),))
        else:
            self._ingest(req_type)

    # --- ingestion ---------------------------------------------------------------------

    def _ingest(self, req_type: str) -> None:
        dev = self._dev
        record = self._record
        assert record is not None
        fault = dev._faults.next_fault()
        if fault is not None:
            record.fault = fault.kind
            if fault.kind == "drop":
                self._abort()
                return
        write_key = ""
        if fault is None or fault.kind == "store_then_drop":
            self._lose_response = fault is not None
            auth_error, write_key = dev._authenticate(self._header("Authorization"))
            if auth_error is not None:
                self._finish_unread()
                self._send_error_key(auth_error)
                return
        raw = self._read_body()
        if raw is None:
            self._abort()
            return
        record.raw_size = len(raw)
        body: Optional[bytes] = raw
        if self._header("Content-Encoding") == "gzip":
            try:
                body = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error):
                body = None
        dev._log_body(record, body)
        latency = dev._faults.latency
        if latency > 0 and dev._stopping.wait(latency):
            self._abort()
            return
        if fault is not None and fault.kind == "hang":
            dev._stopping.wait(fault.seconds)
            self._abort()
            return
        if fault is not None and fault.kind == "fail":
            self._send_fault(fault)
            return
        if body is None:
            self._send_error_key("body_read_failed")
            return
        try:
            accepted = build_events(
                body,
                req_type,
                write_key=write_key,
                request_ip=self._request_ip(),
                max_request_bytes=dev.max_request_bytes,
                rate_limiter=dev._limiter,
                skip_rate_limit=bool(
                    self._header("X-Rudder-Job-Run-Id") or self._header("X-Rudder-Task-Run-Id")
                ),
                now=datetime.now(timezone.utc),
            )
        except ProtocolError as exc:
            self._send_error_key(exc.key)
            return
        try:
            dev._store.insert(accepted.rows)
        except Exception as exc:  # the "DB store failed" answer: 500 with the raw error text
            logger.debug("store failed: %r", exc)
            self._send_error_text(500, str(exc) or exc.__class__.__name__)
            return
        record.events = len(accepted.rows)
        printer = dev._console
        if printer is not None:
            printer.print_events(accepted.events)
        self._send(200, dev._ok_body, _TEXT)

    def _request_ip(self) -> str:
        """go-kit ``GetRequestIP``: the first X-Forwarded-For entry, else the peer host
        (RemoteAddr without its port, so an IPv6 peer keeps its brackets)."""
        forwarded = self._header("X-Forwarded-For")
        if forwarded:
            first = forwarded.split(",", 1)[0]
            if first:
                return first.replace(" ", "")
        peer = str(self.client_address[0])
        return f"[{peer}]" if ":" in peer else peer

    # --- request bodies --------------------------------------------------------------

    def _header(self, name: str) -> str:
        value = self.headers.get(name)
        return value.strip() if value else ""

    def _read_body(self, limit: Optional[int] = None) -> Optional[bytes]:
        """The raw body; None if the client went away, framing is broken or over ``limit``."""
        if self._header("Transfer-Encoding"):
            return self._read_chunked(limit)
        length_text = self._header("Content-Length")
        if not length_text:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            return None
        if length < 0 or (limit is not None and length > limit):
            return None
        data = self.rfile.read(length) if length else b""
        return data if len(data) == length else None

    def _read_chunked(self, limit: Optional[int]) -> Optional[bytes]:
        parts: List[bytes] = []
        total = 0
        rfile = self.rfile
        while True:
            line = rfile.readline(65537)
            if not line.endswith(b"\n"):
                return None
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                return None
            if size == 0:
                while True:  # trailers, then the blank line
                    trailer = rfile.readline(65537)
                    if trailer in (b"\r\n", b"\n", b""):
                        return b"".join(parts)
            total += size
            if size < 0 or (limit is not None and total > limit):
                return None
            chunk = rfile.read(size)
            if len(chunk) != size or rfile.readline(3) not in (b"\r\n", b"\n"):
                return None
            parts.append(chunk)

    def _finish_unread(self) -> None:
        """Discard a body the route will not read, as Go does (up to 256 KiB, else close)."""
        if not self._header("Transfer-Encoding") and self._header("Content-Length") in ("", "0"):
            return
        raw = self._read_body(_DISCARD_LIMIT)
        if raw is None:
            self.close_connection = True
        elif self._record is not None:
            self._record.raw_size = len(raw)

    # --- answers -----------------------------------------------------------------------

    def _cors_headers(self, headers: List[Tuple[str, str]]) -> None:
        headers.append(("Vary", "Origin"))
        origin = self._header("Origin")
        if origin and self.command in _CORS_METHODS:
            headers.append(("Access-Control-Allow-Origin", origin))
            headers.append(("Access-Control-Allow-Credentials", "true"))

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: Optional[str],
        *,
        nosniff: bool = False,
        extra: Sequence[Tuple[str, str]] = (),
        cors: bool = True,
    ) -> None:
        """Write the whole answer in one call; or drop the connection if it is to be lost."""
        record = self._record
        if self._lose_response:
            self._abort()
            return
        headers: List[Tuple[str, str]] = []
        if status != 204:
            headers.append(("Content-Length", str(len(body))))
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        headers.append(("Date", _http_date()))
        if nosniff:
            headers.append(("X-Content-Type-Options", "nosniff"))
        if cors:
            self._cors_headers(headers)
        headers.extend(extra)
        if self.close_connection:
            headers.append(("Connection", "close"))
        headers.sort(key=lambda item: item[0])
        head = f"HTTP/1.1 {status} {_reason(status)}\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers
        )
        data = (head + "\r\n").encode("latin-1", "replace")
        if self.command != "HEAD":
            data += body
        if record is not None:  # before the write: the client may look as soon as it reads
            record.status = status
            record.answered = True
        try:
            self.wfile.write(data)
        except OSError:
            self.close_connection = True
            if record is not None:
                record.answered = False

    def _send_error_text(
        self, status: int, text: str, extra: Sequence[Tuple[str, str]] = ()
    ) -> None:
        """Go's ``http.Error``: text/plain, nosniff, message + newline."""
        body = (text + "\n").encode("utf-8", "replace")
        self._send(status, body, _TEXT, nosniff=True, extra=extra)

    def _send_error_key(self, key: str) -> None:
        self._send_error_text(status_of(key), message(key, self._dev.legacy_bodies))

    def _send_fault(self, fault: Fault) -> None:
        extra: Tuple[Tuple[str, str], ...] = ()
        if fault.retry_after is not None:
            extra = (("Retry-After", fault.retry_after),)
        if isinstance(fault.body, bytes):
            self._send(fault.status, fault.body, _TEXT, extra=extra)
        elif fault.body is None and fault.status == 200:
            self._send(200, self._dev._ok_body, _TEXT, extra=extra)
        else:
            text = fault.body
            if text is None:
                text = fault_text(fault.status, self._dev.legacy_bodies)
            self._send_error_text(fault.status, text, extra)

    def _preflight(self) -> None:
        """rs/cors preflight: allow any origin, the simple methods and any headers."""
        self._finish_unread()
        headers: List[Tuple[str, str]] = [
            ("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
        ]
        method = self._header("Access-Control-Request-Method").upper()
        if method in _CORS_METHODS:
            headers.append(("Access-Control-Allow-Origin", self._header("Origin")))
            headers.append(("Access-Control-Allow-Methods", method))
            requested = self._header("Access-Control-Request-Headers")
            if requested:
                headers.append(("Access-Control-Allow-Headers", requested))
            headers.append(("Access-Control-Allow-Credentials", "true"))
            headers.append(("Access-Control-Max-Age", "900"))
        self._send(204, b"", None, extra=headers, cors=False)

    def _abort(self) -> None:
        """Close the connection without an answer: the client sees a reset."""
        self.close_connection = True
        sock = self.connection
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            sock.close()  # the fd goes when rfile/wfile close in finish(): RST, no answer

    # --- control API -------------------------------------------------------------------

    def _control(self, path: str, query: str) -> None:
        body = self._read_body(16 * 1024 * 1024)
        if body is None:
            self.close_connection = True
            body = b""
        try:
            status, value = control.dispatch(self._dev, self.command, path, query, body)
        except Exception as exc:  # a bug must not kill the connection silently
            logger.exception("control request %s %s failed", self.command, path)
            status, value = 500, {"error": repr(exc)}
        data = json.dumps(value, ensure_ascii=True).encode("ascii")
        self._send(status, data, _JSON)


class DevServer:
    """A local stand-in for rudder-server's data plane, for tests, demos and benchmarks.

    ``with DevServer() as server:`` starts it on a free loopback port in a background
    thread; ``server.url`` is the data plane URL to give the SDK. Stored events, the
    request log and the fault plan are available as methods, and over HTTP under
    ``/_dev/`` (see the package docstring). ``stop()`` leaves the stored events readable.
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
        if request_log_size < 0 or request_log_bytes < 0:
            raise ValueError("request_log_size and request_log_bytes must not be negative")
        self.max_request_bytes = max_request_bytes
        self.legacy_bodies = bool(legacy_bodies)
        self.rate_limit = rate_limit
        self.max_concurrent_requests = max_concurrent_requests
        self.host = host
        self._requested_port = int(port)
        self.db = os.fspath(db) if db is not None else None

        self._enabled = frozenset(self.write_keys)
        self._disabled = frozenset(self.disabled_write_keys)
        self._limiter = (
            RateLimiter(int(rate_limit[0]), float(rate_limit[1])) if rate_limit else None
        )
        self._console = ConsolePrinter(console, console_stream) if console else None
        self._store = EventStore(self.db)
        self._faults = FaultPlan()
        self._ok_body = message("ok", self.legacy_bodies).encode()
        self._health: bytes = b""

        self._log_cond = threading.Condition(threading.Lock())
        self._log: Deque[RequestRecord] = deque()
        self._log_size = request_log_size
        self._log_bytes_limit = request_log_bytes
        self._log_bytes = 0
        self._received = 0

        self._inflight_lock = threading.Lock()
        self._inflight = 0

        self._stopping = threading.Event()
        self._conn_lock = threading.Lock()
        self._connections: Set[socket.socket] = set()
        self._threads: Set[threading.Thread] = set()

        self._httpd: Optional[_Server] = None
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
        httpd = _Server((self.host, self._requested_port), self)
        self._httpd = httpd
        self._port = int(httpd.server_address[1])
        sync = format_rfc3339(datetime.now(timezone.utc))
        self._health = (
            '{"appType":"EMBEDDED","server":"UP","db":"UP","acceptingEvents":"TRUE",'
            '"routingEvents":"TRUE","mode":"NORMAL","backendConfigMode":"API",'
            f'"lastSync":"{sync}","lastRegulationSync":"{sync}"}}'
        ).encode()
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"rudder-devserver:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, cut open connections and wake hanging handlers; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        httpd = self._httpd
        if httpd is None:
            return
        deadline = time.monotonic() + timeout
        httpd.shutdown()
        httpd.server_close()
        with self._conn_lock:
            connections = list(self._connections)
            threads = list(self._threads)
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
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._httpd is not None and not self._stopped

    # --- stored events -----------------------------------------------------------------

    def events(
        self,
        type: Optional[str] = None,
        user_id: Optional[str] = None,
        message_id: Optional[str] = None,
        *,
        anonymous_id: Optional[str] = None,
        event: Optional[str] = None,
        write_key: Optional[str] = None,
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
        type: Optional[str] = None,
        user_id: Optional[str] = None,
        message_id: Optional[str] = None,
        *,
        anonymous_id: Optional[str] = None,
        event: Optional[str] = None,
        write_key: Optional[str] = None,
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
        type: Optional[str] = None,
        user_id: Optional[str] = None,
        message_id: Optional[str] = None,
        *,
        anonymous_id: Optional[str] = None,
        event: Optional[str] = None,
        write_key: Optional[str] = None,
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
        with self._log_cond:
            return [replace(r) for r in self._log]

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> bool:
        """Block until at least ``n`` requests have arrived since the last reset."""
        with self._log_cond:
            return self._log_cond.wait_for(lambda: self._received >= n, timeout)

    def reset(self) -> None:
        """Clear stored events, the request log, the fault plan and the rate limit."""
        self._store.reset()
        self._faults.clear()
        if self._limiter is not None:
            self._limiter.reset()
        with self._log_cond:
            for record in self._log:
                record._evicted = True
            self._log.clear()
            self._log_bytes = 0
            self._received = 0

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
        self._faults.add(self._fail_fault(status, retry_after, body), n)

    def fail_fraction(
        self,
        p: float,
        status: int = 503,
        retry_after: Union[int, float, str, None] = None,
        seed: Optional[int] = None,
    ) -> None:
        """Fail each ingestion POST with probability ``p`` until the faults are cleared."""
        self._faults.set_fraction(float(p), self._fail_fault(status, retry_after, None), seed)

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

    @staticmethod
    def _fail_fault(
        status: int, retry_after: Union[int, float, str, None], body: Union[str, bytes, None]
    ) -> Fault:
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code (100-599)")
        if body is not None and not isinstance(body, (str, bytes)):
            raise TypeError("body must be str, bytes or None")
        return Fault("fail", status=status, retry_after=retry_after_text(retry_after), body=body)

    # --- used by the handler ------------------------------------------------------------

    def _authenticate(self, header: str) -> Tuple[Optional[str], str]:
        """(answer key or None, write key) for an ``Authorization`` header."""
        key = basic_auth_user(header)
        if not key:
            return "no_write_key", ""
        if key in self._enabled:
            return None, key
        if key in self._disabled:
            return "source_disabled", key
        return "invalid_write_key", key

    def _health_body(self) -> bytes:
        return self._health

    def _log_request(self, record: RequestRecord) -> None:
        with self._log_cond:
            self._received += 1
            if self._log_size:
                self._log.append(record)
                self._trim_log()
            else:
                record._evicted = True
            self._log_cond.notify_all()

    def _log_body(self, record: RequestRecord, body: Optional[bytes]) -> None:
        """Attach the body to a logged request, keeping the log within its byte budget."""
        with self._log_cond:
            record.body = body
            if body is not None and not record._evicted:
                record._body_bytes = len(body)
                self._log_bytes += len(body)
                self._trim_log()

    def _trim_log(self) -> None:
        """Drop the oldest records beyond ``request_log_size`` or ``request_log_bytes``."""
        log = self._log
        while log and (len(log) > self._log_size or self._log_bytes > self._log_bytes_limit):
            old = log.popleft()
            old._evicted = True
            self._log_bytes -= old._body_bytes

    def _enter(self) -> bool:
        limit = self.max_concurrent_requests
        if limit is None:
            return True
        with self._inflight_lock:
            if self._inflight >= limit:
                return False
            self._inflight += 1
            return True

    def _leave(self) -> None:
        if self.max_concurrent_requests is None:
            return
        with self._inflight_lock:
            self._inflight -= 1

    def _register(self, sock: socket.socket) -> bool:
        with self._conn_lock:
            if self._stopping.is_set():
                return False
            self._connections.add(sock)
            self._threads.add(threading.current_thread())
            return True

    def _unregister(self, sock: socket.socket) -> None:
        with self._conn_lock:
            self._connections.discard(sock)
            self._threads.discard(threading.current_thread())


def format_rfc3339(moment: datetime) -> str:
    """``2006-01-02T15:04:05Z`` in UTC."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _keys(value: Union[str, Iterable[str]], name: str) -> Tuple[str, ...]:
    """Normalise a write key argument: one string or an iterable of non-empty strings."""
    keys = (value,) if isinstance(value, str) else tuple(value)
    for key in keys:
        if not isinstance(key, str) or not key:
            raise ValueError(f"{name} must hold non-empty strings, got {key!r}")
    return keys
