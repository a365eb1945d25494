"""The one definition of "fits in a request", for the queue and for batch packing.

A body is ``{"batch":[...]}`` around the messages; each stored message adds its
own length plus :func:`~rudder_analytics._build.encoding.message_overhead` (its
``sentAt`` prefix and a comma). A message fits when the body stays within the
limit *after* adding it, counted before it is added; the first message of a body
always fits (a message is smaller than any body limit, see ``Config._check``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .._build.encoding import body_overhead, message_overhead

__all__ = ["BodyBudget", "body_size", "chunk_messages"]


class BodyBudget:
    """How many messages and bytes one request may carry."""

    def __init__(self, max_events: int, max_body: int) -> None:
        self.max_events = max_events
        """Messages per request at most (``upload_size``; unbounded for batch blocks)."""
        self.limit: int = max_body - body_overhead()
        """Bytes available to messages and their per-message overhead."""
        self.overhead: int = message_overhead()
        """What each message adds to a body beyond its own length."""

    @classmethod
    def for_queue(cls, upload_size: int, upload_bytes: int, max_request_bytes: int) -> BodyBudget:
        """The workers' budget: ``upload_size`` events within the smaller byte bound."""
        return cls(upload_size, min(upload_bytes, max_request_bytes))

    @classmethod
    def for_batch(cls, max_request_bytes: int) -> BodyBudget:
        """A batch block's budget: as many messages as the server's size limit allows."""
        return cls(2**62, max_request_bytes)

    def cost(self, message: bytes) -> int:
        """What ``message`` adds to a body."""
        return len(message) + self.overhead

    def fits(self, count: int, total: int, cost: int) -> bool:
        """Can a message of ``cost`` join ``count`` messages that cost ``total``?"""
        if count >= self.max_events:
            return False
        return count == 0 or total + cost <= self.limit


def chunk_messages(messages: Iterable[bytes], budget: BodyBudget) -> list[list[bytes]]:
    """Split ``messages`` into the fewest in-order chunks that each fit ``budget``."""
    chunks: list[list[bytes]] = []
    current: list[bytes] = []
    total = 0
    for message in messages:
        cost = budget.cost(message)
        if not budget.fits(len(current), total, cost):
            chunks.append(current)
            current, total = [], 0
        current.append(message)
        total += cost
    if current:
        chunks.append(current)
    return chunks


def body_size(messages: Sequence[bytes]) -> int:
    """The exact length of the body :func:`~rudder_analytics._build.encoding.build_body` makes."""
    count = max(len(messages), 1)  # an empty body still carries one sentAt prefix
    return body_overhead() + sum(len(m) for m in messages) + count * message_overhead() - 1
