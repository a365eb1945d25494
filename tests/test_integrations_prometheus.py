"""The Prometheus collector, read through prometheus_client's own exposition and parser."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import rudder_analytics
from rudder_analytics import Client, ValidationError
from rudder_analytics.devserver import DevServer

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rudder_analytics.integrations.prometheus import (
    RudderStatsCollector,
    register,
)

WRITE_KEY = "test-write-key"
FAST = {"upload_interval": 0.05, "atexit": False, "retry_base_delay": 0.01}


@pytest.fixture
def server() -> Iterator[DevServer]:
    """A local data plane."""
    with DevServer(write_keys=(WRITE_KEY,)) as dev:
        yield dev


def _scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The registry's text exposition, parsed back: {(sample name, labels): value}."""
    text = generate_latest(registry).decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_scrape_reports_the_clients_stats(server: DevServer) -> None:
    """Each scrape shows delivered, dropped by reason, requests, bytes and queue gauges."""
    registry = CollectorRegistry()
    with Client(WRITE_KEY, server.url, **FAST) as client:
        register(client, registry)
        for n in range(3):
            client.track(user_id="u1", event="Counted", properties={"n": n})
        assert client.flush(timeout=10)
        with pytest.raises(ValidationError):
            client.track(user_id="u1")  # no event name: dropped as invalid
        stats = client.stats()
        samples = _scrape(registry)
    assert samples[("rudder_analytics_events_enqueued_total", ())] == 3
    assert samples[("rudder_analytics_events_delivered_total", ())] == 3
    assert samples[("rudder_analytics_events_dropped_total", (("reason", "invalid"),))] == 1
    assert samples[("rudder_analytics_events_dropped_total", (("reason", "queue_full"),))] == 0
    assert samples[("rudder_analytics_requests_total", ())] == stats["requests"] >= 1
    assert samples[("rudder_analytics_requests_failed_total", ())] == 0
    assert samples[("rudder_analytics_sent_bytes_total", ())] == stats["bytes_sent"] > 0
    assert samples[("rudder_analytics_queue_depth", ())] == 0
    assert samples[("rudder_analytics_queue_bytes", ())] == 0


def test_queue_gauges_and_failures_move(server: DevServer) -> None:
    """Queued events show in the gauges; failed requests and retries are counted."""
    registry = CollectorRegistry()
    client = Client(WRITE_KEY, server.url, **{**FAST, "upload_interval": 3600,
                                              "upload_size": 1000})
    try:
        register(client, registry)
        client.track(user_id="u1", event="Waiting")
        samples = _scrape(registry)
        assert samples[("rudder_analytics_queue_depth", ())] == 1
        assert samples[("rudder_analytics_queue_bytes", ())] > 0
        server.fail_next(1, status=503)
        assert client.flush(timeout=10)
        samples = _scrape(registry)
        assert samples[("rudder_analytics_requests_failed_total", ())] == 1
        assert samples[("rudder_analytics_retries_total", ())] == 1
        assert samples[("rudder_analytics_queue_depth", ())] == 0
    finally:
        client.shutdown(timeout=5)


def test_several_clients_by_label(server: DevServer) -> None:
    """Two clients share one collector, told apart by label values; duplicates refused."""
    registry = CollectorRegistry()
    web = Client(WRITE_KEY, server.url, send=False)
    billing = Client(WRITE_KEY, server.url, send=False)
    collector = register(web, registry, labels={"client": "web"})
    collector.add(billing, {"client": "billing"})
    with pytest.raises(ValueError, match="distinct values"):
        collector.add(billing, {"client": "web"})
    with pytest.raises(ValueError, match="distinct values"):
        collector.add(billing, {"name": "other"})
    web.track(user_id="u1", event="Counted")
    samples = _scrape(registry)
    assert samples[("rudder_analytics_events_dropped_total",
                    (("client", "billing"), ("reason", "shutdown")))] == 0
    assert ("rudder_analytics_queue_depth", (("client", "web"),)) in samples
    assert ("rudder_analytics_queue_depth", (("client", "billing"),)) in samples


def test_default_client_is_read_not_built(monkeypatch: pytest.MonkeyPatch,
                                          rudder_dataplane: DevServer) -> None:
    """register() with no client follows the module-level client and never builds it."""
    rudder_analytics.shutdown()
    monkeypatch.setattr(rudder_analytics, "default_client", None)
    registry = CollectorRegistry()
    register(registry=registry)
    assert _scrape(registry) == {}  # no default client yet: no samples, and none built
    assert rudder_analytics.stats() is None
    try:
        rudder_analytics.track(user_id="u1", event="Default")
        assert rudder_analytics.flush(timeout=10)
        samples = _scrape(registry)
        assert samples[("rudder_analytics_events_delivered_total", ())] == 1
    finally:
        rudder_analytics.shutdown()


def test_describe_does_not_read_stats() -> None:
    """Registering (which calls describe) reads no stats: a failing source is not called."""
    def source() -> Any:
        raise AssertionError("read at registration")

    registry = CollectorRegistry(auto_describe=True)
    collector = RudderStatsCollector(source)
    registry.register(collector)
    names = {family.name for family in collector.describe()}
    assert "rudder_analytics_events_dropped" in names and "rudder_analytics_queue_depth" in names
