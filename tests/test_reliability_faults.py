"""Delivery under data plane faults: nothing is lost, duplicates only where an answer was lost.

Each fault test sends a few thousand events from several producer threads through a real
client to the local data plane (real HTTP over loopback) while the data plane misbehaves
on purpose, then checks the store against the message ids the SDK handed out.
"""

from __future__ import annotations

import collections
import email.utils
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rudder_analytics import Client, DeliveryError, HTTPStatusError, RetriesExhaustedError
from rudder_analytics.devserver import DevServer
from tests.helpers_reliability import (
    FaultSpreader,
    assert_delivered_once,
    make_client,
    produce,
    request_ids,
    wait_until,
)

WRITE_KEY = "test-write-key"
THREADS = 4
PER_THREAD = 600  # 2,400 events per fault scenario


@pytest.fixture
def server() -> Iterator[DevServer]:
    """A local data plane for one test."""
    with DevServer(write_keys=(WRITE_KEY,), disabled_write_keys=("disabled-key",)) as srv:
        yield srv


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    """Clients registered here are shut down after the test."""
    made: list[Client] = []
    yield made
    for client in made:
        client.shutdown(timeout=2.0)


def _run_with_faults(
    server: DevServer, clients: list[Client], inject: Any, count: int, every: int,
    **options: Any,
) -> tuple[Client, list[str], FaultSpreader]:
    client = make_client(server.url, upload_size=50, thread=2, **options)
    clients.append(client)
    with FaultSpreader(server, inject, count=count, every=every) as spreader:
        sent = produce(client, threads=THREADS, per_thread=PER_THREAD)
        assert client.flush(timeout=60), client.stats()
    return client, sent, spreader


def _faulted(server: DevServer, kind: str) -> int:
    return sum(1 for r in server.requests() if r.fault == kind)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_are_retried_until_every_event_is_stored(
    server: DevServer, clients: list[Client], status: int
) -> None:
    """Random 5xx answers (30% of requests) are retried: every event stored exactly once."""
    server.fail_fraction(0.3, status=status, seed=status)
    client = make_client(server.url, upload_size=50, thread=2)
    clients.append(client)
    sent = produce(client, threads=THREADS, per_thread=PER_THREAD)
    assert client.flush(timeout=60), client.stats()
    assert _faulted(server, "fail") > 0
    assert_delivered_once(sent, server)
    stats = client.stats()
    assert stats["delivered"] == len(sent) and stats["dropped_total"] == 0
    assert stats["retries"] >= _faulted(server, "fail")


@pytest.mark.parametrize("retry_after", [None, 0.2], ids=["no-retry-after", "retry-after"])
def test_429_is_retried_with_and_without_retry_after(
    server: DevServer, clients: list[Client], retry_after: Any
) -> None:
    """429 answers, with or without Retry-After, are retried: every event stored once."""
    server.fail_fraction(0.25, status=429, retry_after=retry_after, seed=7)
    client = make_client(server.url, upload_size=50, thread=2)
    clients.append(client)
    sent = produce(client, threads=THREADS, per_thread=PER_THREAD)
    assert client.flush(timeout=90), client.stats()
    assert _faulted(server, "fail") > 0
    assert_delivered_once(sent, server)
    assert client.stats()["dropped_total"] == 0


def test_connection_reset_before_the_request_is_read(
    server: DevServer, clients: list[Client]
) -> None:
    """Connections closed before the body is read are retried: every event stored once."""
    client, sent, spreader = _run_with_faults(
        server, clients, lambda: server.drop_next(1), count=8, every=4
    )
    assert spreader.injected == 8 and _faulted(server, "drop") == 8
    assert_delivered_once(sent, server)
    assert client.stats()["dropped_total"] == 0


def test_lost_answer_after_storing_gives_duplicates_with_the_same_message_id(
    server: DevServer, clients: list[Client]
) -> None:
    """Answers lost after the events were stored: all stored, duplicates only from those."""
    client, sent, _ = _run_with_faults(
        server, clients, lambda: server.store_then_drop_next(1), count=6, every=5
    )
    assert _faulted(server, "store_then_drop") == 6
    counts = assert_delivered_once(sent, server, lost_answers_allowed=True)
    lost = [r for r in server.requests() if r.fault == "store_then_drop"]
    lost_ids = {mid for r in lost for mid in request_ids(r)}
    duplicated = {mid for mid, n in counts.items() if n > 1}
    # Every event of a lost answer was re-sent with the same id, so it is stored once per
    # request that stored it: exactly the duplicates, and nothing else.
    assert duplicated == lost_ids
    storing = collections.Counter(
        mid for r in server.requests() if r.events for mid in request_ids(r)
    )
    assert counts == storing
    assert client.stats()["dropped_total"] == 0


def test_server_hanging_past_the_timeout_is_retried(
    server: DevServer, clients: list[Client]
) -> None:
    """Requests that hang past the client timeout are abandoned and retried: none lost."""
    client, sent, _ = _run_with_faults(
        server, clients, lambda: server.hang_next(1, seconds=10), count=3, every=6,
        timeout=0.5,
    )
    assert _faulted(server, "hang") == 3
    assert_delivered_once(sent, server)
    assert client.stats()["dropped_total"] == 0


@pytest.mark.slow
def test_server_down_then_back_delivers_everything() -> None:
    """A data plane that goes away mid-run and comes back on the same port gets every event."""
    first = DevServer(write_keys=(WRITE_KEY,)).start()
    port = first.port
    client = make_client(first.url, upload_size=50, thread=2, retry_base_delay=0.05,
                         retry_max_delay=0.2, max_retries=1000, retry_deadline=120)
    second = None
    try:
        before = produce(client, threads=THREADS, per_thread=200, tag="before")
        assert first.wait_for_events(len(before) // 2, timeout=30)
        first.stop()
        during = produce(client, threads=THREADS, per_thread=300, tag="during")
        # Wait until the client has seen the outage: requests are failing.
        assert wait_until(lambda: client.stats()["failed_requests"] >= 5, timeout=30)
        second = DevServer(write_keys=(WRITE_KEY,), port=port).start()
        after = produce(client, threads=THREADS, per_thread=100, tag="after")
        assert client.flush(timeout=60), client.stats()
        assert second.count() > 0
        assert_delivered_once(before + during + after, first, second,
                              lost_answers_allowed=True)
        assert client.stats()["dropped_total"] == 0
    finally:
        client.shutdown(timeout=2)
        first.stop()
        if second is not None:
            second.stop()


def test_retry_after_is_obeyed_exactly(server: DevServer, clients: list[Client]) -> None:
    """After a 429 with Retry-After: 1, the next request comes no earlier than 1 s later."""
    server.fail_next(2, status=429, retry_after=1)
    client = make_client(server.url)
    clients.append(client)
    sent = produce(client, threads=2, per_thread=50)
    assert client.flush(timeout=30)
    records = server.requests()
    assert [r.fault for r in records[:3]] == ["fail", "fail", None]
    for failed, following in zip(records, records[1:3]):
        assert following.received_at - failed.received_at >= 1.0
    assert_delivered_once(sent, server)


def test_retry_after_holds_back_every_worker(server: DevServer, clients: list[Client]) -> None:
    """With several workers, no request at all is sent before a Retry-After expires."""
    server.fail_next(1, status=429, retry_after=1)
    client = make_client(server.url, thread=3, upload_size=20)
    clients.append(client)
    first_batch = produce(client, threads=1, per_thread=20, tag="first")
    # Wait until the client has read the 429, then give the other workers work to do.
    assert wait_until(lambda: client.stats()["failed_requests"] >= 1, timeout=10)
    rest = produce(client, threads=3, per_thread=100, tag="rest")
    assert client.flush(timeout=30)
    records = server.requests()
    assert records[0].fault == "fail" and len(records) > 3
    early = [r for r in records[1:] if r.received_at - records[0].received_at < 1.0]
    assert not early, f"{len(early)} request(s) sent before Retry-After expired"
    assert_delivered_once(first_batch + rest, server)


@pytest.mark.parametrize(
    ("status", "write_key"),
    [(400, WRITE_KEY), (401, "wrong-write-key"), (404, "disabled-key")],
    ids=["400", "401-invalid-key", "404-disabled-source"],
)
def test_final_statuses_drop_the_batch_at_once(
    server: DevServer, clients: list[Client], status: int, write_key: str
) -> None:
    """400/401/404: each batch is sent once, dropped, counted, and on_error called once."""
    calls: list[tuple[DeliveryError, list[dict[str, Any]]]] = []
    lock = threading.Lock()

    def on_error(error: DeliveryError, batch: list[dict[str, Any]]) -> None:
        with lock:
            calls.append((error, batch))

    if status == 400:
        server.fail_next(3, status=400)
    client = make_client(server.url, write_key=write_key, on_error=on_error, upload_size=50)
    clients.append(client)
    sent = produce(client, threads=THREADS, per_thread=250)
    assert client.flush(timeout=30) is False
    records = server.requests()
    # (A record's status is filled in just after its answer is written, so the last one
    # may not show it yet: tell rejected requests apart by the fault plan or the key.)
    rejected = [r for r in records if r.fault == "fail"] if status == 400 else records
    assert rejected and len(calls) == len(rejected)
    # Every batch went out once: the rejected ids (from on_error) and the stored ids
    # together are the sent ids, each exactly once.
    rejected_ids = [m["messageId"] for _, batch in calls for m in batch]
    stored = [e["messageId"] for e in server.events()]
    assert sorted(rejected_ids + stored) == sorted(sent)
    if status == 400:  # bodies were read: the refused ids were never sent again
        refused = [mid for r in rejected for mid in request_ids(r)]
        assert sorted(rejected_ids) == sorted(refused)
        others = {mid for r in records if r.fault is None for mid in request_ids(r)}
        assert not others & set(refused)
    for error, _ in calls:
        assert isinstance(error, HTTPStatusError) and error.status_code == status
        assert not isinstance(error, RetriesExhaustedError)
    stats = client.stats()
    assert stats["dropped"]["rejected"] == len(rejected_ids)
    assert stats["delivered"] + len(rejected_ids) == len(sent)
    assert server.count() == len(sent) - len(rejected_ids)


def test_retries_exhausted_are_counted_and_reported(
    server: DevServer, clients: list[Client]
) -> None:
    """A batch that keeps failing is dropped after max_retries+1 attempts and reported once."""
    calls: list[DeliveryError] = []
    server.fail_next(4, status=503)
    client = make_client(server.url, max_retries=3, upload_size=100,
                         on_error=lambda error, batch: calls.append(error))
    clients.append(client)
    sent = produce(client, threads=1, per_thread=100)
    assert client.flush(timeout=30) is False
    records = server.requests()
    assert [r.fault for r in records] == ["fail"] * 4
    assert len(calls) == 1 and isinstance(calls[0], RetriesExhaustedError)
    assert calls[0].attempts == 4
    assert client.stats()["dropped"]["retries_exhausted"] == len(sent)
    sent_again = produce(client, threads=2, per_thread=50, tag="after")
    assert client.flush(timeout=30)
    assert_delivered_once(sent_again, server)


@pytest.mark.parametrize("call", ["flush", "shutdown"])
def test_flush_or_shutdown_from_a_callback_does_not_hang_the_worker(
    server: DevServer, call: str
) -> None:
    """flush()/shutdown() called from on_error (which runs on the callback thread, never on
    a worker) return promptly, raise nothing, and the client goes on (flush) or stops
    cleanly (shutdown)."""
    outcomes: list[tuple[Any, float]] = []
    holder: dict[str, Client] = {}

    def on_error(error: DeliveryError, batch: list[dict[str, Any]]) -> None:
        started = time.monotonic()
        result = getattr(holder["client"], call)()  # default timeouts: 600 s and 5 s
        outcomes.append((result, time.monotonic() - started))

    existing = set(threading.enumerate())
    client = make_client(server.url, on_error=on_error, upload_size=10)
    holder["client"] = client
    server.fail_next(1, status=400)
    first = produce(client, threads=1, per_thread=10, tag="rejected")
    assert client.flush(timeout=10) is False
    assert len(outcomes) == 1
    result, elapsed = outcomes[0]
    # flush: False, the rejected events were dropped; shutdown: True, nothing was left queued
    assert result is (call == "shutdown") and elapsed < 1.0
    if call == "flush":
        more = produce(client, threads=2, per_thread=50, tag="after")
        assert client.flush(timeout=10)
        assert_delivered_once(more, server)
    else:
        assert client.closed
        assert client.track("u", "After Shutdown")[0] is False
        workers = [t for t in threading.enumerate()
                   if t not in existing and t.name.startswith("rudder-analytics-worker")]
        for worker in workers:
            worker.join(5)  # it stops once the callback returns
        assert not any(w.is_alive() for w in workers)
    client.shutdown(timeout=2)
    assert server.count(event="Reliability Event") == (100 if call == "flush" else 0)
    assert not set(first) & {e["messageId"] for e in server.events()}


def test_retry_after_as_an_http_date_is_obeyed(server: DevServer, clients: list[Client]) -> None:
    """Retry-After given as an HTTP date: the retry is not sent before that moment."""
    not_before = int(time.time()) + 2  # whole seconds, as HTTP dates have
    server.fail_next(1, status=503, retry_after=email.utils.formatdate(not_before, usegmt=True))
    client = make_client(server.url)
    clients.append(client)
    sent = produce(client, threads=1, per_thread=20)
    assert client.flush(timeout=30)
    wall_minus_monotonic = time.time() - time.monotonic()
    records = server.requests()
    assert [r.fault for r in records[:2]] == ["fail", None]
    assert records[1].received_at + wall_minus_monotonic >= not_before - 0.01
    assert_delivered_once(sent, server)


def test_reentrant_logging_handler_and_callbacks_do_not_deadlock(
    server: DevServer, clients: list[Client]
) -> None:
    """A log handler and on_drop that call back into the client (track, stats) while
    retries, drops and debug logging happen: flush still completes; nothing deadlocks."""
    holder: dict[str, Client] = {}

    class Reenter(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            client = holder.get("client")
            if client is not None and record.name.startswith("rudder_analytics"):
                client.stats()
                if record.levelno >= logging.WARNING:
                    client.track("logger", "Log Record", {"msg": record.getMessage()[:40]})

    handler = Reenter(logging.DEBUG)
    sdk_logger = logging.getLogger("rudder_analytics")
    sdk_logger.addHandler(handler)
    try:
        client = make_client(server.url, debug=True, thread=2, max_queue_size=300,
                             on_drop=lambda reason, messages: holder["client"].stats())
        clients.append(client)
        holder["client"] = client
        server.fail_fraction(0.3, status=503, seed=3)
        results = [client.track("u", "Reentrant", {"i": i})[0] for i in range(1500)]
        assert not all(results)  # the queue overflowed: drops were logged and called back
        assert client.flush(timeout=30) is False  # some were dropped (queue_full)
        assert server.count(event="Reentrant") == sum(results)
    finally:
        sdk_logger.removeHandler(handler)
        sdk_logger.setLevel(logging.NOTSET)
