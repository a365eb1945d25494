"""The journal's life with its client (issue #12): a client collected without
shutdown() lets its journal deliver, release its lock and end its thread; a client
idle between events commits each event promptly."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rudder_analytics import Client
from rudder_analytics.devserver import DevServer
from rudder_analytics.journal import writer

KEY = "life"


@pytest.fixture()
def server() -> Iterator[DevServer]:
    """A data plane that accepts KEY."""
    with DevServer(write_keys=[KEY]) as dev:
        yield dev


def _journal_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "rudder-analytics-journal"]


def test_collected_client_releases_its_journal(tmp_path: Path, server: DevServer) -> None:
    """A client dropped without shutdown(): its events are delivered, its journal
    directory is released and removed, and the journal thread ends."""
    before = set(_journal_threads())
    client = Client(KEY, server.url, persist_dir=str(tmp_path), upload_interval=0.02,
                    atexit=False)
    for i in range(50):
        client.track("u", "e", message_id=f"c-{i}")
    del client
    gc.collect()
    assert server.wait_for_events(50, timeout=10)
    for thread in set(_journal_threads()) - before:
        thread.join(10)  # it ends once the workers delivered and exited
    assert not set(_journal_threads()) - before
    assert not list(tmp_path.glob("j-*"))  # everything delivered: nothing left on disk
    assert {e["messageId"] for e in server.events()} == {f"c-{i}" for i in range(50)}


def test_an_event_after_idle_is_committed_at_once(tmp_path: Path, server: DevServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """After the journal thread went idle, one event wakes it: it is committed well
    within the idle wait (not left for the next idle poll)."""
    committed = threading.Event()
    monkeypatch.setattr(writer, "on_commit", lambda n: committed.set())
    monkeypatch.setattr(writer, "IDLE_WAIT", 30.0)
    with Client(KEY, server.url, persist_dir=str(tmp_path), upload_interval=0.02,
                atexit=False) as client:
        client.track("u", "first")
        assert committed.wait(5)
        assert client.flush(5)
        for i in range(5):
            committed.clear()
            client.track("u", "again", message_id=f"a-{i}")
            assert committed.wait(5)  # the 30 s idle wait was cut short by the event


def test_several_workers_settle_every_event(tmp_path: Path, server: DevServer) -> None:
    """With three workers settling batches out of order, every event is found in its
    frame and acknowledged: nothing is left on disk once all is delivered."""
    with Client(KEY, server.url, persist_dir=str(tmp_path), thread=3, upload_size=20,
                upload_interval=0.01, atexit=False) as client:
        for i in range(3000):
            client.track("u", "e", {"i": i}, message_id=f"w-{i}")
        assert client.flush(20)
        assert server.wait_for_events(3000, timeout=20)
    assert not list(tmp_path.rglob("seg-*.log"))
    assert not list(tmp_path.glob("j-*"))
    assert len({e["messageId"] for e in server.events()}) == 3000
