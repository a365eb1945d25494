"""HTTP transport: one ``requests.Session`` per worker, one POST per attempt.

The transport sends a body and describes what came back; it never retries or
sleeps (that is :mod:`.retry` and :mod:`.delivery`). It answers with an
:class:`Attempt`: a status code with a capped body, or the exception that
stopped the request and its :class:`~._core.policy.Failure` kind. Sessions are not
shared between threads (requests #2766).

Two edges of ``requests`` are closed here. Redirects are never followed (it
would turn a 301/302 POST into a body-less GET, and the batch would count as
delivered with nothing stored): the 3xx comes back as the answer. And
``timeout`` bounds the whole attempt, not each socket read: one process-wide
watchdog thread (:class:`_Watchdog`, started on first use, gone when idle)
shuts down the socket of an attempt whose deadline passed, so a data plane that
trickles its headers or its body cannot hold a worker. Arming it costs one
uncontended lock per attempt; no thread is started per request.
"""

from __future__ import annotations

import base64
import logging
import os
import socket
import ssl
import threading
import time
from typing import Any, NamedTuple, Optional, Union

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .._build.encoding import compress
from .._core.policy import REDIRECT_STATUSES, Failure, failure_of, retry_after_seconds
from ..config import Config
from ..version import VERSION

__all__ = ["USER_AGENT", "Attempt", "Transport", "attempt_timeout"]

logger: logging.Logger = logging.getLogger("rudder_analytics")

USER_AGENT = f"rudder-analytics-python/{VERSION}"


class Attempt(NamedTuple):
    """What one POST produced."""

    status_code: Optional[int]
    """HTTP status, or None when no answer came (connect error, reset, timeout)."""
    body: str
    """Response body, decoded as UTF-8 and cut at ``max_response_bytes``."""
    retry_after: Optional[float]
    """Seconds from ``Retry-After``, if the server sent one."""
    exception: Optional[BaseException]
    """The transport-level exception, when there was no answer."""
    response: Optional[requests.Response]
    """The response object, for ``on_error`` callbacks (its ``.content``, ``.text`` and
    ``.json()`` give the capped body)."""
    wire_bytes: int
    """Bytes put on the wire for the body."""
    failure: Optional[str] = None
    """The :class:`~._core.policy.Failure` kind, when there was no answer."""
    location: Optional[str] = None
    """A redirect's ``Location`` header."""


def attempt_timeout(timeout: Union[float, tuple[float, float]]) -> float:
    """Seconds one attempt may take in all: ``timeout``, or connect plus read for a pair."""
    return float(sum(timeout)) if isinstance(timeout, tuple) else float(timeout)


# --- the whole-attempt deadline ------------------------------------------------------------


class _Watch:
    """One transport's attempt in progress, as the watchdog sees it."""

    __slots__ = ("deadline", "expired", "sock")

    def __init__(self) -> None:
        self.deadline = 0.0
        self.expired = False
        """Set by the watchdog when the deadline passed (what was read may be cut short)."""
        self.sock: Any = None
        """The attempt's socket, kept here because http.client hands it from the
        connection to the response (``Connection: close``) and forgets it."""


_current = threading.local()
"""``watch``: the attempt the calling thread is making (a connection registers with it)."""


def _cut(sock: Any) -> None:
    """Shut ``sock`` down: a read blocked on it in another thread returns at once."""
    if sock is None:
        return
    try:
        if isinstance(sock, ssl.SSLSocket):  # the plain socket call: leave the TLS state alone
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        else:
            sock.shutdown(socket.SHUT_RDWR)
    except (OSError, ValueError):
        pass  # already closed or never connected


def _register(connection: HTTPConnection) -> None:
    """Tell the calling thread's attempt which socket it uses (cut it if already late)."""
    watch: Optional[_Watch] = getattr(_current, "watch", None)
    sock = connection.sock
    if watch is not None and sock is not None:
        watch.sock = sock
        if watch.expired:
            _cut(sock)


class _Watchdog:
    """Ends attempts whose deadline passed. One per process; its thread exits when idle."""

    IDLE_EXIT = 30.0
    """Seconds without any attempt after which the thread exits (it restarts on demand)."""

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._armed: set[_Watch] = set()
        self._running = False
        self._next = float("inf")
        """When the thread looks next; an earlier deadline wakes it."""

    def arm(self, watch: _Watch, deadline: float) -> None:
        """Watch an attempt that must be over by ``deadline`` (monotonic)."""
        with self._lock:
            watch.deadline = deadline
            watch.expired = False
            watch.sock = None
            self._armed.add(watch)
            if not self._running:
                self._start()
            elif deadline < self._next:
                self._wake.notify()

    def disarm(self, watch: _Watch) -> None:
        """The attempt is over: after this, its connection is never cut."""
        with self._lock:
            self._armed.discard(watch)

    def _start(self) -> None:
        thread = threading.Thread(target=self._run, name="rudder-analytics-watchdog",
                                  daemon=True)
        try:
            thread.start()
        except RuntimeError:  # interpreter finalizing: per-read timeouts still apply
            logger.debug("cannot start the watchdog thread", exc_info=True)
            return
        self._running = True

    def _run(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                for watch in [w for w in self._armed if w.deadline <= now]:
                    self._armed.discard(watch)
                    watch.expired = True
                    _cut(watch.sock)
                if self._armed:
                    self._next = min(w.deadline for w in self._armed)
                    self._wake.wait(self._next - now)
                    continue
                self._next = float("inf")
                if not self._wake.wait(self.IDLE_EXIT) and not self._armed:
                    self._running = False
                    return


_WATCHDOG = _Watchdog()


class _WatchedHTTPConnection(HTTPConnection):
    """Registers with the calling thread's attempt, so the watchdog can cut it."""

    def connect(self) -> None:
        super().connect()
        _register(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _register(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(_WatchedHTTPConnection, HTTPSConnection):
    """The TLS twin (its ``super()`` calls reach ``HTTPSConnection`` first)."""


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _Adapter(HTTPAdapter):
    """An adapter whose pools use the watched connections (SOCKS proxies keep their own)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


class Transport:
    """Posts request bodies to ``{data_plane_url}/v1/batch``."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._url = config.batch_url
        credentials = base64.b64encode(f"{config.write_key}:".encode()).decode("ascii")
        self._headers = {
            "Authorization": f"Basic {credentials}",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Accept": "*/*",
        }
        if config.gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._timeout = config.timeout
        self.attempt_timeout: float = attempt_timeout(config.timeout)
        """Seconds one attempt may take in all, reading the answer included."""
        self._watch = _Watch()
        self._session = self._new_session()
        self._template = self._prepare_template()

    def _prepare_template(self) -> requests.PreparedRequest:
        """A request prepared once; each attempt copies it and sets the body.

        ``Session.request`` re-merges settings, cookies, hooks and the URL on every
        call: about a quarter of the worker's CPU per batch. The copy skips that.
        """
        request = requests.Request("POST", self._url, headers=self._headers, data=b"{}")
        return self._session.prepare_request(request)

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        adapter = _Adapter(pool_connections=1, pool_maxsize=1, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        # requests re-reads proxy and CA-bundle environment variables on every request
        # when trust_env is on; resolve them once here instead (same result, less CPU).
        proxies: dict[str, str] = dict(self._config.proxies or {})
        if not proxies:
            proxies = get_environ_proxies(self._url)
        session.proxies = proxies
        verify: Union[bool, str] = self._config.verify
        if verify is True:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get(
                "CURL_CA_BUNDLE") or True
        session.verify = verify
        session.trust_env = False
        return session

    def post(self, body: bytes) -> Attempt:
        """POST one body (compressed here if gzip is on); never raises for network trouble.

        The attempt, reading of the answer included, ends by ``timeout`` (connect
        plus read for a pair); redirects are returned, not followed.
        """
        data = compress(body, self._config.gzip_level) if self._config.gzip else body
        prepared = self._template.copy()
        prepared.body = data
        prepared.headers["Content-Length"] = str(len(data))
        watch = self._watch
        deadline = time.monotonic() + self.attempt_timeout
        _current.watch = watch
        _WATCHDOG.arm(watch, deadline)
        try:
            return self._exchange(prepared, len(data), deadline)
        finally:
            _WATCHDOG.disarm(watch)
            _current.watch = None

    def _exchange(
        self, prepared: requests.PreparedRequest, wire: int, deadline: float
    ) -> Attempt:
        try:
            response = self._session.send(prepared, timeout=self._timeout, stream=True,
                                          allow_redirects=False)
        except Exception as exc:  # requests' errors, or urllib3/socket errors it did not wrap
            return self._failed(exc, wire)
        try:
            content = self._read_capped(response, deadline)
        except Exception as exc:  # the connection broke while reading the answer
            response.close()
            return self._failed(exc, wire)
        _WATCHDOG.disarm(self._watch)
        if self._watch.expired:  # cut at the deadline: the body may look complete, and is not
            response.close()
            return self._failed(_timed_out(self.attempt_timeout), wire)
        # The body was read as a stream; keep it so that on_error can use .content,
        # .text and .json() (requests' own idiom for a body it already holds).
        response._content = content
        headers = response.headers
        status = response.status_code
        retry_after = retry_after_seconds(headers.get("Retry-After"), headers.get("Date"),
                                          time.time())
        location = headers.get("Location") if status in REDIRECT_STATUSES else None
        text = content.decode("utf-8", "replace")
        return Attempt(status, text, retry_after, None, response, wire, None, location)

    def _failed(self, exc: BaseException, wire: int) -> Attempt:
        """An attempt that got no answer: its exception (write key redacted) and kind."""
        if isinstance(exc, requests.RequestException):
            _redact_credentials(exc)
        if self._watch.expired and not isinstance(exc, requests.Timeout):
            exc = _timed_out(self.attempt_timeout, exc)
        return Attempt(None, "", None, exc, None, wire, _failure_kind(exc))

    def _read_capped(self, response: requests.Response, deadline: float) -> bytes:
        """Read at most ``max_response_bytes`` by ``deadline``; a longer body closes the
        connection, a late one raises a timeout."""
        cap = self._config.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=8192):
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:
                response.close()
                break
            if time.monotonic() > deadline:
                raise _timed_out(self.attempt_timeout)
        return b"".join(chunks)[:cap]

    def close(self) -> None:
        """Close pooled connections."""
        try:
            self._session.close()
        except Exception:  # closing must never raise into shutdown
            logger.debug("error closing HTTP session", exc_info=True)


def _redact_credentials(exc: requests.RequestException) -> None:
    """Replace the failed request that ``exc`` carries by a copy without the write key.

    requests attaches the PreparedRequest, Authorization header included, to its
    connection and timeout errors; ``on_error`` receives the exception.
    """
    request = getattr(exc, "request", None)
    if isinstance(request, requests.PreparedRequest) and "Authorization" in request.headers:
        redacted = request.copy()
        redacted.headers["Authorization"] = "<redacted>"
        exc.request = redacted



def _timed_out(seconds: float, cause: Optional[BaseException] = None) -> requests.Timeout:
    """The exception of an attempt that outlived its whole-attempt deadline."""
    exc = requests.exceptions.ReadTimeout(f"no complete answer within {seconds:g} s")
    exc.__cause__ = cause
    return exc


def _failure_kind(exc: BaseException) -> str:
    """Name what stopped a request, mapping requests' own types before the stdlib's."""
    if isinstance(exc, requests.Timeout):
        return Failure.TIMEOUT
    if isinstance(exc, requests.exceptions.ProxyError):
        return Failure.PROXY
    if isinstance(exc, requests.exceptions.SSLError):
        return Failure.TLS
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):  # body cut short
        return Failure.RESET
    return failure_of(exc)
