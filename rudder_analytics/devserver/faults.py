"""The fault plan: scripted misbehaviour for the ingestion routes (``/v1/...``) only.

Steps queued with ``fail_next``, ``drop_next``, ``store_then_drop_next`` and ``hang_next``
apply to the next requests in the order they were queued (``fail_next(2)`` then
``drop_next(1)``: two failures, then one drop). When the queue is empty, an active
``fail_fraction`` rule may fail a request at random. Latency applies to every answered
ingestion request until it is set back to 0.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Dict, List, Optional, Union

__all__ = ["KINDS", "Fault", "FaultPlan"]

#: ``fail``: answer ``status`` without storing. ``drop``: close without reading or
#: answering. ``store_then_drop``: process and store as usual, then close without
#: answering. ``hang``: read the request, then wait ``seconds`` and close, storing nothing.
KINDS = ("fail", "drop", "store_then_drop", "hang")


@dataclass(frozen=True)
class Fault:
    """One scripted fault; ``body`` str is sent like Go's ``http.Error``, bytes verbatim."""

    kind: str
    status: int = 503
    retry_after: Optional[str] = None
    body: Union[str, bytes, None] = None
    seconds: float = 30.0

    def describe(self) -> Dict[str, Any]:
        """JSON-friendly form for the control API."""
        out: Dict[str, Any] = {"kind": self.kind}
        if self.kind == "fail":
            out["status"] = self.status
            if self.retry_after is not None:
                out["retry_after"] = self.retry_after
            if self.body is not None:
                out["body"] = (
                    self.body if isinstance(self.body, str) else self.body.decode("latin-1")
                )
        if self.kind == "hang":
            out["seconds"] = self.seconds
        return out


def retry_after_text(value: Union[int, float, str, None]) -> Optional[str]:
    """Header value for ``Retry-After``: whole seconds for numbers, strings as given."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("retry_after must be seconds or a string")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("retry_after must not be negative")
        return str(int(value)) if float(value).is_integer() else str(value)
    if isinstance(value, str):
        return value
    raise TypeError("retry_after must be seconds or a string")


class FaultPlan:
    """Thread-safe queue of fault steps plus the random-failure and latency settings."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: Deque[List[Any]] = deque()  # [Fault, remaining]
        self._fraction: Optional[float] = None
        self._fraction_fault: Optional[Fault] = None
        self._random = random.Random()
        self._latency = 0.0

    def add(self, fault: Fault, n: int) -> None:
        """Apply ``fault`` to the next ``n`` ingestion requests (after earlier steps)."""
        if fault.kind not in KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError("n must be a non-negative int")
        if n == 0:
            return
        with self._lock:
            self._queue.append([fault, n])

    def set_fraction(self, p: float, fault: Fault, seed: Optional[int] = None) -> None:
        """Fail each request not taken by a queued step with probability ``p``."""
        if not 0.0 <= p <= 1.0:
            raise ValueError("p must be between 0 and 1")
        with self._lock:
            self._fraction = p
            self._fraction_fault = fault
            self._random = random.Random(seed)

    def set_latency(self, seconds: float) -> None:
        """Delay every answered ingestion request by ``seconds``."""
        if seconds < 0:
            raise ValueError("latency must not be negative")
        with self._lock:
            self._latency = float(seconds)

    @property
    def latency(self) -> float:
        """Current added latency in seconds."""
        return self._latency

    def next_fault(self) -> Optional[Fault]:
        """The fault for the request now arriving, if any (consumes one queued step)."""
        with self._lock:
            if self._queue:
                step = self._queue[0]
                step[1] -= 1
                if step[1] <= 0:
                    self._queue.popleft()
                fault: Fault = step[0]
                return fault
            if (
                self._fraction_fault is not None
                and self._fraction
                and self._random.random() < self._fraction
            ):
                return self._fraction_fault
            return None

    def clear(self) -> None:
        """Remove every step, the random failures and the latency."""
        with self._lock:
            self._queue.clear()
            self._fraction = None
            self._fraction_fault = None
            self._latency = 0.0

    def snapshot(self) -> Dict[str, Any]:
        """The plan as JSON-friendly data (for ``GET /_dev/faults``)."""
        with self._lock:
            return {
                "queue": [{**f.describe(), "remaining": n} for f, n in self._queue],
                "fail_fraction": (
                    None
                    if self._fraction_fault is None
                    else {"p": self._fraction, **self._fraction_fault.describe()}
                ),
                "latency": self._latency,
            }
