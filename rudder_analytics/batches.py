"""The seed SDK's batch block, and batches stored for later.

::

    with client.batch() as batch:
        batch.context = {"ip": "10.81.20.10"}      # shared by every message
        batch.integrations = {"Amplitude": False}  # shared integrations hash
        batch.identify(user_id="12345", traits={"email": "a@b.c"})
        batch.track(user_id="12345", event="Item Sold", properties={"revenue": 9.95})
    batch.result.delivered

Each call is validated and encoded when it is made (a bad call raises inside
the block). Leaving the block normally sends every message synchronously, in
as few requests as the request size limit allows, through the same delivery
path as the workers (retries, 413 splits, ``on_error``). If the block raises,
nothing is sent. A :class:`Batch` serializes to JSON and back with its message
ids, so a resend after a crash does not create new events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, Callable, Optional, Protocol

from ._build.encoding import decode_message, encode_message
from ._build.messages import (
    BUILDERS,
    MessageDict,
    build_alias,
    build_group,
    build_identify,
    build_page,
    build_screen,
    build_track,
)
from ._sync.delivery import DeliveryReport
from .config import Config
from .exceptions import InvalidTypeError, ValidationError


class _Owner(Protocol):
    """What a batch needs of the client it belongs to (batches never import the client)."""

    @property
    def config(self) -> Config: ...

    def send_batch(self, batch: Batch) -> DeliveryReport:
        """Deliver ``batch`` now, in this thread, keeping its message ids."""
        ...

    async def asend(self, batch: Batch) -> DeliveryReport:
        """Deliver ``batch`` now from a coroutine, keeping its message ids."""
        ...

__all__ = ["Batch", "BatchResult"]

BatchResult = DeliveryReport
"""What a batch send produced: ``delivered``, ``failed``, ``ok`` and, per request,
its ``status_code``, ``body``, message count and error."""

_FORMAT_VERSION = 1


def _merge(shared: Optional[Mapping[str, Any]], own: Any) -> Any:
    """Shared keys first, the message's own keys win."""
    if not shared:
        return own
    if own is None:
        return dict(shared)
    if not isinstance(own, Mapping):
        return own  # the builder raises the usual typed error
    return {**shared, **own}


class Batch:
    """Messages that share a context and an integrations hash, sent together."""

    def __init__(
        self,
        client: Optional[_Owner] = None,
        context: Optional[Mapping[str, Any]] = None,
        integrations: Optional[Mapping[str, Any]] = None,
        max_message_size: Optional[int] = None,
    ) -> None:
        self.context: dict[str, Any] = dict(context or {})
        """Merged into each message's ``context`` (the message's own keys win)."""
        self.integrations: dict[str, Any] = dict(integrations or {})
        """Merged into each message's ``integrations`` (the message's own keys win)."""
        self.result: Optional[BatchResult] = None
        """Set when the batch has been sent."""
        self._client = client
        self._max_message_size = max_message_size or (
            client.config.max_message_size if client is not None
            else Config.max_message_size
        )
        self._encoded: list[bytes] = []

    # --- building ---------------------------------------------------------------------

    def _add(self, builder: Callable[..., MessageDict], args: tuple[Any, ...],
             context: Any, integrations: Any) -> MessageDict:
        message = builder(*args, context=_merge(self.context, context),
                          integrations=_merge(self.integrations, integrations))
        self._encoded.append(encode_message(message, self._max_message_size))
        return message

    def track(self, user_id: Any = None, event: Optional[str] = None,
              properties: Optional[dict[str, Any]] = None,
              context: Optional[dict[str, Any]] = None, timestamp: Any = None,
              anonymous_id: Any = None, integrations: Optional[dict[str, Any]] = None,
              message_id: Any = None) -> MessageDict:
        """Add a ``track`` call (arguments as :meth:`Client.track`); returns the message."""
        return self._add(_with(build_track, timestamp, anonymous_id, message_id),
                         (user_id, event, properties), context, integrations)

    def identify(self, user_id: Any = None, traits: Optional[dict[str, Any]] = None,
                 context: Optional[dict[str, Any]] = None, timestamp: Any = None,
                 anonymous_id: Any = None, integrations: Optional[dict[str, Any]] = None,
                 message_id: Any = None) -> MessageDict:
        """Add an ``identify`` call (arguments as :meth:`Client.identify`)."""
        return self._add(_with(build_identify, timestamp, anonymous_id, message_id),
                         (user_id, traits), context, integrations)

    def page(self, user_id: Any = None, category: Optional[str] = None,
             name: Optional[str] = None, properties: Optional[dict[str, Any]] = None,
             context: Optional[dict[str, Any]] = None, timestamp: Any = None,
             anonymous_id: Any = None, integrations: Optional[dict[str, Any]] = None,
             message_id: Any = None) -> MessageDict:
        """Add a ``page`` call (arguments as :meth:`Client.page`)."""
        return self._add(_with(build_page, timestamp, anonymous_id, message_id),
                         (user_id, category, name, properties), context, integrations)

    def screen(self, user_id: Any = None, category: Optional[str] = None,
               name: Optional[str] = None, properties: Optional[dict[str, Any]] = None,
               context: Optional[dict[str, Any]] = None, timestamp: Any = None,
               anonymous_id: Any = None, integrations: Optional[dict[str, Any]] = None,
               message_id: Any = None) -> MessageDict:
        """Add a ``screen`` call (arguments as :meth:`Client.screen`)."""
        return self._add(_with(build_screen, timestamp, anonymous_id, message_id),
                         (user_id, category, name, properties), context, integrations)

    def group(self, user_id: Any = None, group_id: Any = None,
              traits: Optional[dict[str, Any]] = None,
              context: Optional[dict[str, Any]] = None, timestamp: Any = None,
              anonymous_id: Any = None, integrations: Optional[dict[str, Any]] = None,
              message_id: Any = None) -> MessageDict:
        """Add a ``group`` call (arguments as :meth:`Client.group`)."""
        return self._add(_with(build_group, timestamp, anonymous_id, message_id),
                         (user_id, group_id, traits), context, integrations)

    def alias(self, previous_id: Any = None, user_id: Any = None,
              context: Optional[dict[str, Any]] = None, timestamp: Any = None,
              integrations: Optional[dict[str, Any]] = None, message_id: Any = None,
              anonymous_id: Any = None) -> MessageDict:
        """Add an ``alias`` call (arguments as :meth:`Client.alias`)."""
        return self._add(_with(build_alias, timestamp, anonymous_id, message_id),
                         (previous_id, user_id), context, integrations)

    # --- the block --------------------------------------------------------------------

    def __enter__(self) -> Batch:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        if exc_type is not None or self._client is None:
            return  # the block raised: send nothing, let the exception propagate
        self.result = self._client.send_batch(self)

    async def __aenter__(self) -> Batch:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        """``async with client.batch() as batch:`` delivers through the asyncio driver."""
        if exc_type is not None or self._client is None:
            return
        self.result = await self._client.asend(self)

    # --- contents and storage ---------------------------------------------------------

    def __len__(self) -> int:
        return len(self._encoded)

    def __iter__(self) -> Iterator[MessageDict]:
        return (decode_message(m) for m in self._encoded)

    @property
    def messages(self) -> list[MessageDict]:
        """The messages as dicts, in call order."""
        return list(self)

    def encoded(self) -> list[bytes]:
        """The messages as the encoded bytes that will be sent."""
        return list(self._encoded)

    def to_json(self) -> str:
        """Serialize, keeping message ids and timestamps, for :meth:`from_json`."""
        return json.dumps({"version": _FORMAT_VERSION, "messages": self.messages},
                          separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str, max_message_size: Optional[int] = None) -> Batch:
        """Rebuild a stored batch; each message is checked as a fresh call would be."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValidationError(f"not a stored batch: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
            raise ValidationError("not a stored batch: no 'messages' list")
        batch = cls(max_message_size=max_message_size)
        for index, message in enumerate(data["messages"]):
            _check_stored(message, index)
            batch._encoded.append(encode_message(message, batch._max_message_size))
        return batch


def _with(builder: Callable[..., MessageDict], timestamp: Any, anonymous_id: Any,
          message_id: Any) -> Callable[..., MessageDict]:
    """Bind the trailing keyword arguments every builder shares."""
    def build(*args: Any, **kwargs: Any) -> MessageDict:
        if timestamp is not None:
            kwargs["timestamp"] = timestamp
        if anonymous_id is not None:
            kwargs["anonymous_id"] = anonymous_id
        if message_id is not None:
            kwargs["message_id"] = message_id
        return builder(*args, **kwargs)
    return build


def _check_stored(message: Any, index: int) -> None:
    """A stored message must look like one the SDK built."""
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        raise InvalidTypeError(f"{where} must be an object")
    if message.get("type") not in BUILDERS:
        raise ValidationError(f"{where}.type must be one of {sorted(BUILDERS)}")
    if not (str(message.get("userId") or "").strip() or
            str(message.get("anonymousId") or "").strip()):
        raise ValidationError(f"{where} has neither userId nor anonymousId")
    if not isinstance(message.get("messageId"), str) or not message["messageId"].strip():
        raise ValidationError(f"{where}.messageId must be a non-empty string")
