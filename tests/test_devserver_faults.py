"""The stand-in's fault plan, inspection API and behaviour under concurrent load.

Faults must look like the real failures to a client: a status with or without
Retry-After, a reset connection, a lost answer after the events were stored, a request
that hangs past the client's timeout. Waits use the server's Conditions or thread joins,
each with a deadline; nothing asserts on elapsed time.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests

from rudder_analytics.devserver import DevServer

KEY = "test-write-key"


def batch(n: int = 1, user_id: str = "u1", **fields: Any) -> Dict[str, Any]:
    """A batch body of ``n`` track events with fresh message ids."""
    return {
        "batch": [
            {
                "type": "track",
                "event": "Order Completed",
                "userId": user_id,
                "messageId": str(uuid.uuid4()),
                **fields,
            }
            for _ in range(n)
        ]
    }


def send(
    server: DevServer,
    body: Optional[Dict[str, Any]] = None,
    session: Optional[requests.Session] = None,
    timeout: float = 20.0,
) -> requests.Response:
    """POST a batch with the default write key."""
    client = session if session is not None else requests
    return client.post(
        server.url + "/v1/batch",
        json=body if body is not None else batch(),
        auth=(KEY, ""),
        timeout=timeout,
    )


@pytest.fixture
def server() -> Iterator[DevServer]:
    """A running stand-in with the default write key."""
    with DevServer(write_keys=(KEY,)) as running:
        yield running


# --- fail --------------------------------------------------------------------------------


def test_fail_next_answers_status_and_retry_after_without_storing(server: DevServer) -> None:
    """``fail_next(n)`` answers the next n POSTs with the status (gateway text by default,
    Retry-After when given) and stores none of their events; then service resumes."""
    server.fail_next(2, status=503, retry_after=7)
    for _ in range(2):
        answer = send(server)
        assert (answer.status_code, answer.text) == (503, "Service Unavailable\n")
        assert answer.headers["Retry-After"] == "7"
        assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert server.count() == 0
    answer = send(server)
    assert (answer.status_code, answer.text) == (200, "ok")
    assert "Retry-After" not in answer.headers
    assert server.count() == 1
    assert [r.fault for r in server.requests()] == ["fail", "fail", None]
    assert [r.status for r in server.requests()] == [503, 503, 200]


def test_fail_next_default_bodies_custom_bodies_and_dates(server: DevServer) -> None:
    """Default texts follow the gateway (429, 500, 504); a str body is sent like
    ``http.Error``, bytes verbatim; Retry-After may be an HTTP date."""
    server.fail_next(1, status=429)
    server.fail_next(1, status=504)
    server.fail_next(1, status=502)
    server.fail_next(1, status=500, body="tx error")
    server.fail_next(1, status=500, body=b'{"code":"x"}')
    server.fail_next(1, status=429, retry_after="Wed, 21 Oct 2026 07:28:00 GMT")
    answers = [send(server) for _ in range(6)]
    assert [(a.status_code, a.text) for a in answers] == [
        (429, "max requests limit reached\n"),
        (504, "gateway timeout\n"),
        (502, "Bad Gateway\n"),
        (500, "tx error\n"),
        (500, '{"code":"x"}'),
        (429, "max requests limit reached\n"),
    ]
    assert answers[5].headers["Retry-After"] == "Wed, 21 Oct 2026 07:28:00 GMT"
    assert server.count() == 0


def test_faults_apply_only_to_ingestion_routes(server: DevServer) -> None:
    """/health and /_dev/ are never faulted, and do not use up a fault step."""
    server.fail_next(1, status=503)
    server.drop_next(1)
    assert requests.get(server.url + "/health", timeout=10).status_code == 200
    assert requests.get(server.url + "/_dev/count", timeout=10).json() == {"count": 0}
    assert send(server).status_code == 503
    with pytest.raises(requests.ConnectionError):
        send(server)
    assert send(server).status_code == 200


def test_fail_fraction_is_seeded_and_cleared(server: DevServer) -> None:
    """``fail_fraction(p, seed=...)`` fails requests at random, reproducibly, until
    ``clear_faults()``."""
    server.fail_fraction(0.5, status=500, seed=1234)
    statuses = [send(server).status_code for _ in range(20)]
    expected_rng = random.Random(1234)
    expected = [500 if expected_rng.random() < 0.5 else 200 for _ in range(20)]
    assert statuses == expected
    assert 0 < statuses.count(500) < 20
    assert server.count() == statuses.count(200)

    server.fail_fraction(1.0, status=503)
    assert {send(server).status_code for _ in range(5)} == {503}
    server.clear_faults()
    assert {send(server).status_code for _ in range(5)} == {200}


def test_fault_steps_apply_in_queue_order(server: DevServer) -> None:
    """Queued steps run in order: fail, then drop, then store-then-drop, then normal."""
    server.fail_next(1, status=429)
    server.drop_next(1)
    server.store_then_drop_next(1)
    assert send(server).status_code == 429
    with pytest.raises(requests.ConnectionError):
        send(server)
    with pytest.raises(requests.ConnectionError):
        send(server)
    assert send(server).status_code == 200
    assert [r.fault for r in server.requests()] == ["fail", "drop", "store_then_drop", None]
    assert server.count() == 2


# --- connection faults -----------------------------------------------------------------


def test_drop_next_resets_the_connection_without_reading(server: DevServer) -> None:
    """``drop_next`` closes the connection without reading or answering; the client sees
    a reset, nothing is stored, and a kept-alive session recovers on its next request."""
    with requests.Session() as session:
        assert send(server, session=session).status_code == 200
        server.drop_next(1)
        with pytest.raises(requests.ConnectionError):
            send(server, session=session)
        assert send(server, session=session).status_code == 200
    assert server.count() == 2
    dropped = server.requests()[1]
    assert (dropped.fault, dropped.answered, dropped.status, dropped.body) == (
        "drop",
        False,
        None,
        None,
    )


def test_store_then_drop_stores_and_loses_the_answer(server: DevServer) -> None:
    """``store_then_drop_next`` stores the events and then closes without an answer: the
    client cannot tell whether they were stored (and would retry: a duplicate)."""
    body = batch(3)
    server.store_then_drop_next(1)
    with pytest.raises(requests.ConnectionError):
        send(server, body)
    assert server.count() == 3
    record = server.requests()[0]
    assert (record.fault, record.answered, record.events) == ("store_then_drop", False, 3)
    assert send(server, body).status_code == 200  # the retry
    ids = [e["messageId"] for e in server.events()]
    assert len(ids) == 6 and len(set(ids)) == 3


def test_store_then_drop_of_an_invalid_request_stores_nothing(server: DevServer) -> None:
    """The answer is lost whatever it would have been; an invalid request stores nothing."""
    server.store_then_drop_next(2)
    with pytest.raises(requests.ConnectionError):
        requests.post(server.url + "/v1/batch", json=batch(), auth=("wrong", ""), timeout=10)
    with pytest.raises(requests.ConnectionError):
        send(server, {"batch": [{"type": "track"}]})
    assert server.count() == 0


def test_hang_next_hangs_past_the_client_timeout_and_stop_cuts_it() -> None:
    """``hang_next`` reads the request and answers nothing: the client times out, nothing
    is stored, and ``stop()`` ends the hanging handler instead of waiting for it."""
    server = DevServer(write_keys=(KEY,)).start()
    try:
        server.hang_next(1, seconds=300)
        with pytest.raises(requests.Timeout):
            send(server, timeout=1.0)
        record = server.requests()[0]
        assert (record.fault, record.answered) == ("hang", False)
        assert record.body is not None and json.loads(record.body)["batch"]
        assert server.count() == 0
    finally:
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        stopper.join(30)
    assert not stopper.is_alive()


def test_latency_delays_the_answer_and_stop_interrupts_it(server: DevServer) -> None:
    """``set_latency`` delays answers (a short delay still answers normally; a long one
    outlasts the client timeout; stopping the server does not wait for it)."""
    server.set_latency(0.05)
    assert send(server).status_code == 200
    server.set_latency(300)
    with pytest.raises(requests.Timeout):
        send(server, timeout=0.5)
    assert server.fault_plan()["latency"] == 300
    server.set_latency(0)
    assert send(server).status_code == 200
    assert server.count() == 2


def test_stop_returns_while_clients_hang(server: DevServer) -> None:
    """Several hanging requests and an idle kept-alive connection do not hold up stop()."""
    session = requests.Session()
    assert send(server, session=session).status_code == 200  # stays open, idle
    server.hang_next(3, seconds=300)
    errors: List[BaseException] = []

    def hung() -> None:
        try:
            send(server, timeout=60)
        except requests.RequestException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hung) for _ in range(3)]
    for thread in threads:
        thread.start()
    assert server.wait_for_requests(4, timeout=20)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    stopper.join(30)
    assert not stopper.is_alive()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive()
    assert len(errors) == 3
    session.close()
    assert server.count() == 1  # still readable after stop


# --- inspection API ----------------------------------------------------------------------


def test_events_count_filters_and_wait(server: DevServer) -> None:
    """events()/count() filter by type, user id and message id, in arrival order;
    wait_for_events blocks until the count is reached or the timeout passes."""
    body = {
        "batch": [
            {"type": "identify", "userId": "u1", "messageId": "m1"},
            {"type": "track", "userId": "u1", "event": "A", "messageId": "m2"},
            {"type": "track", "userId": "u2", "event": "B", "messageId": "m3"},
            {"type": "page", "anonymousId": "a1", "name": "Home", "messageId": "m4"},
        ]
    }
    assert server.wait_for_events(1, timeout=0.05) is False
    waiter_result: List[bool] = []
    waiter = threading.Thread(target=lambda: waiter_result.append(server.wait_for_events(4, 20)))
    waiter.start()
    assert send(server, body).status_code == 200
    waiter.join(30)
    assert waiter_result == [True]

    assert [e["messageId"] for e in server.events()] == ["m1", "m2", "m3", "m4"]
    assert [e["messageId"] for e in server.events(type="track")] == ["m2", "m3"]
    assert [e["messageId"] for e in server.events(user_id="u1")] == ["m1", "m2"]
    assert [e["messageId"] for e in server.events(type="track", user_id="u1")] == ["m2"]
    assert server.events(message_id="m4")[0]["name"] == "Home"
    assert server.events(anonymous_id="a1")[0]["messageId"] == "m4"
    assert server.events(event="B")[0]["messageId"] == "m3"
    assert (server.count(), server.count(type="track"), server.count(user_id="nobody")) == (4, 2, 0)


def test_request_log_records(server: DevServer) -> None:
    """requests() records method, path, case-insensitive headers, the decompressed body,
    wire size, status and arrival time; /_dev/ calls are not recorded."""
    import gzip

    raw = json.dumps(batch(2)).encode()
    compressed = gzip.compress(raw)
    answer = requests.post(
        server.url + "/v1/batch?x=1",
        data=compressed,
        headers={"Content-Encoding": "gzip", "X-Custom": "v"},
        auth=(KEY, ""),
        timeout=10,
    )
    assert answer.status_code == 200
    requests.get(server.url + "/_dev/events", timeout=10)
    (record,) = server.requests()
    assert (record.method, record.path, record.query) == ("POST", "/v1/batch", "x=1")
    assert record.headers["x-custom"] == record.headers["X-CUSTOM"] == "v"
    assert record.headers.get("content-encoding") == "gzip"
    assert record.body == raw
    assert record.raw_size == len(compressed)
    assert (record.status, record.answered, record.events, record.fault) == (200, True, 2, None)
    assert record.received_at > 0


def test_request_log_is_bounded() -> None:
    """The request log keeps the newest requests within its count and byte budgets, so
    long runs do not grow without end; wait_for_requests still counts every request."""
    with DevServer(write_keys=(KEY,), request_log_size=3) as server:
        for n in range(5):
            send(server, batch(1, user_id=f"r{n}"))
        assert server.wait_for_requests(5, timeout=10)
        users = [json.loads(r.body or b"{}")["batch"][0]["userId"] for r in server.requests()]
        assert users == ["r2", "r3", "r4"]
    body = batch(10)
    size = len(json.dumps(body))
    with DevServer(write_keys=(KEY,), request_log_bytes=size * 2 + 10) as server:
        for _ in range(4):
            send(server, body)
        assert len(server.requests()) == 2
        assert server.count() == 40
    with DevServer(write_keys=(KEY,), request_log_size=0) as server:
        send(server)
        assert server.requests() == []
        assert server.wait_for_requests(1, timeout=10)


def test_reset_clears_events_log_and_faults(server: DevServer) -> None:
    """reset() empties the store and the request log and removes every fault."""
    send(server, batch(3))
    server.fail_next(5)
    server.set_latency(300)
    server.reset()
    assert (server.count(), server.events(), server.requests()) == (0, [], [])
    assert server.fault_plan() == {"queue": [], "fail_fraction": None, "latency": 0.0}
    assert send(server).status_code == 200


def test_http_control_api(server: DevServer) -> None:
    """The /_dev/ API mirrors the Python one: events, count, wait, requests, faults,
    reset, config; bad plans are 400 and unknown routes 404."""
    dev = server.url + "/_dev"
    plan = [
        {"action": "fail_next", "n": 1, "status": 503, "retry_after": 3},
        {"action": "drop_next", "n": 1},
        {"action": "hang_next", "n": 1, "seconds": 1},
    ]
    answer = requests.post(dev + "/faults", json=plan, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json; charset=utf-8"
    assert answer.json()["queue"] == [
        {"kind": "fail", "status": 503, "retry_after": "3", "remaining": 1},
        {"kind": "drop", "remaining": 1},
        {"kind": "hang", "seconds": 1.0, "remaining": 1},
    ]
    assert requests.delete(dev + "/faults", timeout=10).json()["queue"] == []
    requests.post(dev + "/faults", json={"action": "fail_next", "n": 1, "status": 429}, timeout=10)
    assert send(server).status_code == 429

    send(server, {"batch": [{"type": "track", "userId": "h1", "messageId": "hm1"}]})
    send(server, {"batch": [{"type": "identify", "userId": "h2"}]})
    assert requests.get(dev + "/count", timeout=10).json() == {"count": 2}
    assert requests.get(dev + "/count?type=identify", timeout=10).json() == {"count": 1}
    events = requests.get(dev + "/events?type=track&user_id=h1", timeout=10).json()
    assert [e["messageId"] for e in events] == ["hm1"]
    assert len(requests.get(dev + "/events?limit=1", timeout=10).json()) == 1
    jobs = requests.get(dev + "/jobs?message_id=hm1", timeout=10).json()
    assert jobs[0]["writeKey"] == KEY
    assert requests.get(dev + "/wait?n=2&timeout=5", timeout=10).json() == {"ok": True, "count": 2}
    assert requests.get(dev + "/wait?n=9&timeout=0.05", timeout=10).json()["ok"] is False
    logged = requests.get(dev + "/requests", timeout=10).json()
    assert [r["status"] for r in logged] == [429, 200, 200]
    assert json.loads(logged[1]["body"])["batch"][0]["userId"] == "h1"
    assert requests.get(dev + "/config", timeout=10).json()["write_keys"] == [KEY]
    assert "routes" in requests.get(dev + "/", timeout=10).json()

    assert requests.post(dev + "/reset", timeout=10).json() == {"ok": True}
    assert requests.get(dev + "/count", timeout=10).json() == {"count": 0}

    assert requests.post(dev + "/faults", data=b"{", timeout=10).status_code == 400
    assert requests.post(dev + "/faults", json={"action": "explode"}, timeout=10).status_code == 400
    bad_status = {"action": "fail_next", "status": 99}
    assert requests.post(dev + "/faults", json=bad_status, timeout=10).status_code == 400
    assert requests.get(dev + "/events?colour=red", timeout=10).status_code == 400
    assert requests.get(dev + "/nothing", timeout=10).status_code == 404
    assert requests.post(dev + "/events", timeout=10).status_code == 405


def test_constructor_checks() -> None:
    """Bad settings fail at construction, not at the first request."""
    with pytest.raises(ValueError):
        DevServer(write_keys=("k",), disabled_write_keys=("k",))
    with pytest.raises(ValueError):
        DevServer(write_keys=("",))
    with pytest.raises(ValueError):
        DevServer(max_request_bytes=0)
    with pytest.raises(ValueError):
        DevServer(console="html")
    server = DevServer(write_keys="single-key")
    assert server.write_keys == ("single-key",)
    with pytest.raises(ValueError):
        server.fail_next(1, status=42)
    with pytest.raises(ValueError):
        server.fail_fraction(1.5)
    with pytest.raises(RuntimeError):
        _ = server.url  # not started


def test_file_database_keeps_events(tmp_path: Any) -> None:
    """With ``db=path`` the events are in that SQLite file and survive a restart."""
    path = tmp_path / "events.db"
    with DevServer(write_keys=(KEY,), db=path) as first:
        assert send(first, batch(2)).status_code == 200
    first.close()
    with DevServer(write_keys=(KEY,), db=str(path)) as second:
        assert second.count() == 2
        assert send(second, batch(1)).status_code == 200
        assert second.count() == 3


def test_console_output(server: DevServer) -> None:
    """console='text' prints one readable line per event; 'json' one JSON object."""
    import io

    for mode in ("text", "json"):
        stream = io.StringIO()
        with DevServer(write_keys=(KEY,), console=mode, console_stream=stream) as printing:
            body = {
                "batch": [
                    {"type": "track", "userId": "u1", "event": "Order Completed"},
                    {"type": "page", "anonymousId": "anon-1", "name": "Home"},
                ]
            }
            assert send(printing, body).status_code == 200
        lines = stream.getvalue().splitlines()
        assert len(lines) == 2
        if mode == "text":
            assert "track" in lines[0] and "user=u1" in lines[0]
            assert lines[0].endswith("Order Completed")
            assert "page" in lines[1] and "anon=anon-1" in lines[1] and lines[1].endswith("Home")
        else:
            assert [json.loads(line)["type"] for line in lines] == ["track", "page"]


# --- concurrency -------------------------------------------------------------------------


def test_concurrent_clients_every_event_stored_exactly_once(server: DevServer) -> None:
    """Eight clients posting at once, each on its own keep-alive connection: every event
    is stored exactly once and each request's events stay together in order."""
    clients, requests_each, per_request = 8, 25, 20
    barrier = threading.Barrier(clients)
    failures: List[str] = []

    def client(index: int) -> None:
        with requests.Session() as session:
            barrier.wait(timeout=30)
            for r in range(requests_each):
                body = {
                    "batch": [
                        {
                            "type": "track",
                            "event": "E",
                            "userId": f"client-{index}",
                            "messageId": f"{index}-{r}-{i}",
                        }
                        for i in range(per_request)
                    ]
                }
                answer = send(server, body, session=session)
                if answer.status_code != 200:
                    failures.append(f"{index}-{r}: {answer.status_code}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive()
    assert failures == []
    total = clients * requests_each * per_request
    assert server.wait_for_events(total, timeout=10)
    events = server.events()
    ids = [e["messageId"] for e in events]
    assert len(ids) == total
    expected = {
        f"{c}-{r}-{i}"
        for c in range(clients)
        for r in range(requests_each)
        for i in range(per_request)
    }
    assert set(ids) == expected
    # One request is one transaction: its 20 events are contiguous and in order.
    for start in range(0, total, per_request):
        chunk = ids[start : start + per_request]
        prefix = chunk[0].rsplit("-", 1)[0]
        assert chunk == [f"{prefix}-{i}" for i in range(per_request)]
    assert len(server.requests()) == clients * requests_each
