"""The asyncio API against a real local data plane (and a raw socket server for the bytes).

Behaviour only, no timings: aflush/ashutdown/asend/async blocks deliver; they work
with the loop's default executor saturated and across successive asyncio.run()
calls; ashutdown is bounded when the data plane hangs; cancelling a wait leaves
the events queued; the httpx transport never follows redirects and caps answers;
without httpx the same methods work through the worker threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest

import rudder_analytics
from rudder_analytics import Client
from rudder_analytics._async.result import CallResult
from rudder_analytics._sync.transport import USER_AGENT
from rudder_analytics.devserver import DevServer

from .conftest import FAST, WRITE_KEY
from .helpers_reliability import last_json_line, run_script

Make = Callable[..., Client]


def test_aflush_delivers_what_is_queued(make_client: Make, dataplane: DevServer) -> None:
    """await aflush() returns True once every queued event is stored."""
    client = make_client(upload_interval=30.0)

    async def main() -> bool:
        for i in range(250):
            client.track(user_id="u", event=f"E{i}")
        return await client.aflush(timeout=10)

    assert asyncio.run(main()) is True
    assert dataplane.count() == 250



def test_aflush_reports_drops_as_flush_does(make_client: Make, dataplane: DevServer) -> None:
    """aflush() is False when an event was dropped since the previous flush, then True."""
    client = make_client()
    dataplane.fail_next(1, status=400)

    async def main() -> tuple[bool, bool]:
        client.track(user_id="u", event="Rejected")
        first = await client.aflush(timeout=10)
        client.track(user_id="u", event="Stored")
        return first, await client.aflush(timeout=10)

    assert asyncio.run(main()) == (False, True)
    assert client.stats()["dropped"]["rejected"] == 1 and dataplane.count() == 1

def test_await_on_an_event_call_is_a_type_error(make_client: Make,
                                                dataplane: DevServer) -> None:
    """`await client.track(...)` raises TypeError at once (the event itself was queued)."""
    client = make_client()

    async def main() -> Any:
        with pytest.raises(TypeError) as caught:
            await client.track(user_id="u", event="Awaited")  # type: ignore[misc]
        return caught.value

    error = asyncio.run(main())
    assert client.flush(timeout=10) and dataplane.count() == 1
    assert isinstance(client.track(user_id="u", event="probe"), CallResult)
    assert "synchronous" in str(error) and "aflush" in str(error)


def test_aflush_completes_with_the_default_executor_saturated(make_client: Make,
                                                              dataplane: DevServer) -> None:
    """aflush() needs no executor thread: it completes while every one of them is blocked."""
    client = make_client(upload_interval=30.0)
    release = threading.Event()

    async def main() -> bool:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=2))
        blockers = [loop.run_in_executor(None, release.wait) for _ in range(4)]
        for i in range(100):
            client.track(user_id="u", event=f"E{i}")
        try:
            return await client.aflush(timeout=10)
        finally:
            release.set()
            await asyncio.gather(*blockers)

    assert asyncio.run(main()) is True
    assert dataplane.count() == 100


def test_one_client_across_three_asyncio_runs(make_client: Make, dataplane: DevServer) -> None:
    """The same client flushes and sends batches under three successive event loops."""
    client = make_client(upload_interval=30.0)

    async def one_round(n: int) -> tuple[bool, bool]:
        client.track(user_id="u", event=f"queued-{n}")
        flushed = await client.aflush(timeout=10)
        async with client.batch() as batch:
            batch.track(user_id="u", event=f"batch-{n}")
        return flushed, bool(batch.result and batch.result.ok)

    for n in range(3):
        assert asyncio.run(one_round(n)) == (True, True)
    assert dataplane.count() == 6


def test_ashutdown_is_bounded_when_the_data_plane_hangs(make_client: Make,
                                                        dataplane: DevServer) -> None:
    """ashutdown(t) returns False within t plus a margin while every request hangs."""
    client = make_client(timeout=30.0)
    dataplane.hang_next(50, seconds=30.0)
    client.track(user_id="u", event="E")
    assert dataplane.wait_for_requests(1, timeout=10)

    async def main() -> tuple[bool, float]:
        started = time.monotonic()
        ok = await client.ashutdown(timeout=1.0)
        return ok, time.monotonic() - started

    ok, elapsed = asyncio.run(main())
    assert ok is False and client.closed
    assert elapsed < 1.0 + 5.0  # generous: the bound under test is t + 1 s


def test_cancelled_aflush_leaves_events_queued(make_client: Make, dataplane: DevServer) -> None:
    """Cancelling aflush abandons the wait only: the events are still delivered later."""
    client = make_client(upload_interval=30.0, retry_base_delay=0.3, retry_max_delay=0.3)
    dataplane.fail_next(3, status=503)

    async def main() -> None:
        for i in range(20):
            client.track(user_id="u", event=f"E{i}")
        task = asyncio.ensure_future(client.aflush(timeout=30))
        await asyncio.sleep(0.05)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert client.stats()["dropped_total"] == 0
    assert client.flush(timeout=15)
    assert dataplane.count() == 20


def test_asend_delivers_through_httpx(make_client: Make, dataplane: DevServer) -> None:
    """asend() posts the batch itself: our headers, gzip, message ids kept, one request."""
    client = make_client()
    batch = client.batch()
    ids = [batch.track(user_id="u", event=f"E{i}")["messageId"] for i in range(5)]
    result = asyncio.run(client.asend(batch))
    assert result.ok and result.delivered == 5 and batch.result is result
    [request] = [r for r in dataplane.requests() if r.path == "/v1/batch"]
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["Content-Encoding"] == "gzip"
    assert [e["messageId"] for e in dataplane.events()] == ids
    assert client.stats()["delivered"] == 5


def test_async_batch_block_retries_and_splits() -> None:
    """The async driver retries a 503 and halves a body the server refuses with 413."""
    with DevServer(write_keys=(WRITE_KEY,), max_request_bytes=6_000) as server:
        client = Client(WRITE_KEY, server.url, **FAST)
        server.fail_next(1, status=503)

        async def main() -> Any:
            async with client.batch() as batch:
                for i in range(10):
                    batch.track(user_id="u", event=f"E{i}", properties={"pad": "x" * 900})
            return batch.result

        result = asyncio.run(main())
        client.shutdown(timeout=2)
        assert result.ok and result.delivered == 10
        assert sorted(e["event"] for e in server.events()) == sorted(f"E{i}" for i in range(10))
        assert [r.status for r in server.requests()].count(413) >= 1


def test_async_with_client_shuts_down(dataplane: DevServer) -> None:
    """Leaving `async with Client(...)` delivers what is queued and closes the client."""
    async def main() -> Client:
        async with Client(WRITE_KEY, dataplane.url, **{**FAST, "upload_interval": 30.0}) as c:
            c.track(user_id="u", event="E")
        return c

    client = asyncio.run(main())
    assert client.closed and dataplane.count() == 1


def test_module_level_aflush_and_ashutdown(dataplane: DevServer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """rudder_analytics.aflush()/ashutdown() act on the default client."""
    monkeypatch.setenv("RUDDER_WRITE_KEY", WRITE_KEY)
    monkeypatch.setenv("RUDDER_DATA_PLANE_URL", dataplane.url)
    rudder_analytics.default_client = Client(WRITE_KEY, dataplane.url, **FAST)

    async def main() -> tuple[bool, bool]:
        rudder_analytics.track(user_id="u", event="E")
        flushed = await rudder_analytics.aflush(timeout=10)
        rudder_analytics.track(user_id="u", event="F")
        return flushed, await rudder_analytics.ashutdown(timeout=5)

    try:
        assert asyncio.run(main()) == (True, True)
        assert dataplane.count() == 2
    finally:
        rudder_analytics.default_client = None


# --- the bytes: a raw socket server ------------------------------------------------------


class RawServer:
    """Answers every request with fixed bytes, recording each request line."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.request_lines: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2.0)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        data += conn.recv(65536)
                    head, _, rest = data.partition(b"\r\n\r\n")
                    length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                                       if line.lower().startswith(b"content-length")), b"0"))
                    while len(rest) < length:
                        rest += conn.recv(65536)
                    self.request_lines.append(head.split(b"\r\n")[0].decode())
                    conn.sendall(self.answer)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[bytes], RawServer]]:
    servers: list[RawServer] = []

    def make(answer: bytes) -> RawServer:
        server = RawServer(answer)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def test_asend_does_not_follow_a_redirect(raw_server: Callable[[bytes], RawServer]) -> None:
    """A 307 is a rejection naming its Location: no second request, no body-less GET."""
    server = raw_server(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:9/x"
                        b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    client = Client(WRITE_KEY, server.url, **FAST)
    batch = client.batch()
    batch.track(user_id="u", event="E")
    result = asyncio.run(client.asend(batch))
    client.shutdown(timeout=1)
    assert not result.ok and result.failed == 1
    assert server.request_lines == ["POST /v1/batch HTTP/1.1"]
    assert "http://127.0.0.1:9/x" in str(result.first_error())
    assert client.stats()["dropped"]["rejected"] == 1


def test_asend_reads_at_most_max_response_bytes(raw_server: Callable[[bytes], RawServer]
                                                ) -> None:
    """A huge answer body is cut at max_response_bytes."""
    body = b"y" * 200_000
    server = raw_server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n"
                        b"Connection: close\r\n\r\n" % len(body) + body)
    client = Client(WRITE_KEY, server.url, max_response_bytes=1000, **FAST)
    batch = client.batch()
    batch.track(user_id="u", event="E")
    result = asyncio.run(client.asend(batch))
    client.shutdown(timeout=1)
    assert result.requests[0].status_code == 400
    assert len(result.requests[0].body) == 1000


def test_retry_after_date_is_read_against_the_answers_date(
        raw_server: Callable[[bytes], RawServer]) -> None:
    """Retry-After as an HTTP date counts from the answer's Date header, not the local clock:
    a date 1 hour after the server's Date is a 1 hour hold (beyond sync_deadline: not sent
    again)."""
    server = raw_server(b"HTTP/1.1 503 Service Unavailable\r\n"
                        b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                        b"Retry-After: Sun, 06 Nov 1994 09:49:37 GMT\r\n"
                        b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    client = Client(WRITE_KEY, server.url, sync_deadline=5.0, **FAST)
    batch = client.batch()
    batch.track(user_id="u", event="E")
    started = time.monotonic()
    result = asyncio.run(client.asend(batch))
    client.shutdown(timeout=1)
    assert time.monotonic() - started < 5.0  # it gave up at once instead of retrying
    assert not result.ok and len(server.request_lines) == 1
    error = result.first_error()
    assert getattr(getattr(error, "last_error", None), "retry_after", None) == 3600.0



def test_cancelled_asend_counts_the_batch_and_propagates() -> None:
    """Cancelling asend() while its request hangs raises CancelledError and counts the
    batch as dropped (shutdown): nothing is left unaccounted."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)  # the kernel accepts; nobody ever answers
    try:
        client = Client(WRITE_KEY, f"http://127.0.0.1:{listener.getsockname()[1]}",
                        **{**FAST, "timeout": 30.0})
        batch = client.batch()
        batch.track(user_id="u", event="E")

        async def main() -> None:
            task = asyncio.ensure_future(client.asend(batch))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        assert client.stats()["dropped"]["shutdown"] == 1
        client.shutdown(timeout=1)
    finally:
        listener.close()

# --- without the async extra --------------------------------------------------------------

_NO_HTTPX = r"""
import asyncio, json, sys
sys.modules["httpx"] = None  # import httpx now raises ImportError
from rudder_analytics import Client
from rudder_analytics._async.transport import httpx_available
from rudder_analytics.devserver import DevServer

with DevServer(write_keys=("k",)) as server:
    client = Client("k", server.url, upload_interval=30.0, atexit=False)

    async def main():
        for i in range(30):
            client.track(user_id="u", event=f"E{i}")
        flushed = await client.aflush(timeout=10)
        async with client.batch() as batch:
            batch.track(user_id="u", event="B")
        sent = await client.asend(client.batch())
        return flushed, batch.result.delivered, sent.ok, await client.ashutdown(timeout=5)

    flushed, delivered, empty_ok, closed = asyncio.run(main())
    print(json.dumps({"httpx": httpx_available(), "flushed": flushed, "batch": delivered,
                      "empty_ok": empty_ok, "closed": closed, "stored": server.count()}))
"""


def test_async_methods_work_without_httpx() -> None:
    """With httpx unimportable, aflush/ashutdown/async batches work through the workers."""
    result = run_script(_NO_HTTPX, timeout=60)
    assert result.returncode == 0, result.stderr
    report = last_json_line(result.stdout)
    assert report == {"httpx": False, "flushed": True, "batch": 1, "empty_ok": True,
                      "closed": True, "stored": 31}



def test_asend_honours_the_workers_retry_after_hold(make_client: Make,
                                                    dataplane: DevServer) -> None:
    """A Retry-After the workers read holds back an asyncio batch send too: one hold per
    client, whichever path reads it."""
    dataplane.fail_next(1, status=429, retry_after="2")
    client = make_client()
    client.track(user_id="u", event="From Worker")
    assert dataplane.wait_for_requests(1, timeout=10)
    batch = client.batch()
    batch.track(user_id="u", event="From Loop")
    result = asyncio.run(client.asend(batch))
    assert result.ok
    records = dataplane.requests()
    first = records[0].received_at
    loop_sent = [r.received_at for r in records[1:]
                 if b"From Loop" in (r.body or b"")]
    assert loop_sent and loop_sent[0] >= first + 2.0 - 0.05
