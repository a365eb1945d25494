"""Typed shapes of the messages the SDK builds, for users who want ``mypy`` to check them.

Every event call returns ``(success, message)`` where ``message`` is a plain dict;
these ``TypedDict`` classes describe those dicts (and what
:mod:`rudder_analytics.testing` captures), field for field::

    from typing import cast
    from rudder_analytics.types import TrackMessage

    ok, message = client.track(user_id="42", event="Signed Up")
    track = cast(TrackMessage, message)
    track["event"]  # str, checked by mypy

Keys that are always present are required. ``userId`` and ``anonymousId`` are always
present, ``None`` when not given (one of the two is set), as in rudder-sdk-python and
analytics-python. ``timestamp`` (only when the caller gave one) and the page and
screen ``name``/``category`` (only when given) are optional. ``sentAt`` is added per request by
the worker and is not part of a built message. Nothing here runs at import:
these are annotations only.
"""

from __future__ import annotations

from typing import Any, Dict, Literal, Optional, TypedDict, Union

__all__ = [
    "AliasMessage",
    "Context",
    "GroupMessage",
    "IdentifyMessage",
    "LibraryInfo",
    "Message",
    "MessageType",
    "PageMessage",
    "ScreenMessage",
    "TrackMessage",
]

MessageType = Literal["track", "identify", "page", "screen", "group", "alias"]
"""The six call types."""


class LibraryInfo(TypedDict):
    """``context.library``: which SDK built the message."""

    name: str
    version: str


class _ContextRequired(TypedDict):
    """The required keys of ``context`` (``total=False`` applies to the rest)."""

    library: LibraryInfo


class Context(_ContextRequired, total=False):
    """``context``: the caller's keys plus ``library`` (and ``traits`` on identify)."""

    traits: Dict[str, Any]
    ip: str
    locale: str
    timezone: str
    userAgent: str


class _Common(TypedDict):
    """The keys every built message has, whatever its type."""

    userId: Optional[str]
    anonymousId: Optional[str]
    messageId: str
    originalTimestamp: str
    context: Context
    integrations: Dict[str, Any]
    channel: Literal["server"]


class _CommonOptional(_Common, total=False):
    """``timestamp``: present only when the caller gave one."""

    timestamp: str


class _TrackRequired(_CommonOptional):
    """The required keys of a ``track`` message."""

    type: Literal["track"]
    event: str
    properties: Dict[str, Any]


class TrackMessage(_TrackRequired, total=False):
    """A ``track`` call: an action ``event`` with its ``properties``."""


class _IdentifyRequired(_CommonOptional):
    """The required keys of an ``identify`` message."""

    type: Literal["identify"]
    traits: Dict[str, Any]


class IdentifyMessage(_IdentifyRequired, total=False):
    """An ``identify`` call: the user's ``traits`` (also in ``context.traits``)."""


class _PageRequired(_CommonOptional):
    """The required keys of a ``page`` message."""

    type: Literal["page"]
    properties: Dict[str, Any]


class PageMessage(_PageRequired, total=False):
    """A ``page`` call; ``name`` and ``category`` are top level (not in ``properties``)."""

    name: str
    category: str


class _ScreenRequired(_CommonOptional):
    """The required keys of a ``screen`` message."""

    type: Literal["screen"]
    properties: Dict[str, Any]


class ScreenMessage(_ScreenRequired, total=False):
    """A ``screen`` call, shaped like a page call."""

    name: str
    category: str


class _GroupRequired(_CommonOptional):
    """The required keys of a ``group`` message."""

    type: Literal["group"]
    groupId: str
    traits: Dict[str, Any]


class GroupMessage(_GroupRequired, total=False):
    """A ``group`` call: the user joins ``groupId``, whose ``traits`` are given."""


class _AliasRequired(_CommonOptional):
    """The required keys of an ``alias`` message."""

    type: Literal["alias"]
    previousId: str


class AliasMessage(_AliasRequired, total=False):
    """An ``alias`` call: ``previousId`` is merged into ``userId``."""


Message = Union[
    TrackMessage, IdentifyMessage, PageMessage, ScreenMessage, GroupMessage, AliasMessage
]
"""Any built message; narrow it on ``message["type"]``."""
