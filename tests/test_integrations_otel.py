"""OpenTelemetry instruments, collected by a real SDK MeterProvider with an in-memory reader."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import rudder_analytics
from rudder_analytics import Client
from rudder_analytics.devserver import DevServer

pytest.importorskip("opentelemetry.sdk.metrics")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from rudder_analytics.integrations.otel import instrument

WRITE_KEY = "test-write-key"
FAST = {"upload_interval": 0.05, "atexit": False, "retry_base_delay": 0.01}

Points = dict[tuple[str, tuple[tuple[str, Any], ...]], Any]


@pytest.fixture
def server() -> Iterator[DevServer]:
    """A local data plane."""
    with DevServer(write_keys=(WRITE_KEY,)) as dev:
        yield dev


@pytest.fixture
def reader() -> Iterator[tuple[InMemoryMetricReader, MeterProvider]]:
    """An SDK MeterProvider whose metrics are read in memory."""
    memory = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[memory])
    yield memory, provider
    provider.shutdown()


def _collect(memory: InMemoryMetricReader) -> tuple[Points, dict[str, Any]]:
    """One collection: {(name, attributes): value} and {name: metric} (for units, kinds)."""
    points: Points = {}
    metrics: dict[str, Any] = {}
    data = memory.get_metrics_data()
    for resource in data.resource_metrics if data is not None else ():
        for scope in resource.scope_metrics:
            assert scope.scope.name == "rudder_analytics"
            for metric in scope.metrics:
                metrics[metric.name] = metric
                for point in metric.data.data_points:
                    key = tuple(sorted(dict(point.attributes or {}).items()))
                    points[(metric.name, key)] = point.value
    return points, metrics


def test_instruments_report_the_clients_stats(server: DevServer, reader: Any) -> None:
    """Counters and gauges carry the client's stats, with units and the reason attribute."""
    memory, provider = reader
    client = Client(WRITE_KEY, server.url, **{**FAST, "upload_interval": 3600,
                                              "upload_size": 1000})
    try:
        instrument(client, meter_provider=provider, attributes={"service": "web"})
        client.track(user_id="u1", event="Waiting")
        client.track(user_id="u1", event="Waiting")
        points, metrics = _collect(memory)
        web = (("service", "web"),)
        assert points[("rudder_analytics.events.enqueued", web)] == 2
        assert points[("rudder_analytics.queue.depth", web)] == 2
        assert points[("rudder_analytics.queue.size", web)] > 0
        assert points[("rudder_analytics.events.delivered", web)] == 0
        assert metrics["rudder_analytics.sent"].unit == "By"
        assert metrics["rudder_analytics.events.delivered"].data.is_monotonic

        server.fail_next(1, status=503)
        assert client.flush(timeout=10)
        with pytest.raises(rudder_analytics.ValidationError):
            client.track(user_id="u1")  # dropped as invalid
        points, _ = _collect(memory)
        assert points[("rudder_analytics.events.delivered", web)] == 2
        assert points[("rudder_analytics.queue.depth", web)] == 0
        assert points[("rudder_analytics.requests.failed", web)] == 1
        assert points[("rudder_analytics.retries", web)] == 1
        assert points[("rudder_analytics.requests", web)] == client.stats()["requests"]
        assert points[("rudder_analytics.sent", web)] == client.stats()["bytes_sent"] > 0
        dropped = {dict(k)["reason"]: v for (name, k), v in points.items()
                   if name == "rudder_analytics.events.dropped"}
        assert dropped["invalid"] == 1 and dropped["queue_full"] == 0
    finally:
        client.shutdown(timeout=5)


def test_default_client_followed_not_built(reader: Any, monkeypatch: pytest.MonkeyPatch,
                                           rudder_dataplane: DevServer) -> None:
    """instrument() with no client reports the module-level client once it exists."""
    memory, provider = reader
    rudder_analytics.shutdown()
    monkeypatch.setattr(rudder_analytics, "default_client", None)
    instrumentation = instrument(meter_provider=provider)
    points, _ = _collect(memory)
    assert points == {} and rudder_analytics.stats() is None
    try:
        rudder_analytics.track(user_id="u1", event="Default")
        assert rudder_analytics.flush(timeout=10)
        points, _ = _collect(memory)
        assert points[("rudder_analytics.events.delivered", ())] == 1
        instrumentation.enabled = False
        points, _ = _collect(memory)
        assert ("rudder_analytics.events.delivered", ()) not in points
    finally:
        rudder_analytics.shutdown()

