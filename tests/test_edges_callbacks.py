"""Callbacks can do anything: re-enter the client, block, raise BaseException, own the client.

Each test here failed on the code before callbacks moved to their own thread (see
rudder_analytics/_report/callbacks.py). Waits are on events with deadlines, never bare sleeps.
"""

from __future__ import annotations

import gc
import threading
import time
import weakref
from typing import Any

import pytest

from rudder_analytics import Client, DeliveryError
from rudder_analytics.devserver import DevServer
from tests.helpers_reliability import make_client, refused_url, run_script, wait_until

ON_DROP_SHUTS_DOWN = """
import sys, time
from rudder_analytics import Client
holder = {}
def on_drop(reason, messages):
    holder["client"].shutdown()          # re-enters while the exit hook is shutting down
    holder["client"].track("u", "From on_drop")
client = Client("k", sys.argv[1], on_drop=on_drop, shutdown_timeout=1.0,
                retry_base_delay=0.05, retry_max_delay=0.1)
holder["client"] = client
for i in range(200):
    client.track("u", "Event", {"i": i})
print("main done", flush=True)
"""


def test_on_drop_calling_shutdown_does_not_hang_the_exit() -> None:
    """on_drop calling shutdown() and track() while the exit hook shuts down: the process
    still exits within shutdown_timeout plus a second (it used to hang forever)."""
    started = time.monotonic()
    result = run_script(ON_DROP_SHUTS_DOWN, refused_url(), timeout=30)
    assert result.returncode == 0, result.stderr
    assert "main done" in result.stdout
    assert time.monotonic() - started < 1.0 + 1.0 + 8.0  # interpreter start-up is the rest
    assert "not delivered at exit" in result.stderr


def test_flush_from_on_drop_does_not_block_track(dataplane: DevServer) -> None:
    """on_drop(queue_full) runs off the caller's thread: its flush() waits, track() does not."""
    entered, finished = threading.Event(), threading.Event()
    holder: dict[str, Client] = {}

    def on_drop(reason: str, messages: list[dict[str, Any]]) -> None:
        entered.set()
        holder["client"].flush(timeout=10)
        finished.set()

    dataplane.hang_next(1, seconds=3)
    client = make_client(dataplane.url, max_queue_size=2, upload_size=1, on_drop=on_drop,
                         timeout=5.0)
    holder["client"] = client
    try:
        results = [client.track("u", "E", {"i": i})[0] for i in range(10)]
        assert not all(results)  # some were refused: queue_full, on_drop queued
        assert entered.wait(5)  # on_drop runs, and blocks in flush() on the hung request...
        assert not finished.is_set()  # ...while every track() above has already returned
        assert finished.wait(15)
    finally:
        client.shutdown(timeout=5)


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt, RuntimeError])
def test_a_callback_raising_base_exception_kills_no_worker(
    dataplane: DevServer, exc_type: type[BaseException]
) -> None:
    """on_error raising SystemExit or KeyboardInterrupt (or anything): later events are
    delivered and the client's worker is still alive."""
    calls: list[str] = []

    def on_error(error: DeliveryError, batch: list[dict[str, Any]]) -> None:
        calls.append(type(error).__name__)
        raise exc_type("from on_error")

    client = make_client(dataplane.url, on_error=on_error, upload_size=5)
    try:
        dataplane.fail_next(1, status=400)
        for i in range(5):
            client.track("u", "Rejected", {"i": i})
        assert client.flush(timeout=10) is False
        assert calls == ["HTTPStatusError"]
        for i in range(20):
            client.track("u", "Later", {"i": i})
        assert client.flush(timeout=10)
        assert dataplane.count(event="Later") == 20
        workers = [t for t in threading.enumerate() if t.name.startswith("rudder-analytics-worker")]
        assert workers and all(t.is_alive() for t in workers)
    finally:
        client.shutdown(timeout=5)


def test_on_drop_calling_track_on_a_full_queue_does_not_loop(dataplane: DevServer) -> None:
    """on_drop that tracks again while the queue is full: its own drops are counted but
    not handed back to on_drop, so the calls stop (no recursion, no endless ping-pong)."""
    calls = 0
    holder: dict[str, Client] = {}

    def on_drop(reason: str, messages: list[dict[str, Any]]) -> None:
        nonlocal calls
        calls += 1
        holder["client"].track("u", "From on_drop")

    dataplane.hang_next(1, seconds=2)
    client = make_client(dataplane.url, max_queue_size=1, upload_size=1, on_drop=on_drop,
                         timeout=5.0)
    holder["client"] = client
    try:
        refused = [client.track("u", "E")[0] for _ in range(20)].count(False)
        assert refused > 0
        assert client.flush(timeout=15) is False
        assert calls == refused  # one call per drop from the caller, none for its own
        assert client.stats()["dropped"]["queue_full"] >= refused
    finally:
        client.shutdown(timeout=5)


class _Owner:
    """An application object that owns a client whose on_error is its own bound method."""

    def __init__(self, url: str) -> None:
        self.errors: list[Any] = []
        self.client = make_client(url, on_error=self.on_error, upload_interval=0.01)
        self.client.track("u", "Owned")

    def on_error(self, error: Any, batch: Any) -> None:
        self.errors.append(error)


def test_dropped_owners_with_bound_method_callbacks_are_collected(dataplane: DevServer) -> None:
    """100 owners whose client's on_error is a bound method, dropped without shutdown():
    owners and clients are collected, their events delivered, their threads gone."""
    before = {t.ident for t in threading.enumerate()}
    owners = [_Owner(dataplane.url) for _ in range(100)]
    refs = [weakref.ref(o) for o in owners]
    clients = [weakref.ref(o.client) for o in owners]
    del owners
    gc.collect()
    assert all(r() is None for r in refs)
    assert all(c() is None for c in clients)
    assert dataplane.wait_for_events(100, timeout=20)

    def sdk_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate()
                if t.ident not in before and t.name.startswith("rudder-analytics")]

    assert wait_until(lambda: not sdk_threads(), timeout=15), sdk_threads()


def test_not_delivered_counts_each_event_once_with_a_slow_on_error() -> None:
    """A slow on_error during shutdown: client.not_delivered is the number of events that
    were not delivered, not twice that."""
    release = threading.Event()

    def on_error(error: Any, batch: Any) -> None:
        release.wait(3)

    client = make_client(refused_url(), on_error=on_error, upload_size=10, thread=2,
                         retry_base_delay=0.05, retry_max_delay=0.1)
    for i in range(50):
        client.track("u", "E", {"i": i})
    assert client.shutdown(timeout=1.0) is False
    release.set()
    assert client.not_delivered == 50
    assert client.stats()["delivered"] == 0


def test_callbacks_run_before_flush_returns(dataplane: DevServer) -> None:
    """flush() returns after the callbacks for what it delivered have run."""
    seen: list[int] = []

    def on_error(error: Any, batch: list[dict[str, Any]]) -> None:
        time.sleep(0.2)  # a slow callback: flush must still wait for it
        seen.append(len(batch))

    client = make_client(dataplane.url, on_error=on_error, upload_size=10)
    try:
        dataplane.fail_next(1, status=400)
        for i in range(10):
            client.track("u", "E", {"i": i})
        assert client.flush(timeout=10) is False
        assert seen == [10]
    finally:
        client.shutdown(timeout=5)
