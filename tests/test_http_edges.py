"""HTTP at the edges: the faults are in the bytes, so a raw socket server on 127.0.0.1 writes
them (redirects, trickled headers and bodies, Retry-After dates against a skewed clock, JSON
error bodies); the dev server plays the normal answers.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable, Optional

import pytest
import requests

from rudder_analytics import Client, DeliveryError, HTTPStatusError, RetriesExhaustedError
from rudder_analytics.devserver import DevServer
from tests.conftest import FAST, WRITE_KEY

Handler = Callable[["RawServer", socket.socket, int], None]
"""Answers one request on a connection: (server, connection, request number from 0)."""

LIFETIME = 12.0
"""No raw-server thread lives longer than this, whatever the client does."""


class RawServer:
    """A loopback HTTP/1.1 server that writes whatever bytes its handler chooses.

    Each connection is served on its own thread; requests are read whole (headers and
    ``Content-Length`` body) and logged with their arrival time, then the handler answers.
    Everything stops at :meth:`close` or after :data:`LIFETIME` seconds.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, str, float]] = []
        """``(method, path, monotonic arrival)`` of every request read."""
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._born = time.monotonic()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def expired(self) -> bool:
        """True once the server must stop writing."""
        return self.stop.is_set() or time.monotonic() - self._born > LIFETIME

    def _accept(self) -> None:
        while not self.expired():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        buffered = b""
        with conn:
            while not self.expired():
                request, buffered = self._read_request(conn, buffered)
                if request is None:
                    return
                with self._lock:
                    number = len(self.requests)
                    self.requests.append((*request, time.monotonic()))
                try:
                    self.handler(self, conn, number)
                except OSError:
                    return

    def _read_request(
        self, conn: socket.socket, buffered: bytes
    ) -> tuple[Optional[tuple[str, str]], bytes]:
        while b"\r\n\r\n" not in buffered:
            chunk = self._recv(conn)
            if not chunk:
                return None, b""
            buffered += chunk
        head, buffered = buffered.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ")[:2]
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        while len(buffered) < length:
            chunk = self._recv(conn)
            if not chunk:
                return None, b""
            buffered += chunk
        return (method, path), buffered[length:]

    def _recv(self, conn: socket.socket) -> bytes:
        while not self.expired():
            try:
                return conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return b""
        return b""

    def trickle(self, conn: socket.socket, data: bytes, interval: float = 0.5) -> None:
        """Send ``data`` one byte every ``interval`` seconds, until done or stopped."""
        for index in range(len(data)):
            if self.stop.wait(interval) or self.expired():
                return
            conn.sendall(data[index:index + 1])

    def close(self) -> None:
        self.stop.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(2.0)


@contextlib.contextmanager
def raw_server(handler: Handler) -> Iterator[RawServer]:
    server = RawServer(handler)
    try:
        yield server
    finally:
        server.close()


def answer(status: int, body: bytes = b"", **headers: str) -> bytes:
    """The bytes of a complete HTTP/1.1 answer."""
    lines = [f"HTTP/1.1 {status} Whatever"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def sync_client(url: str, **options: Any) -> Client:
    merged: dict[str, Any] = {**FAST, "sync_mode": True, "raise_on_error": True, **options}
    return Client(WRITE_KEY, url, **merged)


# --- redirects --------------------------------------------------------------------------


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirect_is_a_rejection_naming_the_location(code: int) -> None:
    """A 3xx answer to the POST is not followed and not counted as delivered: the batch is
    rejected at once with an error naming the Location."""

    def handler(server: RawServer, conn: socket.socket, number: int) -> None:
        conn.sendall(answer(code, Location=f"{server.url}/moved/v1/batch"))

    with raw_server(handler) as server:
        client = sync_client(server.url, max_retries=3)
        with pytest.raises(HTTPStatusError) as raised:
            client.track("u", "Redirected")
        stats = client.stats()
        client.shutdown(timeout=2)
        assert [(method, path) for method, path, _ in server.requests] == [("POST", "/v1/batch")]
    error = raised.value
    assert str(error) == (f"redirect {code} to {server.url}/moved/v1/batch "
                          "(not followed: set data_plane_url to the new base URL)")
    assert error.status_code == code and error.location == f"{server.url}/moved/v1/batch"
    assert stats["delivered"] == 0 and stats["dropped"]["rejected"] == 1


def test_redirect_from_a_worker_drops_the_batch_as_rejected() -> None:
    """In the background too, a 301 is one request, no GET, and a `rejected` drop."""

    def handler(server: RawServer, conn: socket.socket, number: int) -> None:
        conn.sendall(answer(301, Location="/elsewhere/v1/batch"))

    with raw_server(handler) as server:
        client = Client(WRITE_KEY, server.url, **{**FAST, "max_retries": 3})
        client.track("u", "Redirected")
        assert client.flush(timeout=10) is False
        stats = client.stats()
        client.shutdown(timeout=2)
        assert [method for method, _, _ in server.requests] == ["POST"]
    assert stats["delivered"] == 0 and stats["dropped"]["rejected"] == 1


# --- the whole-attempt timeout ----------------------------------------------------------


def test_trickled_headers_cannot_hold_an_attempt_past_its_timeout() -> None:
    """A data plane that sends its status line one byte every half second is cut off once
    `timeout` has passed for the whole attempt (requests alone would wait for minutes)."""

    def handler(server: RawServer, conn: socket.socket, number: int) -> None:
        server.trickle(conn, answer(200, b"ok"))

    with raw_server(handler) as server:
        client = sync_client(server.url, timeout=1.0, max_retries=0)
        started = time.monotonic()
        with pytest.raises(DeliveryError) as raised:
            client.track("u", "Trickled")
        elapsed = time.monotonic() - started
        client.shutdown(timeout=2)
    assert elapsed < 2.0, elapsed  # timeout plus one second
    assert f"timed out after 1 s waiting for 127.0.0.1:{server.port}" in str(raised.value)
    assert isinstance(raised.value.exception, requests.Timeout)


@pytest.mark.parametrize("framing", ["content-length", "until-close"])
def test_trickled_body_cannot_hold_a_worker_and_is_not_taken_as_delivered(
    framing: str,
) -> None:
    """Headers at once, then a body one byte every half second: the worker gives the attempt
    up by `timeout` plus one second, and a body cut short by that deadline never counts as an
    answer, even when only the connection's end would delimit it."""
    body = b"ok" + b" " * 40

    def handler(server: RawServer, conn: socket.socket, number: int) -> None:
        if framing == "content-length":
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        server.trickle(conn, body)
        raise OSError("close")  # end the connection (it delimits the until-close body)

    with raw_server(handler) as server:
        client = Client(WRITE_KEY, server.url, **{**FAST, "timeout": 1.0, "max_retries": 0})
        client.track("u", "Trickled Body")
        assert server_saw(server, 1)
        started = time.monotonic()
        flushed = client.flush(timeout=10)
        elapsed = time.monotonic() - started
        stats = client.stats()
        client.shutdown(timeout=2)
    assert flushed is False
    assert elapsed < 2.0, elapsed
    assert stats["delivered"] == 0 and stats["dropped"]["retries_exhausted"] == 1


def server_saw(server: RawServer, count: int, timeout: float = 5.0) -> bool:
    """Wait until the raw server has read ``count`` requests."""
    deadline = time.monotonic() + timeout
    while len(server.requests) < count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_one_watchdog_thread_whatever_the_number_of_requests(dataplane: DevServer) -> None:
    """The whole-attempt deadline starts no thread per request: after many requests from
    several threads there is one watchdog thread at most."""
    client = sync_client(dataplane.url)

    def send(count: int) -> None:
        for _ in range(count):
            client.track("u", "E")

    senders = [threading.Thread(target=send, args=(10,)) for _ in range(3)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(30)
    watchdogs = [t for t in threading.enumerate() if t.name == "rudder-analytics-watchdog"]
    client.shutdown(timeout=2)
    assert len(dataplane.events()) == 30
    assert len(watchdogs) == 1


# --- Retry-After as an HTTP date --------------------------------------------------------


@pytest.mark.parametrize("skew_days", [1, -1])
def test_retry_after_date_is_measured_against_the_answers_date(skew_days: int) -> None:
    """The server's clock is a day away from ours and it asks, by date, for 2 s: the client
    waits those 2 s (not a day, capped to an hour and dropped; not zero)."""

    def handler(server: RawServer, conn: socket.socket, number: int) -> None:
        if number == 0:
            server_now = int(time.time()) + skew_days * 86400
            conn.sendall(answer(
                503, b"busy",
                Date=email.utils.formatdate(server_now, usegmt=True),
                Retry_After=email.utils.formatdate(server_now + 2, usegmt=True),
            ))
        else:
            conn.sendall(answer(200, b"ok"))

    with raw_server(handler) as server:
        client = Client(WRITE_KEY, server.url, **FAST)
        client.track("u", "Skewed")
        assert client.flush(timeout=15)
        client.shutdown(timeout=2)
        arrivals = [at for _, _, at in server.requests]
    assert len(arrivals) == 2
    assert arrivals[1] - arrivals[0] >= 1.9  # HTTP dates have whole seconds


# --- Retry-After longer than the retry deadline -----------------------------------------


def test_retry_after_beyond_the_retry_deadline_keeps_the_batch(dataplane: DevServer) -> None:
    """A worker told to wait longer than what remains of retry_deadline keeps the batch and
    sends it after the hold, instead of dropping it unsent."""
    dataplane.fail_next(1, status=429, retry_after=2)
    client = Client(WRITE_KEY, dataplane.url, **{**FAST, "retry_deadline": 1.0})
    client.track("u", "Held")
    assert client.flush(timeout=15)
    stats = client.stats()
    client.shutdown(timeout=2)
    assert stats["delivered"] == 1 and stats["dropped_total"] == 0
    records = dataplane.requests()
    assert len(records) == 2 and records[1].received_at - records[0].received_at >= 2.0


def test_sync_send_fails_clearly_when_retry_after_outlasts_its_deadline(
    dataplane: DevServer,
) -> None:
    """Sync mode and batch blocks cannot keep a batch: the error says the data plane asked to
    wait N s, beyond the sync deadline, and the call does not wait for it."""
    client = sync_client(dataplane.url, sync_deadline=1.0)
    dataplane.fail_next(1, status=429, retry_after=5)
    started = time.monotonic()
    with pytest.raises(RetriesExhaustedError) as raised:
        client.track("u", "Held")
    assert time.monotonic() - started < 4.0
    assert "asked to wait 5 s (Retry-After), beyond the sync_deadline" in str(raised.value)
    # The hold stands: a batch block on the same client is not even sent.
    with pytest.raises(DeliveryError) as in_batch, client.batch() as batch:
        batch.track("u", "Held In A Batch")
    assert "not sent:" in str(in_batch.value) and "asked to wait" in str(in_batch.value)
    assert len(dataplane.requests()) == 1
    client.shutdown(timeout=2)


# --- the response given to on_error -----------------------------------------------------


@pytest.mark.parametrize("cap", [None, 10])
def test_seed_on_error_can_read_the_response_body(cap: Optional[int]) -> None:
    """The `response` handed to a four-argument on_error answers .text, .content and .json()
    with the body, cut at max_response_bytes (they raised "content already consumed")."""
    payload = {"error": "bad batch", "code": 42}
    text = json.dumps(payload)
    seen: list[Any] = []

    def on_error(status: Any, body: Any, exception: Any, response: Any) -> None:
        try:
            parsed = response.json() if cap is None else None
            seen.append((status, response.text, response.content, parsed))
        except Exception as exc:  # recorded: the assertion below shows it
            seen.append(exc)

    def handler(server: RawServer, conn: socket.socket, number: int) -> None:
        conn.sendall(answer(400, text.encode(), Content_Type="application/json"))

    options: dict[str, Any] = {**FAST, "on_error": on_error}
    if cap is not None:
        options["max_response_bytes"] = cap
    with raw_server(handler) as server:
        client = Client(WRITE_KEY, server.url, **options)
        client.track("u", "Refused")
        client.flush(timeout=10)
        client.shutdown(timeout=2)
    expected = text if cap is None else text[:cap]
    assert seen == [(400, expected, expected.encode(), payload if cap is None else None)]


# --- DNS --------------------------------------------------------------------------------


def _resolver_says_nxdomain() -> bool:
    try:
        socket.getaddrinfo("no-such-host.invalid", 80)
    except socket.gaierror as exc:
        return exc.errno == socket.EAI_NONAME
    return False


def test_unknown_host_fails_at_once() -> None:
    """A name that does not exist (`.invalid` never resolves, and fails locally) is rejected
    after one attempt, not retried as if it were a blip."""
    if not _resolver_says_nxdomain():
        pytest.skip("this machine's resolver does not answer NXDOMAIN for .invalid")
    client = sync_client("http://no-such-host.invalid", max_retries=5)
    with pytest.raises(DeliveryError) as raised:
        client.track("u", "Nowhere")
    stats = client.stats()
    client.shutdown(timeout=2)
    assert not isinstance(raised.value, RetriesExhaustedError)
    assert str(raised.value) == "unknown host no-such-host.invalid"
    assert stats["requests"] == 1 and stats["dropped"]["rejected"] == 1


def test_temporary_dns_failure_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """EAI_AGAIN (the resolver failed for now) is still retried like any network blip."""
    real = socket.getaddrinfo

    def flaky(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "flaky-dns.invalid":
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", flaky)
    client = sync_client("http://flaky-dns.invalid", max_retries=2)
    with pytest.raises(RetriesExhaustedError) as raised:
        client.track("u", "Flaky")
    client.shutdown(timeout=2)
    assert raised.value.attempts == 3
    assert "cannot resolve flaky-dns.invalid for now" in str(raised.value)
