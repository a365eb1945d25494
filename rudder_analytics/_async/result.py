"""What event calls return: ``(success, message)``, a tuple that refuses ``await``.

``client.track(...)`` is synchronous on an event loop as off it (it only
queues). ``await client.track(...)`` would otherwise fail with Python's bare
"object tuple can't be used in 'await' expression"; this says why instead.
"""

from __future__ import annotations

from typing import Any, Generator

__all__ = ["AWAIT_MESSAGE", "CallResult"]

AWAIT_MESSAGE = (
    "event calls are synchronous and never wait for the network: call "
    "client.track(...) without 'await' (it returns (success, message) at once); "
    "to wait for delivery, 'await client.aflush()'"
)


class CallResult(tuple[bool, dict[str, Any]]):
    """``(success, message)``; a plain tuple in every way except that awaiting it raises."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, Any]:
        raise TypeError(AWAIT_MESSAGE)
