"""The HTTP connection layer: a threaded ``http.server`` and its request handler.

HTTP/1.1 keep-alive. Each answer is written with one ``write`` (headers and body
together, Nagle off) and carries ``Content-Length``; only the live stream is open-ended
(and closes its connection). Routing and the gateway rules live in ``routes`` and
``ingest``; this module offers them a small set of public methods (read the body,
answer, abort) and touches only the ``Gateway``'s public interface.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, ClassVar, List, Optional, Sequence, Tuple, cast

from . import routes
from .faults import Fault
from .gateway import Gateway
from .protocol import fault_text, message, status_of
from .records import RequestRecord
from .wire import DISCARD_LIMIT, TEXT, http_date, read_body, reason_phrase

__all__ = ["Handler", "Server"]

logger: logging.Logger = logging.getLogger("rudder_analytics.devserver")

_CORS_METHODS = ("GET", "POST", "HEAD")


class Server(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` bound to one ``Gateway``; daemon handler threads.

    ``control`` is the object the ``/_dev/`` API acts on (the ``DevServer``).
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: Tuple[str, int], gateway: Gateway, control: Any) -> None:
        if ":" in address[0]:
            self.address_family: int = socket.AF_INET6
        self.gateway = gateway
        self.control = control
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connection errors are normal here (faults, clients giving up): log at debug."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            logger.debug("connection from %s ended: %r", client_address, exc)
        else:
            logger.exception("error while handling a request from %s", client_address)


class Handler(BaseHTTPRequestHandler):
    """One connection: parses requests and answers them like rudder-server's gateway."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "rudder-analytics-devserver"

    gateway: Gateway
    control: Any
    #: The logged request being answered (None for ``/_dev/`` calls).
    record: Optional[RequestRecord]
    #: True when the answer must be lost on purpose (``store_then_drop``).
    lose_response: bool
    #: Why the request was refused, for the page and the console ("" when it was not).
    reason: str
    #: True once the refusal of ``record`` was reported.
    reported: bool
    #: True when the connection closes after this answer (``http.server``'s own flag).
    close_connection: bool

    def setup(self) -> None:
        """Take the gateway from the server and register the connection (refused: closed)."""
        super().setup()
        server = cast(Server, self.server)
        self.gateway = server.gateway
        self.control = server.control
        self.begin(None)
        if not self.gateway.register(self.connection):
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        """Flush and close the connection's files, then unregister it from the gateway."""
        try:
            super().finish()
        finally:
            self.gateway.unregister(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """No per-request logging (``http.server`` would print every request to stderr)."""

    # Every method goes through one dispatcher, so unknown routes and wrong methods are
    # answered like chi answers them (404 / 405) rather than with http.server's 501.
    def do_GET(self) -> None:
        """Answer a request of any method: :func:`routes.dispatch` routes it."""
        routes.dispatch(self)

    do_POST: ClassVar[Callable[[Handler], None]] = do_GET
    do_PUT: ClassVar[Callable[[Handler], None]] = do_GET
    do_DELETE: ClassVar[Callable[[Handler], None]] = do_GET
    do_PATCH: ClassVar[Callable[[Handler], None]] = do_GET
    do_HEAD: ClassVar[Callable[[Handler], None]] = do_GET
    do_OPTIONS: ClassVar[Callable[[Handler], None]] = do_GET

    def begin(self, record: Optional[RequestRecord]) -> None:
        """Start answering a new request on this connection."""
        self.record = record
        self.lose_response = False
        self.reason = ""
        self.reported = False

    def report_refusal(self) -> None:
        """Report the logged request as refused (once), before the client can see it."""
        record = self.record
        if record is not None and not self.reported:
            self.reported = True
            self.gateway.rejected(record, self.reason)

    # --- request ---------------------------------------------------------------------

    def header(self, name: str) -> str:
        """A request header, stripped ("" when absent)."""
        value = self.headers.get(name)
        return value.strip() if value else ""

    def read_body(self, limit: Optional[int] = None) -> Optional[bytes]:
        """The raw body; None if the client went away, framing is broken or over ``limit``."""
        chunked = bool(self.header("Transfer-Encoding"))
        return read_body(self.rfile, self.header("Content-Length"), chunked, limit)

    def discard_body(self) -> None:
        """Discard a body the route will not read, as Go does (up to 256 KiB, else close)."""
        if not self.header("Transfer-Encoding") and self.header("Content-Length") in ("", "0"):
            return
        raw = self.read_body(DISCARD_LIMIT)
        if raw is None:
            self.close_connection = True
        elif self.record is not None:
            self.record.raw_size = len(raw)

    def request_ip(self) -> str:
        """go-kit ``GetRequestIP``: the first X-Forwarded-For entry, else the peer host
        (RemoteAddr without its port, so an IPv6 peer keeps its brackets)."""
        forwarded = self.header("X-Forwarded-For")
        if forwarded:
            first = forwarded.split(",", 1)[0]
            if first:
                return first.replace(" ", "")
        peer = str(self.client_address[0])
        return f"[{peer}]" if ":" in peer else peer

    # --- answers -----------------------------------------------------------------------

    def _cors_headers(self, headers: List[Tuple[str, str]]) -> None:
        headers.append(("Vary", "Origin"))
        origin = self.header("Origin")
        if origin and self.command in _CORS_METHODS:
            headers.append(("Access-Control-Allow-Origin", origin))
            headers.append(("Access-Control-Allow-Credentials", "true"))

    def _head(self, status: int, headers: List[Tuple[str, str]]) -> bytes:
        headers.append(("Date", http_date()))
        if self.close_connection:
            headers.append(("Connection", "close"))
        headers.sort(key=lambda item: item[0])
        head = f"HTTP/1.1 {status} {reason_phrase(status)}\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers
        )
        return (head + "\r\n").encode("latin-1", "replace")

    def answer(
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
        record = self.record
        if self.lose_response:
            self.abort()
            return
        headers: List[Tuple[str, str]] = []
        if status != 204:
            headers.append(("Content-Length", str(len(body))))
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        if nosniff:
            headers.append(("X-Content-Type-Options", "nosniff"))
        if cors:
            self._cors_headers(headers)
        headers.extend(extra)
        data = self._head(status, headers)
        if self.command != "HEAD":
            data += body
        if record is not None:  # before the write: the client may look as soon as it reads
            record.status = status
            record.answered = True
            if status >= 400:
                self.report_refusal()
        try:
            self.wfile.write(data)
        except OSError:
            self.close_connection = True
            if record is not None:
                record.answered = False

    def answer_text(self, status: int, text: str, extra: Sequence[Tuple[str, str]] = ()) -> None:
        """Go's ``http.Error``: text/plain, nosniff, message + newline."""
        self.reason = text
        body = (text + "\n").encode("utf-8", "replace")
        self.answer(status, body, TEXT, nosniff=True, extra=extra)

    def answer_key(self, key: str) -> None:
        """The gateway's answer ``key`` (status and text, current or legacy wording)."""
        self.answer_text(status_of(key), message(key, self.gateway.legacy_bodies))

    def answer_fault(self, fault: Fault) -> None:
        """A scripted failure: its status, ``Retry-After`` and body."""
        self.reason = f"scripted failure (fail_next / fail_fraction) {fault.status}"
        extra: Tuple[Tuple[str, str], ...] = ()
        if fault.retry_after is not None:
            extra = (("Retry-After", fault.retry_after),)
        if isinstance(fault.body, bytes):
            self.answer(fault.status, fault.body, TEXT, extra=extra)
        elif fault.body is None and fault.status == 200:
            self.answer(200, self.gateway.ok_body, TEXT, extra=extra)
        else:
            text = fault.body
            if text is None:
                text = fault_text(fault.status, self.gateway.legacy_bodies)
            self.answer_text(fault.status, text, extra)

    def preflight(self) -> None:
        """rs/cors preflight: allow any origin, the simple methods and any headers."""
        self.discard_body()
        headers: List[Tuple[str, str]] = [
            ("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
        ]
        method = self.header("Access-Control-Request-Method").upper()
        if method in _CORS_METHODS:
            headers.append(("Access-Control-Allow-Origin", self.header("Origin")))
            headers.append(("Access-Control-Allow-Methods", method))
            requested = self.header("Access-Control-Request-Headers")
            if requested:
                headers.append(("Access-Control-Allow-Headers", requested))
            headers.append(("Access-Control-Allow-Credentials", "true"))
            headers.append(("Access-Control-Max-Age", "900"))
        self.answer(204, b"", None, extra=headers, cors=False)

    def abort(self, reason: str = "") -> None:
        """Close the connection without an answer: the client sees a reset."""
        if reason:
            self.reason = reason
        self.report_refusal()
        self.close_connection = True
        sock = self.connection
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            sock.close()  # the fd goes when rfile/wfile close in finish(): RST, no answer

    # --- open-ended answers (the live stream) ---------------------------------------

    def start_stream(self, content_type: str, extra: Sequence[Tuple[str, str]] = ()) -> bool:
        """Send a 200 head with no length; the connection closes when the stream ends."""
        self.close_connection = True
        headers = [("Content-Type", content_type), *extra]
        return self.write_stream(self._head(200, headers))

    def write_stream(self, data: bytes) -> bool:
        """Write part of an open-ended answer; False once the client is gone."""
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            return False
        return True
