"""The blocking driver of the delivery core over the real requests Transport and a local
data plane: the integration layer below tests/unit's fake-clock scenarios."""

from __future__ import annotations

from rudder_analytics._build.encoding import encode_message
from rudder_analytics._core.delivery import Delivery, Hold
from rudder_analytics._core.policy import RetryPolicy
from rudder_analytics._report.sink import StatsSink
from rudder_analytics._sync import driver
from rudder_analytics._sync.transport import Transport
from rudder_analytics.config import Config
from rudder_analytics.devserver import DevServer
from rudder_analytics.stats import Stats

from .conftest import FAST, WRITE_KEY


def _messages(n: int, pad: int = 0) -> list[bytes]:
    return [encode_message({"type": "track", "userId": "u", "event": f"E{i}",
                            "messageId": f"m{i}", "properties": {"pad": "x" * pad}}, 10**6)
            for i in range(n)]


def test_sync_driver_retries_and_delivers(dataplane: DevServer) -> None:
    """503 then 200 through the real Transport: one retry, everything stored, stats counted."""
    config = Config.build(WRITE_KEY, dataplane.url, **FAST)
    stats = Stats()
    dataplane.fail_next(1, status=503)
    machine = Delivery(_messages(3), RetryPolicy.from_config(config), now=0.0, hold=Hold(),
                       sink=StatsSink(stats))
    transport = Transport(config)
    try:
        report = driver.run(machine, transport)
    finally:
        transport.close()
    assert report.ok and report.delivered == 3
    assert [e["messageId"] for e in dataplane.events()] == ["m0", "m1", "m2"]
    snapshot = stats.snapshot(0, 0, 0)
    assert snapshot["requests"] == 2 and snapshot["retries"] == 1
    assert snapshot["delivered"] == 3


def test_sync_driver_splits_on_413() -> None:
    """A server with a small size limit answers 413; the halves are delivered."""
    with DevServer(write_keys=(WRITE_KEY,), max_request_bytes=5_000) as server:
        config = Config.build(WRITE_KEY, server.url, **FAST)
        machine = Delivery(_messages(8, pad=900), RetryPolicy.from_config(config), now=0.0)
        transport = Transport(config)
        try:
            report = driver.run(machine, transport)
        finally:
            transport.close()
        assert report.ok and report.delivered == 8
        assert [e["messageId"] for e in server.events()] == [f"m{i}" for i in range(8)]
