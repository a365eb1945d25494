"""``before_send``: the user's hooks over each built message, in the caller's thread.

Each hook gets a copy of the message (the caller's own data is never changed)
and returns it, changed or not, or None to drop it (``filtered``). A hook that
raises drops the event (``hook_error``): an event a hook failed to scrub is
never sent. What the hooks return is checked like a message the SDK built.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Callable, Optional

from ..exceptions import InvalidTypeError, ValidationError
from .messages import MessageDict
from ..stats import DropReason, Stats

__all__ = ["run_before_send"]

Hook = Callable[[Any], Any]


def run_before_send(hooks: Sequence[Hook], message: MessageDict,
                    stats: Stats) -> Optional[MessageDict]:
    """Apply ``hooks`` in order to a copy of ``message``; None when one dropped it (counted).

    Raises :class:`~rudder_analytics.exceptions.ValidationError` when the result is
    not a message of the same type with a user or anonymous id.
    """
    current: Any = copy.deepcopy(message)
    for hook in hooks:
        try:
            current = hook(current)
        except Exception as exc:  # never send an event a hook failed to scrub
            stats.add_dropped(DropReason.HOOK_ERROR, 1, lambda: [message], enqueued=False,
                              cause=f"before_send raised {type(exc).__name__}")
            return None
        if current is None:
            stats.add_dropped(DropReason.FILTERED, 1, lambda: [message], enqueued=False)
            return None
    if not isinstance(current, dict) or current.get("type") != message["type"]:
        raise InvalidTypeError(
            f"before_send must return the message (a dict of type {message['type']!r}) "
            f"or None, not {type(current).__name__}")
    if current.get("userId") in (None, "") and current.get("anonymousId") in (None, ""):
        raise ValidationError("before_send removed both userId and anonymousId")
    result: MessageDict = current
    return result
