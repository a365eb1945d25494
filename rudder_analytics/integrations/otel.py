"""OpenTelemetry observable instruments for ``client.stats()`` (needs ``opentelemetry-api``)::

    from rudder_analytics.integrations.otel import instrument

    instrument()          # the module-level client, on the global MeterProvider
    instrument(client, meter_provider=provider, attributes={"client": "billing"})

The instruments are asynchronous: the SDK does nothing until the MeterProvider's
reader collects, and then each callback reads one stats snapshot (no I/O). Meter
``rudder_analytics``; instruments (observable counters unless marked gauge):

- ``rudder_analytics.events.enqueued`` (``{event}``): accepted into the queue
- ``rudder_analytics.events.delivered`` (``{event}``): accepted by the data plane
- ``rudder_analytics.events.dropped`` (``{event}``): dropped, attribute ``reason``
- ``rudder_analytics.requests`` (``{request}``): HTTP requests to the data plane
- ``rudder_analytics.requests.failed`` (``{request}``): of which failed
- ``rudder_analytics.retries`` (``{request}``): of which were retries
- ``rudder_analytics.sent`` (``By``): request body bytes accepted
- ``rudder_analytics.queue.depth`` (gauge, ``{event}``): events waiting in the queue
- ``rudder_analytics.queue.size`` (gauge, ``By``): bytes waiting in the queue

Counters are cumulative since the client was built (or since fork, in a child).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Callable, Optional, Union

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Instrument, MeterProvider, Observation

import rudder_analytics

from ..client import Client
from ..stats import DROP_REASONS, StatsSnapshot
from ..version import VERSION

__all__ = ["Instrumentation", "instrument"]

METER_NAME = "rudder_analytics"

_COUNTERS = (
    ("rudder_analytics.events.enqueued", "enqueued", "{event}", "Events accepted into the queue."),
    ("rudder_analytics.events.delivered", "delivered", "{event}",
     "Events the data plane accepted."),
    ("rudder_analytics.requests", "requests", "{request}", "HTTP requests made to the data plane."),
    ("rudder_analytics.requests.failed", "failed_requests", "{request}",
     "HTTP requests that failed."),
    ("rudder_analytics.retries", "retries", "{request}", "HTTP requests that were retries."),
    ("rudder_analytics.sent", "bytes_sent", "By", "Request body bytes the data plane accepted."),
)
_GAUGES = (
    ("rudder_analytics.queue.depth", "queue_depth", "{event}", "Events waiting in the queue."),
    ("rudder_analytics.queue.size", "queue_bytes", "By", "Bytes of events waiting in the queue."),
)

StatsSource = Callable[[], Optional[StatsSnapshot]]
Attributes = dict[str, Union[str, bool, int, float]]


class Instrumentation:
    """The instruments :func:`instrument` created, reading one client's stats."""

    def __init__(self, stats: StatsSource, attributes: Attributes) -> None:
        self._stats = stats
        self.attributes = attributes
        self.instruments: list[Instrument] = []
        self.enabled = True
        """False stops reporting (OpenTelemetry has no way to remove an instrument)."""

    def _snapshot(self) -> Optional[StatsSnapshot]:
        return self._stats() if self.enabled else None

    def _field(self, key: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            stats = self._snapshot()
            if stats is None:
                return []
            return [Observation(stats[key], self.attributes)]  # type: ignore[literal-required]
        return observe

    def _dropped(self, _options: CallbackOptions) -> Iterable[Observation]:
        stats = self._snapshot()
        if stats is None:
            return []
        counts = stats["dropped"]
        return [Observation(counts.get(reason, 0), {**self.attributes, "reason": reason})
                for reason in sorted(set(DROP_REASONS) | set(counts))]


def _default_stats() -> Optional[StatsSnapshot]:
    return rudder_analytics.stats()


def instrument(client: Union[Client, StatsSource, None] = None, *,
               meter_provider: Optional[MeterProvider] = None,
               attributes: Optional[dict[str, Any]] = None) -> Instrumentation:
    """Create observable instruments reporting ``client``'s stats; returns them.

    ``client=None`` follows the module-level client (nothing is reported until it
    exists; it is never built here). ``meter_provider`` defaults to the global one.
    ``attributes`` are added to every observation (to tell several clients apart).
    """
    if client is None:
        source: StatsSource = _default_stats
    elif isinstance(client, Client):
        source = client.stats
    else:
        source = client
    meter = metrics.get_meter(METER_NAME, VERSION, meter_provider=meter_provider)
    result = Instrumentation(source, dict(attributes or {}))
    for name, key, unit, description in _COUNTERS:
        result.instruments.append(meter.create_observable_counter(
            name, callbacks=[result._field(key)], unit=unit, description=description))
    result.instruments.append(meter.create_observable_counter(
        "rudder_analytics.events.dropped", callbacks=[result._dropped], unit="{event}",
        description="Events dropped, by reason."))
    for name, key, unit, description in _GAUGES:
        result.instruments.append(meter.create_observable_gauge(
            name, callbacks=[result._field(key)], unit=unit, description=description))
    return result
