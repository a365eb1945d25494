"""gevent: with ``gevent.monkey.patch_all()`` first thing, events are delivered and flush()
returns. This is what ``tox -e gevent`` runs (CI runs it).

The SDK runs in a fresh interpreter that patches everything before importing anything
else; the local data plane runs in this (unpatched) process, over loopback HTTP.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator

import pytest

from rudder_analytics.devserver import DevServer
from tests.helpers_reliability import last_json_line, run_script

pytest.importorskip("gevent")

WRITE_KEY = "test-write-key"


@pytest.fixture
def server() -> Iterator[DevServer]:
    """A local data plane for one test."""
    with DevServer(write_keys=(WRITE_KEY,)) as srv:
        yield srv


GEVENT_SCRIPT = """
from gevent import monkey
monkey.patch_all()

import json, sys, threading, time
import gevent
from rudder_analytics import Client

assert monkey.is_module_patched("threading") and monkey.is_module_patched("socket")
url, phase = sys.argv[1], sys.argv[2]
client = Client("test-write-key", url, upload_interval=0.05, upload_size=50, thread=2,
                retry_base_delay=0.01, retry_max_delay=0.05, timeout=2.0, shutdown_timeout=10)

def produce(index, count):
    ids = []
    for seq in range(count):
        ok, message = client.track(f"greenlet-{index}", "Gevent Event", {"seq": seq})
        assert ok
        ids.append(message["messageId"])
        if seq % 25 == 0:
            gevent.sleep(0)  # let other greenlets (and the workers) run
    return ids

jobs = [gevent.spawn(produce, i, 150) for i in range(10)]
gevent.joinall(jobs, timeout=30, raise_error=True)
ids = [m for job in jobs for m in job.value]
started = time.monotonic()
flushed = client.flush(timeout=30)
flush_seconds = time.monotonic() - started
workers = [t.name for t in threading.enumerate() if t.name.startswith("rudder-analytics-worker")]
if phase == "exit":  # more events, then exit without flush: the exit hook delivers them
    ids += produce(99, 300)
print(json.dumps({"ids": ids, "flushed": flushed, "flush_seconds": flush_seconds,
                  "workers": workers, "stats": client.stats()}))
"""


def test_gevent_events_are_delivered_and_flush_returns(server: DevServer) -> None:
    """Under patch_all: 1,500 events from 10 greenlets are stored once; flush() returns True."""
    result = run_script(GEVENT_SCRIPT, server.url, "flush", timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    report = last_json_line(result.stdout)
    assert report["flushed"] is True, report["stats"]
    assert report["flush_seconds"] < 30
    stored = collections.Counter(e["messageId"] for e in server.events())
    assert set(stored) == set(report["ids"]) and len(report["ids"]) == 1500
    assert max(stored.values()) == 1


def test_gevent_retries_and_retry_after_complete(server: DevServer) -> None:
    """Under patch_all: 503s, resets and a 429 Retry-After are waited out cooperatively."""
    server.fail_next(3, status=503)
    server.drop_next(2)
    server.fail_next(1, status=429, retry_after=1)
    result = run_script(GEVENT_SCRIPT, server.url, "flush", timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    report = last_json_line(result.stdout)
    assert report["flushed"] is True, report["stats"]
    assert report["stats"]["retries"] >= 6
    stored = collections.Counter(e["messageId"] for e in server.events())
    assert set(stored) == set(report["ids"]) and max(stored.values()) == 1


def test_gevent_exit_without_flush_delivers(server: DevServer) -> None:
    """Under patch_all: events queued at interpreter exit are delivered by the exit hook."""
    result = run_script(GEVENT_SCRIPT, server.url, "exit", timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    report = last_json_line(result.stdout)
    assert len(report["ids"]) == 1800
    stored = collections.Counter(e["messageId"] for e in server.events())
    assert set(stored) == set(report["ids"]) and max(stored.values()) == 1
    assert "not delivered" not in result.stderr
