"""Batching, the wire format, every answer class, flush, shutdown and stats."""

from __future__ import annotations

import base64
import gzip
import threading
import time
from typing import Any, Callable

import pytest

from rudder_analytics import Client, ConfigurationError, DeliveryError, HTTPStatusError
from rudder_analytics._sync.transport import USER_AGENT
from rudder_analytics.devserver import DevServer

from .conftest import WRITE_KEY

Make = Callable[..., Client]


def batch_posts(server: DevServer) -> list[Any]:
    return [r for r in server.requests() if r.path == "/v1/batch"]


def test_request_headers_and_gzip(make_client: Make, dataplane: DevServer) -> None:
    """POST /v1/batch with Basic auth (key, empty password), JSON, our User-Agent, gzip."""
    client = make_client()
    client.track(user_id="u", event="E")
    assert client.flush(timeout=10)
    [request] = batch_posts(dataplane)
    assert request.method == "POST"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(
        f"{WRITE_KEY}:".encode()).decode()
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.raw_size < len(request.body)  # what went on the wire was compressed


def test_gzip_off_sends_plain_json(make_client: Make, dataplane: DevServer) -> None:
    """gzip=False sends the body uncompressed, without Content-Encoding."""
    client = make_client(gzip=False)
    client.track(user_id="u", event="E")
    assert client.flush(timeout=10)
    [request] = batch_posts(dataplane)
    assert request.headers.get("Content-Encoding") is None
    assert request.raw_size == len(request.body)
    assert request.json()["batch"][0]["event"] == "E"


def test_body_is_built_without_reencoding() -> None:
    """build_body splices sentAt into stored bytes and yields valid JSON of exact size."""
    from rudder_analytics._build.encoding import (
            body_overhead,
            build_body,
            encode_message,
            message_overhead,
        )

    stored = [encode_message({"type": "track", "n": i}, 1000) for i in range(3)]
    body = build_body(stored, "2026-01-01T00:00:00.000+00:00")
    assert len(body) == body_overhead() + sum(len(m) + message_overhead() for m in stored) - 1
    import json

    decoded = json.loads(body)["batch"]
    assert [m["n"] for m in decoded] == [0, 1, 2]
    assert all(m["sentAt"] == "2026-01-01T00:00:00.000+00:00" for m in decoded)
    assert gzip.decompress(gzip.compress(body)) == body


def test_batches_by_count(make_client: Make, dataplane: DevServer) -> None:
    """upload_size bounds the events per request."""
    client = make_client(upload_size=10, upload_interval=5.0)
    for i in range(35):
        client.track(user_id="u", event=f"E{i}")
    assert client.flush(timeout=10)
    sizes = [len(r.json()["batch"]) for r in batch_posts(dataplane)]
    assert sum(sizes) == 35 and max(sizes) == 10
    assert [e["event"] for e in dataplane.events()] == [f"E{i}" for i in range(35)]


def test_batches_by_bytes(make_client: Make, dataplane: DevServer) -> None:
    """upload_bytes bounds each request body, checked before a message is added."""
    client = make_client(upload_bytes=5_000, upload_interval=5.0)
    for _ in range(20):
        client.track(user_id="u", event="E", properties={"pad": "x" * 900})
    assert client.flush(timeout=10)
    posts = batch_posts(dataplane)
    assert len(posts) > 1
    assert all(len(r.body) <= 5_000 for r in posts)
    assert sum(len(r.json()["batch"]) for r in posts) == 20


def test_batches_by_time(make_client: Make, dataplane: DevServer) -> None:
    """A partial batch goes out upload_interval after its first event, without flush."""
    client = make_client(upload_interval=0.2, upload_size=100)
    client.track(user_id="u", event="E")
    assert dataplane.wait_for_events(1, timeout=10)
    assert len(batch_posts(dataplane)) == 1


def test_flush_sends_partial_batch_at_once(make_client: Make, dataplane: DevServer) -> None:
    """flush() does not wait for upload_interval."""
    client = make_client(upload_interval=60.0)
    client.track(user_id="u", event="E")
    assert client.flush(timeout=10)
    assert dataplane.count() == 1


@pytest.mark.parametrize("status", [400, 401, 404])
def test_final_status_drops_batch_without_retry(make_client: Make, dataplane: DevServer,
                                                status: int) -> None:
    """400/401/404 drop the batch at once: one request, counted, on_error called once."""
    errors: list[tuple[DeliveryError, list[dict[str, Any]]]] = []
    client = make_client(on_error=lambda error, batch: errors.append((error, batch)))
    dataplane.fail_next(1, status=status)
    client.track(user_id="u", event="E")
    assert not client.flush(timeout=10)
    assert len(batch_posts(dataplane)) == 1
    stats = client.stats()
    assert stats["dropped"]["rejected"] == 1 and stats["retries"] == 0
    [(error, batch)] = errors
    assert isinstance(error, HTTPStatusError) and error.status_code == status
    assert batch[0]["event"] == "E"


def test_unknown_write_key_is_401(make_client: Make, dataplane: DevServer) -> None:
    """A wrong write key is rejected by the server and reported, never retried."""
    errors: list[Any] = []
    client = make_client(write_key="wrong", on_error=lambda e, b: errors.append(e.status_code))
    client.track(user_id="u", event="E")
    assert not client.flush(timeout=10)
    assert errors == [401]


def test_disabled_source_is_404(make_client: Make, dataplane: DevServer) -> None:
    """A disabled source (404) is final."""
    errors: list[Any] = []
    client = make_client(write_key="disabled-key",
                         on_error=lambda e, b: errors.append(e.status_code))
    client.track(user_id="u", event="E")
    assert not client.flush(timeout=10)
    assert errors == [404]


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_status_is_retried(make_client: Make, dataplane: DevServer,
                                     status: int) -> None:
    """429 and 5xx are retried until the data plane accepts the batch."""
    dataplane.fail_next(2, status=status)
    client = make_client()
    client.track(user_id="u", event="E")
    assert client.flush(timeout=10)
    assert dataplane.count() == 1
    assert client.stats()["retries"] == 2
    assert len(batch_posts(dataplane)) == 3


def test_retry_after_is_obeyed(make_client: Make, dataplane: DevServer) -> None:
    """After 429 with Retry-After: 1, the next request comes no earlier than 1 s later."""
    dataplane.fail_next(1, status=429, retry_after=1)
    client = make_client()
    client.track(user_id="u", event="E")
    assert client.flush(timeout=10)
    first, second = batch_posts(dataplane)
    assert second.received_at - first.received_at >= 1.0


def test_sent_at_refreshed_message_id_kept_on_retry(make_client: Make,
                                                    dataplane: DevServer) -> None:
    """A retry carries the same messageId and a fresh sentAt."""
    dataplane.fail_next(1, status=503, retry_after=0.05)
    client = make_client()
    client.track(user_id="u", event="E")
    assert client.flush(timeout=10)
    first, second = (r.json()["batch"][0] for r in batch_posts(dataplane))
    assert first["messageId"] == second["messageId"]
    assert second["sentAt"] > first["sentAt"]


def test_connection_reset_is_retried(make_client: Make, dataplane: DevServer) -> None:
    """A connection closed before any answer is retried; the event arrives once."""
    dataplane.drop_next(2)
    client = make_client()
    client.track(user_id="u", event="E")
    assert client.flush(timeout=10)
    assert dataplane.count() == 1


def test_lost_response_duplicates_with_same_id(make_client: Make, dataplane: DevServer) -> None:
    """Stored but unanswered: the retry stores a duplicate with the same messageId."""
    dataplane.store_then_drop_next(1)
    client = make_client()
    _, message = client.track(user_id="u", event="E")
    assert client.flush(timeout=10)
    events = dataplane.events()
    assert len(events) == 2
    assert {e["messageId"] for e in events} == {message["messageId"]}


def test_read_timeout_is_retried(make_client: Make, dataplane: DevServer) -> None:
    """A server that hangs past the timeout is retried and the event delivered."""
    dataplane.hang_next(1, seconds=5)
    client = make_client(timeout=0.5)
    client.track(user_id="u", event="E")
    assert client.flush(timeout=10)
    assert dataplane.count() == 1


def test_413_splits_and_drops_only_the_oversized(make_client: Make) -> None:
    """On 413 the batch is halved; only a message too large alone is dropped."""
    with DevServer(write_keys=(WRITE_KEY,), max_request_bytes=3_000) as server:
        dropped: list[tuple[str, int]] = []
        client = make_client(data_plane_url=server.url, upload_interval=5.0,
                             on_drop=lambda reason, msgs: dropped.append((reason, len(msgs))))
        for i in range(8):
            client.track(user_id="u", event=f"small{i}", properties={"pad": "x" * 200})
        client.track(user_id="u", event="huge", properties={"pad": "x" * 5_000})
        assert not client.flush(timeout=10)
        events = {e["event"] for e in server.events()}
        assert events == {f"small{i}" for i in range(8)}
        assert dropped == [("too_large", 1)]
        assert client.stats()["dropped"]["too_large"] == 1


def test_retries_exhausted(make_client: Make, dataplane: DevServer) -> None:
    """After max_retries the batch is dropped and reported with the attempts made."""
    errors: list[Any] = []
    client = make_client(max_retries=2, on_error=lambda e, b: errors.append(e))
    dataplane.fail_next(10, status=500)
    client.track(user_id="u", event="E")
    assert not client.flush(timeout=10)
    assert len(batch_posts(dataplane)) == 3
    assert client.stats()["dropped"]["retries_exhausted"] == 1
    assert errors[0].attempts == 3 and errors[0].status_code == 500


def test_seed_four_argument_on_error(make_client: Make, dataplane: DevServer) -> None:
    """on_error(status, body, exception, response) is called as the seed SDK does."""
    calls: list[tuple[Any, ...]] = []

    def on_error(status: Any, body: Any, exception: Any, response: Any) -> None:
        calls.append((status, body, exception, response))

    client = make_client(on_error=on_error)
    dataplane.fail_next(1, status=400, body="invalid json")
    client.track(user_id="u", event="E")
    client.flush(timeout=10)
    [(status, body, exception, response)] = calls
    assert status == 400 and body.strip() == "invalid json"
    assert isinstance(exception, HTTPStatusError) and response.status_code == 400


def test_on_error_exception_is_contained(make_client: Make, dataplane: DevServer) -> None:
    """A raising on_error is logged; the worker lives on and delivers later events."""
    def on_error(error: Any, batch: Any) -> None:
        raise RuntimeError("callback bug")

    client = make_client(on_error=on_error)
    dataplane.fail_next(1, status=400)
    client.track(user_id="u", event="first")
    client.flush(timeout=10)
    client.track(user_id="u", event="second")
    assert client.flush(timeout=10)
    assert [e["event"] for e in dataplane.events()] == ["second"]


def test_queue_full_accounting(make_client: Make, dataplane: DevServer) -> None:
    """A put on a full queue never blocks: it returns False, counts, and calls on_drop."""
    drops: list[str] = []
    dataplane.hang_next(1, seconds=3)
    client = make_client(max_queue_size=5, upload_size=1, timeout=5.0,
                         on_drop=lambda reason, msgs: drops.append(reason))
    results = [client.track(user_id="u", event=f"E{i}")[0] for i in range(30)]
    assert results.count(False) >= 30 - 5 - 1
    stats = client.stats()
    assert stats["dropped"]["queue_full"] == results.count(False)
    assert client.flush(timeout=10) is False  # events were dropped; callbacks have run
    assert drops.count("queue_full") == results.count(False)
    assert stats["enqueued"] == results.count(True)


def test_queue_bounded_by_bytes(make_client: Make, dataplane: DevServer) -> None:
    """max_queue_bytes bounds the queue too."""
    dataplane.hang_next(1, seconds=3)
    client = make_client(max_queue_bytes=20_000, upload_size=1, timeout=5.0)
    results = [client.track(user_id="u", event="E", properties={"p": "x" * 1000})[0]
               for _ in range(50)]
    assert 0 < results.count(True) < 30
    assert client.stats()["queue_bytes"] <= 20_000


def test_flush_deadline_against_hanging_server(make_client: Make, dataplane: DevServer) -> None:
    """flush(timeout) returns False by its deadline when the server hangs."""
    dataplane.hang_next(5, seconds=10)
    client = make_client(timeout=8.0)
    client.track(user_id="u", event="E")
    started = time.monotonic()
    assert client.flush(timeout=0.5) is False
    assert time.monotonic() - started < 2.0


def test_shutdown_deadline_against_hanging_server(make_client: Make,
                                                  dataplane: DevServer) -> None:
    """shutdown(timeout) returns by its deadline and reports what was not delivered."""
    dataplane.hang_next(5, seconds=10)
    client = make_client(timeout=8.0)
    for _ in range(3):
        client.track(user_id="u", event="E")
    started = time.monotonic()
    assert client.shutdown(timeout=0.5) is False
    assert time.monotonic() - started < 2.0
    assert client.not_delivered == 3


def test_shutdown_is_idempotent_and_refuses_later_calls(make_client: Make,
                                                        dataplane: DevServer) -> None:
    """shutdown twice is fine; calls after it return False and are counted."""
    client = make_client()
    client.track(user_id="u", event="E")
    assert client.shutdown(timeout=10)
    assert client.shutdown(timeout=10)
    ok, _ = client.track(user_id="u", event="late")
    assert not ok
    assert client.stats()["dropped"]["after_shutdown"] == 1
    assert dataplane.count() == 1


def test_retry_wait_is_cut_short_by_shutdown(make_client: Make, dataplane: DevServer) -> None:
    """A long backoff wait ends at once when shutdown's deadline comes."""
    dataplane.fail_next(1, status=429, retry_after=30)
    client = make_client()
    client.track(user_id="u", event="E")
    assert dataplane.wait_for_requests(1, timeout=10)
    started = time.monotonic()
    assert client.shutdown(timeout=0.3) is False
    assert time.monotonic() - started < 2.0
    assert client.stats()["dropped"]["shutdown"] == 1


def test_context_manager_shuts_down(dataplane: DevServer) -> None:
    """Leaving `with Client(...)` delivers and shuts down."""
    with Client(WRITE_KEY, dataplane.url, atexit=False, upload_interval=30) as client:
        client.track(user_id="u", event="E")
    assert client.closed
    assert dataplane.count() == 1


def test_concurrent_producers_exactly_once(make_client: Make, dataplane: DevServer) -> None:
    """8 producer threads x 10,000 events: every event stored exactly once."""
    client = make_client(max_queue_size=100_000)
    start = threading.Event()

    def produce(thread: int) -> None:
        start.wait(10)
        for i in range(10_000):
            assert client.track(user_id=f"t{thread}", event="E", message_id=f"{thread}-{i}")[0]

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join(60)
    assert client.flush(timeout=60)
    ids = [e["messageId"] for e in dataplane.events()]
    assert len(ids) == 80_000 and len(set(ids)) == 80_000
    stats = client.stats()
    assert stats["delivered"] == stats["enqueued"] == 80_000


def test_several_workers(make_client: Make, dataplane: DevServer) -> None:
    """thread=3 delivers everything and all three stop at shutdown."""
    client = make_client(thread=3, upload_size=10)
    for i in range(300):
        client.track(user_id="u", event="E", message_id=str(i))
    assert client.flush(timeout=20)
    assert client.shutdown(timeout=10)
    assert dataplane.count() == 300
    assert not any(t.name.startswith("rudder-analytics-worker") and t.is_alive()
                   for t in threading.enumerate() if t.ident in {
                       w.ident for w in client._pool._threads})


def test_stats_counts(make_client: Make, dataplane: DevServer) -> None:
    """stats() reports enqueued, delivered, requests, bytes, retries and the last error."""
    dataplane.fail_next(1, status=503)
    client = make_client()
    for _ in range(5):
        client.track(user_id="u", event="E")
    assert client.flush(timeout=10)
    stats = client.stats()
    assert stats["enqueued"] == 5 and stats["delivered"] == 5
    assert stats["requests"] == 2 and stats["failed_requests"] == 1 and stats["retries"] == 1
    assert stats["bytes_sent"] > 0 and stats["queue_depth"] == 0
    assert stats["last_error"] is not None and "503" in stats["last_error"]
    assert stats["dropped_total"] == 0


def test_send_false_builds_without_queueing(dataplane: DevServer) -> None:
    """send=False validates and returns the message but sends nothing."""
    client = Client(WRITE_KEY, dataplane.url, send=False, atexit=False)
    ok, message = client.track(user_id="u", event="E")
    assert ok and message["event"] == "E"
    assert client.flush(timeout=1)
    assert dataplane.count() == 0 and client.stats()["enqueued"] == 0


@pytest.mark.parametrize("url", ["localhost:8080", "ftp://x", "", "http://"])
def test_bad_url_is_a_configuration_error(url: str) -> None:
    """A URL without http(s) scheme or host fails at construction, not in a retry loop."""
    with pytest.raises(ConfigurationError):
        Client("k", url, atexit=False)


def test_trailing_slash_and_aliases(dataplane: DevServer) -> None:
    """A trailing slash is fine; host= and dataPlaneUrl= are accepted as aliases."""
    for client in (Client(WRITE_KEY, dataplane.url + "/", atexit=False),
                   Client(WRITE_KEY, host=dataplane.url, atexit=False),
                   Client(WRITE_KEY, dataPlaneUrl=dataplane.url, atexit=False)):
        client.track(user_id="u", event="E")
        assert client.shutdown(timeout=10)
    assert dataplane.count() == 3


def test_unknown_option_suggests(dataplane: DevServer) -> None:
    """A misspelt option is refused with a suggestion."""
    with pytest.raises(ConfigurationError, match="upload_size"):
        Client(WRITE_KEY, dataplane.url, upload_sise=10)


def test_put_racing_shutdown_is_counted(make_client: Make, dataplane: DevServer) -> None:
    """A call that passed the closed check just before shutdown drained the queue is
    refused and counted as after_shutdown, not stranded in a closed queue."""
    client = make_client()
    client.track(user_id="u", event="E")
    assert client.shutdown(timeout=10)
    client._closed = False  # as if this call had checked just before shutdown closed it
    ok, _ = client.track(user_id="u", event="late")
    assert not ok
    stats = client.stats()
    assert stats["dropped"]["after_shutdown"] == 1 and stats["queue_depth"] == 0


def test_dropped_client_delivers_then_its_workers_exit(dataplane: DevServer) -> None:
    """A client collected without shutdown() is not kept alive by the SDK's hooks: its
    workers deliver what was queued, then exit (no leaked thread)."""
    import gc
    import weakref

    client = Client(WRITE_KEY, dataplane.url, upload_interval=30, atexit=False)
    for i in range(250):
        client.track(user_id="u", event="E", message_id=str(i))
    workers = list(client._pool._threads)
    assert workers and all(t.is_alive() for t in workers)
    collected = weakref.ref(client)
    del client
    gc.collect()
    assert collected() is None  # nothing in the SDK holds the client
    assert dataplane.wait_for_events(250, timeout=10)
    for thread in workers:
        thread.join(10)
    assert not any(t.is_alive() for t in workers)
