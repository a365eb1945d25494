"""Synchronous mode and the seed SDK's batch block, against the local data plane."""

from __future__ import annotations

from typing import Any, Callable

import pytest

import rudder_analytics
from rudder_analytics import Batch, Client, HTTPStatusError, RetriesExhaustedError
from rudder_analytics.devserver import DevServer

from .conftest import WRITE_KEY

Make = Callable[..., Client]


def test_sync_mode_every_call_type(make_client: Make, dataplane: DevServer) -> None:
    """In sync mode each call is stored before it returns."""
    client = make_client(sync_mode=True)
    calls = [
        lambda: client.track(user_id="u", event="E"),
        lambda: client.identify(user_id="u", traits={"a": 1}),
        lambda: client.page(user_id="u", name="P"),
        lambda: client.screen(user_id="u", name="S"),
        lambda: client.group(user_id="u", group_id="g"),
        lambda: client.alias(previous_id="p", user_id="u"),
    ]
    for count, call in enumerate(calls, start=1):
        ok, _ = call()
        assert ok
        assert dataplane.count() == count  # no waiting: it is there already
    assert [len(r.json()["batch"]) for r in dataplane.requests()] == [1] * 6


def test_sync_retries_then_succeeds(make_client: Make, dataplane: DevServer) -> None:
    """A 503 blip is retried in the caller's thread; the call still succeeds."""
    client = make_client(sync_mode=True)
    dataplane.fail_next(2, status=503)
    ok, _ = client.track(user_id="u", event="E")
    assert ok and dataplane.count() == 1
    assert client.stats()["retries"] == 2


def test_sync_gives_up_on_400_with_on_error(make_client: Make, dataplane: DevServer) -> None:
    """A 400 is final: the call returns False and on_error gets the seed's four values."""
    calls: list[tuple[Any, ...]] = []
    client = make_client(sync_mode=True,
                         on_error=lambda status, body, exc, response: calls.append(
                             (status, body, exc, response)))
    dataplane.fail_next(1, status=400, body="invalid json")
    ok, _ = client.track(user_id="u", event="E")
    assert not ok
    [(status, body, _exc, response)] = calls
    assert status == 400 and body.strip() == "invalid json" and response.status_code == 400
    assert len(dataplane.requests()) == 1


def test_sync_raise_on_error(make_client: Make, dataplane: DevServer) -> None:
    """With raise_on_error=True a failed delivery raises the delivery error."""
    client = make_client(sync_mode=True, raise_on_error=True, max_retries=1)
    dataplane.fail_next(1, status=401)
    with pytest.raises(HTTPStatusError) as raised:
        client.track(user_id="u", event="E")
    assert raised.value.status_code == 401
    dataplane.fail_next(5, status=500)
    with pytest.raises(RetriesExhaustedError):
        client.track(user_id="u", event="E")


def test_sync_deadline_bounds_retries(make_client: Make, dataplane: DevServer) -> None:
    """sync_deadline stops retrying; the call returns False instead of hanging."""
    client = make_client(sync_mode=True, sync_deadline=0.5)
    dataplane.fail_next(100, status=429, retry_after=2)
    ok, _ = client.track(user_id="u", event="E")
    assert not ok
    assert client.stats()["dropped"]["retries_exhausted"] == 1


def test_sync_flush_and_shutdown_are_no_ops(make_client: Make) -> None:
    """flush() and shutdown() are harmless in sync mode."""
    client = make_client(sync_mode=True)
    assert client.flush() is True
    assert client.shutdown() is True
    assert client.shutdown() is True


@pytest.mark.parametrize("sync_mode", [False, True])
def test_batch_block_shared_context(make_client: Make, dataplane: DevServer,
                                    sync_mode: bool) -> None:
    """Batch context and integrations are merged into each message; own keys win."""
    client = make_client(sync_mode=sync_mode)
    with client.batch() as batch:
        batch.context = {"ip": "10.81.20.10", "locale": "en"}
        batch.integrations = {"Amplitude": False}
        batch.identify(user_id="12345", traits={"email": "a@b.c"})
        batch.track(user_id="12345", event="Item Sold", properties={"revenue": 9.95},
                    context={"locale": "fr"}, integrations={"Amplitude": True, "Mixpanel": False})
        batch.page(user_id="12345", name="Pizza", category="Food")
    result = batch.result
    assert result is not None and result.ok and result.delivered == 3 and result.failed == 0
    assert [(r.status_code, r.body, r.messages) for r in result.requests] == [(200, "ok", 3)]
    events = {e["type"]: e for e in dataplane.events()}  # stored before the block ended
    assert events["identify"]["context"]["ip"] == "10.81.20.10"
    assert events["track"]["context"]["locale"] == "fr"
    assert events["track"]["context"]["ip"] == "10.81.20.10"
    assert events["page"]["context"]["locale"] == "en"
    assert events["identify"]["integrations"] == {"Amplitude": False}
    assert events["track"]["integrations"] == {"Amplitude": True, "Mixpanel": False}
    assert len(dataplane.requests()) == 1


def test_batch_block_validates_each_call(make_client: Make, dataplane: DevServer) -> None:
    """A bad call raises inside the block; a block that raises sends nothing."""
    client = make_client()
    with pytest.raises(rudder_analytics.ValidationError), client.batch() as batch:
        batch.track(user_id="u", event="E")
        batch.track(user_id="u")  # no event
    assert batch.result is None
    assert dataplane.count() == 0 and dataplane.requests() == []


def test_large_batch_is_chunked(make_client: Make, dataplane: DevServer) -> None:
    """20,000 messages go in a few requests, each under the request size limit."""
    client = make_client()
    with client.batch() as batch:
        for i in range(20_000):
            batch.track(user_id=f"user-{i}", event="Bulk", properties={"i": i, "pad": "x" * 50})
    result = batch.result
    assert result is not None and result.delivered == 20_000 and result.ok
    posts = dataplane.requests()
    assert 2 <= len(posts) <= 5
    assert all(len(r.body) <= 4_096_000 for r in posts)
    assert dataplane.count() == 20_000


def test_batch_failure_reports_on_error(make_client: Make, dataplane: DevServer) -> None:
    """A failed batch request fires on_error with (error, batch) and shows in the result."""
    errors: list[tuple[Any, list[dict[str, Any]]]] = []
    client = make_client(on_error=lambda error, batch: errors.append((error, batch)))
    dataplane.fail_next(1, status=400)
    with client.batch() as batch:
        batch.track(user_id="u", event="A")
        batch.track(user_id="u", event="B")
    result = batch.result
    assert result is not None and not result.ok and result.failed == 2
    assert result.requests[0].status_code == 400
    [(error, lost)] = errors
    assert error.status_code == 400 and [m["event"] for m in lost] == ["A", "B"]


def test_stored_batch_resent_with_same_ids(make_client: Make, dataplane: DevServer) -> None:
    """A batch built without a client survives JSON and is sent with its message ids."""
    batch = Batch(context={"source": "import"})
    first = batch.track(user_id="u", event="A")
    second = batch.identify(user_id="u", traits={"x": 1})
    stored = batch.to_json()
    restored = Batch.from_json(stored)
    client = make_client()
    result = client.send(restored)
    assert result.ok and result.delivered == 2
    result = client.send(Batch.from_json(stored))  # a resend after a crash: same ids
    ids = [e["messageId"] for e in dataplane.events()]
    assert ids == [first["messageId"], second["messageId"]] * 2


def test_stored_batch_rejects_garbage() -> None:
    """from_json refuses text that is not a stored batch, naming the problem."""
    with pytest.raises(rudder_analytics.ValidationError):
        Batch.from_json("[]")
    with pytest.raises(rudder_analytics.ValidationError, match=r"messages\[0\]"):
        Batch.from_json('{"messages": [{"type": "track"}]}')


def test_module_level_batch(dataplane: DevServer) -> None:
    """rudder_analytics.batch() works on the default client."""
    rudder_analytics.write_key = WRITE_KEY
    rudder_analytics.data_plane_url = dataplane.url
    try:
        with rudder_analytics.batch() as batch:
            batch.track(user_id="u", event="E")
        assert batch.result is not None and batch.result.ok
        assert dataplane.count() == 1
    finally:
        rudder_analytics.shutdown(timeout=5)
        rudder_analytics.write_key = None
        rudder_analytics.data_plane_url = None


def test_sync_client_in_forked_child(dataplane: DevServer) -> None:
    """A sync client used before and after fork: the child opens its own connection."""
    import os

    client = Client(WRITE_KEY, dataplane.url, sync_mode=True)
    assert client.track(user_id="parent", event="before")[0]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        ok = client.track(user_id="child", event="in-child")[0]
        os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.track(user_id="parent", event="after")[0]
    assert sorted(e["event"] for e in dataplane.events()) == ["after", "before", "in-child"]
