"""A drop-in ``Deliverer`` built on the delivery core (phase 2 of issue #14 wires it in).

Same constructor and :meth:`Deliverer.deliver` signature as
:class:`rudder_analytics._sync.delivery.Deliverer`; the policy is the core's
:class:`~rudder_analytics._core.delivery.Delivery`, run by the blocking driver,
and the accounting is :class:`~rudder_analytics._report.sink.StatsSink`. Nothing
imports this module yet: ``delivery.py`` can become ``from ._sync.deliverer
import Deliverer`` plus re-exports of the report types.
"""

from __future__ import annotations

import threading
from typing import Optional

from .._core.delivery import Delivery
from .._core.outcomes import DeliveryReport
from .._core.policy import RetryPolicy
from .._report.sink import StatsSink
from ..config import Config
from ..stats import Stats
from . import driver
from .retry import RetryAfterGate
from .transport import Transport

__all__ = ["Deliverer"]


class Deliverer:
    """Sends chunks through one :class:`Transport`, applying the core's policy."""

    def __init__(
        self,
        config: Config,
        stats: Stats,
        transport: Optional[Transport] = None,
        gate: Optional[RetryAfterGate] = None,
        queued: bool = True,
    ) -> None:
        self._config = config
        self.transport: Transport = transport or Transport(config)
        self._gate = gate or RetryAfterGate()
        """Shared by the workers of one client: a Retry-After holds back all of them."""
        self._queued = queued
        """True for the workers (events from the queue); False for synchronous sends."""
        self._policy = RetryPolicy.from_config(config)
        self._sink = StatsSink(stats, queued=queued, url=config.batch_url)

    def deliver(
        self,
        messages: list[bytes],
        cancel: Optional[threading.Event] = None,
        deadline: Optional[float] = None,
        defer: bool = False,
    ) -> DeliveryReport:
        """Send ``messages``; split on 413; retry transient failures until done or out of time.

        As :meth:`rudder_analytics._sync.delivery.Deliverer.deliver`: ``cancel`` ends any wait
        (what waited is dropped as ``shutdown``), ``deadline`` bounds the whole delivery,
        ``defer`` (workers, no ``deadline``) hands back chunks whose ``Retry-After``
        outlasts ``retry_deadline`` in ``report.deferred``.
        """
        machine = Delivery(
            messages, self._policy, deadline=deadline, hold=self._gate, sink=self._sink,
            keep_deferred=defer and deadline is None, url=self._config.batch_url,
            attempt_timeout=self.transport.attempt_timeout,
            deadline_name="flush deadline" if self._queued else "sync_deadline",
        )
        return driver.run(machine, self.transport, cancel)
