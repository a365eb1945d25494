"""Synchronous sends: sync mode, batch blocks and ``client.send(batch)``, in the caller's thread.

Each calling thread gets its own :class:`~rudder_analytics._sync.delivery.Deliverer`
(``requests`` sessions are never shared between threads), queued=False for the
accounting, and the client's one ``Retry-After`` hold. Every send is bounded by
``sync_deadline``; a failure raises only with ``raise_on_error``.
"""

from __future__ import annotations

import threading
import time
from typing import Optional

from .._core.batching import BodyBudget, chunk_messages
from ..config import Config
from ..stats import Stats
from .delivery import Deliverer, DeliveryReport
from .retry import RetryAfterGate

__all__ = ["SyncSender"]


class SyncSender:
    """Delivers lists of encoded messages now, in whichever thread asks."""

    def __init__(self, config: Config, stats: Stats, gate: RetryAfterGate) -> None:
        self._config = config
        self._stats = stats
        self._gate = gate
        self._local = threading.local()

    def after_fork(self, gate: RetryAfterGate) -> None:
        """A forked child: the parent's sessions are not ours; the pool's new hold is."""
        self._local = threading.local()
        self._gate = gate

    def _deliverer(self) -> Deliverer:
        deliverer: Optional[Deliverer] = getattr(self._local, "deliverer", None)
        if deliverer is None:
            deliverer = Deliverer(self._config, self._stats, gate=self._gate, queued=False)
            self._local.deliverer = deliverer
        return deliverer

    def send(self, messages: list[bytes]) -> DeliveryReport:
        """One request's worth (sync mode), within ``sync_deadline``, retries included."""
        deadline = time.monotonic() + self._config.sync_deadline
        return self.raise_if_asked(self._deliverer().deliver(messages, deadline=deadline))

    def send_all(self, messages: list[bytes]) -> DeliveryReport:
        """A batch block: as few requests as the server's size limit allows, each within
        ``sync_deadline``."""
        result = DeliveryReport()
        budget = BodyBudget.for_batch(self._config.max_request_bytes)
        for chunk in chunk_messages(messages, budget):
            report = self._deliverer().deliver(
                chunk, deadline=time.monotonic() + self._config.sync_deadline)
            result.delivered += report.delivered
            result.failed += report.failed
            result.requests.extend(report.requests)
        return result

    def raise_if_asked(self, report: DeliveryReport) -> DeliveryReport:
        """With ``raise_on_error``: raise the first failed request's error."""
        if not report.ok and self._config.raise_on_error:
            error = report.first_error()
            if error is not None:
                raise error
        return report
