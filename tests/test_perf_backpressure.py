"""Issue #13: batches sized by the backlog, the queue's fast take, and ``on_full="block"``.

Behaviour only (no timings): what goes in each request, which calls wait and which never do.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rudder_analytics import Client, ConfigurationError
from rudder_analytics._sync.buffer import EventBuffer
from rudder_analytics.devserver import DevServer

from .helpers_reliability import refused_url

Make = Callable[..., Client]


def _batch_sizes(server: DevServer) -> list[int]:
    sizes = []
    for record in server.requests():
        if record.path != "/v1/batch" or record.status != 200:
            continue
        sizes.append(record.events)
    return sizes


def test_automatic_batches_grow_with_a_deep_queue(make_client: Make,
                                                  dataplane: DevServer) -> None:
    """With upload_size left automatic, a backlog goes out in requests of more than 100
    events (the old fixed size), each within upload_bytes."""
    dataplane.set_latency(0.05)  # each request takes a while: the queue deepens meanwhile
    client = make_client(upload_bytes=200_000)
    for i in range(3000):
        client.track(user_id=f"u{i}", event="Deep")
    assert client.flush(timeout=30)
    sizes = _batch_sizes(dataplane)
    assert sum(sizes) == 3000
    assert max(sizes) > 100
    for record in dataplane.requests():
        if record.path == "/v1/batch":
            assert len(record.body or b"") <= 200_000


def test_an_explicit_upload_size_is_still_a_maximum(make_client: Make,
                                                    dataplane: DevServer) -> None:
    """upload_size set by the user caps every request, however deep the queue."""
    dataplane.set_latency(0.05)
    client = make_client(upload_size=40)
    for i in range(1000):
        client.track(user_id=f"u{i}", event="Capped")
    assert client.flush(timeout=30)
    sizes = _batch_sizes(dataplane)
    assert sum(sizes) == 1000
    assert max(sizes) <= 40


def test_an_idle_queue_sends_a_prompt_small_batch(make_client: Make,
                                                  dataplane: DevServer) -> None:
    """A few events on an idle client go out on their own after upload_interval (no flush)."""
    client = make_client(upload_interval=0.05)
    for i in range(3):
        client.track(user_id=f"u{i}", event="Idle")
    assert dataplane.wait_for_events(3, timeout=10)
    assert _batch_sizes(dataplane) == [3]
    assert client.config.upload_size is None


def _reference_take(items: list[bytes], max_events: int, max_bytes: int,
                    overhead: int) -> list[bytes]:
    batch: list[bytes] = []
    total = 0
    for message in items:
        if len(batch) >= max_events:
            break
        size = len(message) + overhead
        if batch and total + size > max_bytes:
            break
        batch.append(message)
        total += size
    return batch


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=300), min_size=0, max_size=120),
    max_events=st.integers(min_value=1, max_value=150),
    max_bytes=st.integers(min_value=1, max_value=5000),
    overhead=st.integers(min_value=0, max_value=40),
)
def test_take_is_the_longest_run_that_fits(lengths: list[int], max_events: int,
                                           max_bytes: int, overhead: int) -> None:
    """The fast take returns exactly what the one-at-a-time rule would: the longest run from
    the head within max_events and max_bytes (the first always), leaving the rest in order."""
    items = [bytes([65 + i % 26]) * n for i, n in enumerate(lengths)]
    buffer = EventBuffer(10_000, 10**9, 10_000)
    for message in items:
        assert buffer.put(message)
    expected = _reference_take(items, max_events, max_bytes, overhead)
    batch, last = buffer.take(max_events, max_bytes, overhead)
    assert batch == expected
    assert last == len(expected)
    rest, _ = buffer.take(10_000, 10**9, 0)
    assert rest == items[len(expected):]
    assert buffer.queued_bytes == 0


def test_block_waits_for_room_and_loses_nothing(make_client: Make,
                                               dataplane: DevServer) -> None:
    """on_full="block": with a queue of 5 and a slow data plane every call is accepted
    (it waits for room) and every event arrives."""
    dataplane.set_latency(0.02)
    client = make_client(max_queue_size=5, upload_size=5, on_full="block", block_timeout=30)
    results = [client.track(user_id=f"u{i}", event="Blocked")[0] for i in range(60)]
    assert all(results)
    assert client.flush(timeout=30)
    assert len(dataplane.events(event="Blocked")) == 60
    assert client.stats()["dropped"]["queue_full"] == 0


def test_block_gives_up_after_block_timeout(make_client: Make) -> None:
    """A call that finds no room within block_timeout drops the event as queue_full."""
    client = make_client(data_plane_url=refused_url(), max_queue_size=2, on_full="block",
                         block_timeout=0.2, max_retries=1000, retry_base_delay=5,
                         retry_max_delay=5)
    assert client.track(user_id="u", event="A")[0]
    assert client.track(user_id="u", event="B")[0]
    assert client.track(user_id="u", event="C")[0]  # the worker holds A or both in flight
    refused = [client.track(user_id="u", event=f"D{i}")[0] for i in range(3)]
    assert not all(refused)
    assert client.stats()["dropped"]["queue_full"] >= 1


def test_block_never_waits_on_the_callbacks_thread(make_client: Make) -> None:
    """A track() from an on_drop callback on a full queue returns at once (drops), even with
    a long block_timeout: the callbacks thread must never wait for room."""
    returned = threading.Event()
    outcome: list[Any] = []

    def on_drop(reason: str, messages: list[dict[str, Any]]) -> None:
        if reason == "filtered" and not outcome:
            outcome.append(client.track(user_id="u", event="FromCallback")[0])
            returned.set()

    def drop_filtered(message: dict[str, Any]) -> Any:
        return None if message.get("event") == "Filtered" else message

    client = make_client(data_plane_url=refused_url(), max_queue_size=1, upload_size=1,
                         on_full="block", block_timeout=60, max_retries=1000,
                         retry_base_delay=5, retry_max_delay=5, on_drop=on_drop,
                         before_send=drop_filtered, shutdown_timeout=0.5)
    client.track(user_id="u", event="Fill")  # taken by the worker, stuck retrying
    assert client.track(user_id="u", event="Fill")[0]  # fills the queue (or waits for room)
    client.track(user_id="u", event="Filtered")  # on_drop runs on the callbacks thread
    assert returned.wait(10), "track() from the callback waited for room"
    assert outcome == [False]


def test_shutdown_releases_a_waiting_call(make_client: Make) -> None:
    """A call waiting for room returns False once shutdown closes the queue."""
    client = make_client(data_plane_url=refused_url(), max_queue_size=1, upload_size=1,
                         on_full="block", block_timeout=60, max_retries=1000,
                         retry_base_delay=5, retry_max_delay=5, shutdown_timeout=0.5)
    client.track(user_id="u", event="Fill")
    client.track(user_id="u", event="Fill")
    started = threading.Event()
    outcome: list[bool] = []

    def waiter() -> None:
        started.set()
        outcome.append(client.track(user_id="u", event="Waiting")[0])

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    assert started.wait(5)
    client.shutdown(timeout=0.5)
    thread.join(10)
    assert not thread.is_alive()
    assert outcome == [False]


@pytest.mark.parametrize("options", [{"on_full": "wait"}, {"block_timeout": 0},
                                     {"upload_size": 0}])
def test_backpressure_options_are_checked(options: dict[str, Any]) -> None:
    """A misspelt on_full value or a non-positive block_timeout is refused when building."""
    with pytest.raises(ConfigurationError):
        Client("k", "http://127.0.0.1:9", send=False, **options)


def test_gzip_body_of_an_automatic_batch_is_one_json_document(make_client: Make,
                                                              dataplane: DevServer) -> None:
    """A large automatic batch is still one valid JSON body with sentAt on each message."""
    dataplane.set_latency(0.05)
    client = make_client()
    for i in range(1500):
        client.track(user_id=f"u{i}", event="Doc", properties={"i": i})
    assert client.flush(timeout=30)
    for record in dataplane.requests():
        if record.path == "/v1/batch" and record.status == 200:
            doc = json.loads(record.body or b"")
            assert all("sentAt" in m for m in doc["batch"])
