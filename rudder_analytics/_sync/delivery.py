"""Delivery of a list of encoded messages, for every path that sends.

The background workers, sync mode, batch blocks and the CLI import all send
through :class:`Deliverer`: the I/O-free delivery core
(:class:`rudder_analytics._core.delivery.Delivery`: retries, 413 splits,
``Retry-After``, deadlines) run by the blocking driver over ``requests``
(:mod:`rudder_analytics._sync`), with its outcomes accounted in one place
(:class:`rudder_analytics._report.sink.StatsSink`). :meth:`Deliverer.deliver` returns a
:class:`DeliveryReport` and has already counted every message as delivered or
dropped and queued ``on_error`` once per failed request chunk, except the chunks
it *deferred* (a ``Retry-After`` beyond what remains of ``retry_deadline``),
which come back in ``report.deferred`` for the worker to send after the hold.
"""

from __future__ import annotations

from .._core.delivery import error_for
from .._core.outcomes import DeliveryReport, RequestResult
from .deliverer import Deliverer

__all__ = ["Deliverer", "DeliveryReport", "RequestResult", "error_for"]
