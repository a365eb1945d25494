"""What a delivery produced: reports for the caller, outcome events for the reporter.

The state machine emits one outcome event per fact (a request answered, a
chunk dropped, a chunk deferred, messages delivered) to a sink; one reporter
(:mod:`rudder_analytics._report`) turns them into stats, ``on_drop``,
``on_error`` and warnings. The report types keep the shape of the seed-era
``DeliveryReport``/``RequestResult`` (``BatchResult`` is a ``DeliveryReport``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from ..exceptions import DeliveryError

__all__ = [
    "Attempted",
    "Deferred",
    "Delivered",
    "DeliveryReport",
    "DropReason",
    "Dropped",
    "Outcome",
    "RequestResult",
    "Retrying",
]


class DropReason:
    """The drop reasons the core can produce (the same strings as ``stats.DropReason``)."""

    TOO_LARGE = "too_large"
    REJECTED = "rejected"
    RETRIES_EXHAUSTED = "retries_exhausted"
    SHUTDOWN = "shutdown"


@dataclass
class RequestResult:
    """The final answer for one chunk of messages (after its retries)."""

    status_code: Optional[int]
    body: str
    messages: int
    delivered: bool
    attempts: int
    error: Optional[DeliveryError] = None


@dataclass
class DeliveryReport:
    """What became of the messages handed to one delivery."""

    delivered: int = 0
    failed: int = 0
    requests: list[RequestResult] = field(default_factory=list)
    deferred: list[list[bytes]] = field(default_factory=list)
    """Chunks kept for later: a ``Retry-After`` hold outlasts what remains of the deadline."""

    @property
    def ok(self) -> bool:
        """True when every message was delivered (nothing failed, nothing deferred)."""
        return self.failed == 0 and not self.deferred

    def first_error(self) -> Optional[DeliveryError]:
        """The error of the first failed request, if any."""
        for result in self.requests:
            if result.error is not None:
                return result.error
        return None


@dataclass(frozen=True)
class Attempted:
    """One request was answered (or failed below HTTP)."""

    messages: int
    wire_bytes: int
    ok: bool
    retry: bool
    """True for the second and later attempts of a chunk."""
    status_code: Optional[int]
    error: Optional[DeliveryError]


@dataclass(frozen=True)
class Retrying:
    """A request failed and its chunk waits for another attempt."""

    error: DeliveryError


@dataclass(frozen=True)
class Dropped:
    """A chunk will not be delivered: count it under ``reason`` and tell ``on_error``."""

    reason: str
    messages: list[bytes]
    error: DeliveryError


@dataclass(frozen=True)
class Deferred:
    """A chunk is handed back to be sent later (neither delivered nor dropped yet)."""

    messages: list[bytes]
    until: float
    """Monotonic time before which the data plane asked not to send."""


@dataclass(frozen=True)
class Delivered:
    """``count`` messages were delivered (emitted once, when the delivery is done)."""

    count: int


Outcome = Union[Attempted, Retrying, Dropped, Deferred, Delivered]

