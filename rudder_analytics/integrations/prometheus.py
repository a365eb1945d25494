"""A Prometheus collector for ``client.stats()`` (needs ``prometheus_client``)::

    from rudder_analytics.integrations.prometheus import register

    register()          # the module-level client, in prometheus_client's default REGISTRY
    register(client)    # or a Client of your own

Each scrape reads one :meth:`~rudder_analytics.Client.stats` snapshot (a few counters
under a lock; no I/O) and exposes:

=============================================  =======  ================================
``rudder_analytics_events_enqueued_total``     counter  events accepted into the queue
``rudder_analytics_events_delivered_total``    counter  events the data plane accepted
``rudder_analytics_events_dropped_total``      counter  events dropped, label ``reason``
``rudder_analytics_requests_total``            counter  HTTP requests to the data plane
``rudder_analytics_requests_failed_total``     counter  of which failed
``rudder_analytics_retries_total``             counter  requests that were retries
``rudder_analytics_sent_bytes_total``          counter  request bytes accepted
``rudder_analytics_queue_depth``               gauge    events waiting in the queue
``rudder_analytics_queue_bytes``               gauge    bytes waiting in the queue
=============================================  =======  ================================

``labels`` adds constant labels; several clients share one collector, told apart by
label values: ``register(a, labels={"client": "web"}).add(b, {"client": "billing"})``.
The counters restart at zero in a forked child and in a new default client, which
Prometheus's ``rate()`` treats as a counter reset. prometheus_client's multiprocess
mode (gunicorn with ``PROMETHEUS_MULTIPROC_DIR``) does not support custom collectors:
there, serve each worker's metrics yourself, or use :mod:`.otel`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Callable, Optional, Union

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

import rudder_analytics

from ..client import Client
from ..stats import DROP_REASONS, StatsSnapshot

__all__ = ["RudderStatsCollector", "register"]

PREFIX = "rudder_analytics"

_COUNTERS = (
    ("events_enqueued", "enqueued", "Events accepted into the queue."),
    ("events_delivered", "delivered", "Events the data plane accepted."),
    ("requests", "requests", "HTTP requests made to the data plane."),
    ("requests_failed", "failed_requests", "HTTP requests that failed."),
    ("retries", "retries", "HTTP requests that were retries."),
    ("sent_bytes", "bytes_sent", "Request body bytes the data plane accepted."),
)
_GAUGES = (
    ("queue_depth", "queue_depth", "Events waiting in the queue."),
    ("queue_bytes", "queue_bytes", "Bytes of events waiting in the queue."),
)

StatsSource = Callable[[], Optional[StatsSnapshot]]


def _default_stats() -> Optional[StatsSnapshot]:
    return rudder_analytics.stats()


def _source(client: Union[Client, StatsSource, None]) -> StatsSource:
    if client is None:
        return _default_stats
    if isinstance(client, Client):
        return client.stats
    return client


class RudderStatsCollector(Collector):
    """Exposes the stats of one client, or of several told apart by labels.

    ``client=None``: the module-level client (nothing is exposed until it exists; the
    collector never builds it). A function returning a stats snapshot (or None) works
    too. :meth:`add` adds another client with its own label values.
    """

    def __init__(self, client: Union[Client, StatsSource, None] = None,
                 labels: Optional[dict[str, str]] = None) -> None:
        self._label_names = list(labels or {})
        self._sources: list[tuple[list[str], StatsSource]] = []
        self.add(client, labels)

    def add(self, client: Union[Client, StatsSource, None],
            labels: Optional[dict[str, str]] = None) -> None:
        """Expose another client's stats; ``labels`` must have the first one's names."""
        labels = labels or {}
        if list(labels) != self._label_names or any(
                values == list(labels.values()) for values, _ in self._sources):
            raise ValueError(f"each client needs distinct values for the labels "
                             f"{self._label_names} (got {labels})")
        self._sources.append((list(labels.values()), _source(client)))

    def _families(self, snapshots: list[tuple[list[str], StatsSnapshot]]) -> Iterator[Metric]:
        names = self._label_names
        for name, key, doc in _COUNTERS:
            family = CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=names)
            for values, stats in snapshots:
                family.add_metric(values, float(stats[key]))  # type: ignore[literal-required]
            yield family
        dropped = CounterMetricFamily(f"{PREFIX}_events_dropped",
                                      "Events dropped, by reason.", labels=[*names, "reason"])
        for values, stats in snapshots:
            counts = stats["dropped"]
            for reason in sorted(set(DROP_REASONS) | set(counts)):
                dropped.add_metric([*values, reason], float(counts.get(reason, 0)))
        yield dropped
        for name, key, doc in _GAUGES:
            gauge = GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=names)
            for values, stats in snapshots:
                gauge.add_metric(values, float(stats[key]))  # type: ignore[literal-required]
            yield gauge

    def collect(self) -> Iterable[Metric]:
        """One stats snapshot per client per scrape."""
        snapshots = []
        for values, source in self._sources:
            stats = source()
            if stats is not None:
                snapshots.append((values, stats))
        return list(self._families(snapshots))

    def describe(self) -> Iterable[Metric]:
        """The metric names, without reading stats (used when registering)."""
        return list(self._families([]))


def register(client: Union[Client, StatsSource, None] = None,
             registry: CollectorRegistry = REGISTRY,
             labels: Optional[dict[str, str]] = None) -> RudderStatsCollector:
    """Register a :class:`RudderStatsCollector` in ``registry`` and return it.

    Register once per registry: for a second client call ``collector.add(client,
    labels)``. Raises ``ValueError`` (from prometheus_client) if the names are already
    registered there; ``registry.unregister(collector)`` removes it.
    """
    collector = RudderStatsCollector(client, labels)
    registry.register(collector)
    return collector
