"""Builders of RudderStack messages, one per call type, plus ids and timestamps.

A builder validates its arguments (see :mod:`.validation`) and returns the
message as a plain dict in the shape the data plane expects: ``type``,
``messageId``, ``originalTimestamp`` (call time), ``timestamp`` only when the
caller gave one, ``userId`` and ``anonymousId`` (``None`` when not given, as
rudder-sdk-python and analytics-python send them), ``context.library``,
``channel: "server"`` and ``integrations`` (``{"All": true}`` by default).
``sentAt`` is added per attempt by the worker, not here.
"""

from __future__ import annotations

import datetime as _dt
import functools
import itertools
import os
import time
from collections.abc import Mapping
from typing import Any, Callable

from ..version import VERSION
from . import validation as v

__all__ = [
    "LIBRARY",
    "build_alias",
    "build_group",
    "build_identify",
    "build_page",
    "build_screen",
    "build_track",
    "format_timestamp",
    "new_message_id",
    "now_iso",
    "reseed_message_ids",
]

LIBRARY_NAME = "rudder-analytics-python"
LIBRARY = {"name": LIBRARY_NAME, "version": VERSION}

# --- message ids ------------------------------------------------------------------------
# uuid.uuid4() costs ~5 µs on a small machine, the largest single item of a track()
# call. Ids here are RFC 4122 version-4 strings whose first 74 bits are random per
# process (drawn again after fork) and whose last 48 bits count up: unique within a
# process by construction and across processes by 74 random bits, at ~0.3 µs.

_id_prefix = ""
_id_counter = itertools.count()
_id_pid = 0


def reseed_message_ids() -> None:
    """Draw a new random id prefix; called at import and in a forked child."""
    global _id_prefix, _id_counter, _id_pid
    _id_pid = os.getpid()
    h = os.urandom(10).hex()
    variant = "89ab"[int(h[15], 16) & 3]
    _id_prefix = f"{h[:8]}-{h[8:12]}-4{h[12:15]}-{variant}{h[16:19]}-"
    _id_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))


reseed_message_ids()
if hasattr(os, "register_at_fork"):  # a forked child must not repeat its parent's ids
    os.register_at_fork(after_in_child=reseed_message_ids)


def check_message_ids_after_fork() -> None:
    """Reseed if this process was forked without Python's fork hooks (uWSGI's C-level fork
    without ``py-call-uwsgi-fork-hooks``): workers must not share their master's ids."""
    if os.getpid() != _id_pid:
        reseed_message_ids()


def new_message_id() -> str:
    """A fresh version-4 UUID string for ``messageId``."""
    return "%s%012x" % (_id_prefix, next(_id_counter) & 0xFFFFFFFFFFFF)  # noqa: UP031 (faster)


# --- timestamps -------------------------------------------------------------------------
# ISO-8601 UTC with milliseconds and a "+00:00" offset, e.g. 2026-08-19T12:00:00.123+00:00:
# what the peer SDKs send, and what datetime.fromisoformat() reads on every supported Python
# (3.9 and 3.10 refuse a "Z"). The data plane parses either. Formatting costs
# ~1.5 µs; at high call rates many calls share a millisecond,
# so the last string is cached (an immutable tuple swapped whole: no lock needed).

_last_ms: tuple[int, str] = (-1, "")


_last_second: tuple[int, str] = (-1, "")


def _format_ms(ms: int) -> str:
    """ISO-8601 for epoch milliseconds ``ms``; the part up to the second is formatted once
    a second (``strftime`` costs ~1 µs, a call that starts a new millisecond pays it)."""
    global _last_second
    seconds, millis = divmod(ms, 1000)
    cached = _last_second
    if cached[0] != seconds:
        cached = _last_second = (
            seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return "%s.%03d+00:00" % (cached[1], millis)  # noqa: UP031 (faster than format)


def now_iso() -> str:
    """The current time as ISO-8601 UTC with milliseconds (``...T12:00:00.123+00:00``)."""
    global _last_ms
    ms = int(time.time() * 1000)
    cached = _last_ms
    if cached[0] == ms:
        return cached[1]
    text = _format_ms(ms)
    _last_ms = (ms, text)
    return text


def format_timestamp(value: _dt.datetime) -> str:
    """An aware datetime as ISO-8601 UTC with milliseconds."""
    value = value.astimezone(_dt.timezone.utc)
    # not strftime("%Y"): glibc does not zero-pad years before 1000 ("5-01-01T...")
    return f"{value.year:04d}" + value.strftime("-%m-%dT%H:%M:%S") + \
        f".{value.microsecond // 1000:03d}+00:00"


# --- builders ---------------------------------------------------------------------------

MessageDict = dict[str, Any]
"""A message as the builders make it (the typed public view: ``rudder_analytics.Message``)."""


def _common(
    message: MessageDict,
    user_id: Any,
    anonymous_id: Any,
    context: Any,
    timestamp: Any,
    integrations: Any,
    message_id: Any,
) -> MessageDict:
    """Fill the fields shared by every call type, validating them on the way."""
    uid = v.optional_id(user_id, "user_id")
    aid = v.optional_id(anonymous_id, "anonymous_id")
    if uid is None and aid is None:
        v.check_identity(uid, aid)
    message["userId"] = uid
    message["anonymousId"] = aid
    if context is None:
        message["context"] = {"library": LIBRARY}
    else:
        ctx = dict(v.optional_mapping(context, "context") or ())
        ctx["library"] = LIBRARY
        message["context"] = ctx
    if integrations is None:
        message["integrations"] = {"All": True}
    else:
        message["integrations"] = v.optional_mapping(integrations, "integrations")
    mid = v.optional_id(message_id, "message_id") if message_id is not None else None
    message["messageId"] = mid if mid is not None else new_message_id()
    message["originalTimestamp"] = now_iso()
    if timestamp is not None:
        ts = v.timestamp(timestamp)
        assert ts is not None
        message["timestamp"] = format_timestamp(ts)
    message["channel"] = "server"
    return message


def build_track(
    user_id: Any = None,
    event: Any = None,
    properties: Any = None,
    context: Any = None,
    timestamp: Any = None,
    anonymous_id: Any = None,
    integrations: Any = None,
    message_id: Any = None,
) -> MessageDict:
    """A ``track`` message: ``event`` is required."""
    if type(event) is not str or not event.strip():
        event = v.required_name(event, "event")
    if type(properties) is not dict:
        properties = v.optional_mapping(properties, "properties")
    if (context is None and integrations is None and timestamp is None and message_id is None
            and anonymous_id is None and type(user_id) is str and user_id.isascii()
            and user_id.isprintable() and user_id.strip()):
        # The common call, built in one dict display: what _common makes for it, in its
        # key order, without its per-field checks (~0.1 µs less per call).
        return {"type": "track", "event": event, "properties": properties or {},
                "userId": user_id, "anonymousId": None, "context": {"library": LIBRARY},
                "integrations": {"All": True}, "messageId": new_message_id(),
                "originalTimestamp": now_iso(), "channel": "server"}
    message: MessageDict = {"type": "track", "event": event, "properties": properties or {}}
    return _common(message, user_id, anonymous_id, context, timestamp, integrations, message_id)


def build_identify(
    user_id: Any = None,
    traits: Any = None,
    context: Any = None,
    timestamp: Any = None,
    anonymous_id: Any = None,
    integrations: Any = None,
    message_id: Any = None,
) -> MessageDict:
    """An ``identify`` message: traits go both top level and in ``context.traits``."""
    traits_map: Mapping[str, Any] = v.optional_mapping(traits, "traits") or {}
    message: MessageDict = {"type": "identify", "traits": traits_map}
    _common(message, user_id, anonymous_id, context, timestamp, integrations, message_id)
    if traits_map:
        message["context"]["traits"] = traits_map
    return message


def _page_like(
    kind: str,
    user_id: Any = None,
    category: Any = None,
    name: Any = None,
    properties: Any = None,
    context: Any = None,
    timestamp: Any = None,
    anonymous_id: Any = None,
    integrations: Any = None,
    message_id: Any = None,
) -> MessageDict:
    props = v.optional_mapping(properties, "properties") or {}
    name_text = v.optional_name(name, "name")
    category_text = v.optional_name(category, "category")
    message: MessageDict = {"type": kind}
    if name_text is not None:  # top level only, as the peer SDKs send it
        message["name"] = name_text
    if category_text is not None:
        message["category"] = category_text
    message["properties"] = props
    return _common(message, user_id, anonymous_id, context, timestamp, integrations, message_id)


build_page: Callable[..., MessageDict] = functools.partial(_page_like, "page")
"""A ``page`` message; ``name`` and ``category`` are top-level fields (not copied into
``properties``). Arguments as :meth:`Client.page`."""

build_screen: Callable[..., MessageDict] = functools.partial(_page_like, "screen")
"""A ``screen`` message, shaped like ``page``."""


def build_group(
    user_id: Any = None,
    group_id: Any = None,
    traits: Any = None,
    context: Any = None,
    timestamp: Any = None,
    anonymous_id: Any = None,
    integrations: Any = None,
    message_id: Any = None,
) -> MessageDict:
    """A ``group`` message: ``group_id`` is required."""
    message: MessageDict = {
        "type": "group",
        "groupId": v.required_id(group_id, "group_id"),
        "traits": v.optional_mapping(traits, "traits") or {},
    }
    return _common(message, user_id, anonymous_id, context, timestamp, integrations, message_id)


def build_alias(
    previous_id: Any = None,
    user_id: Any = None,
    context: Any = None,
    timestamp: Any = None,
    integrations: Any = None,
    message_id: Any = None,
    anonymous_id: Any = None,
) -> MessageDict:
    """An ``alias`` message: ``previous_id`` is required."""
    previous = v.required_id(previous_id, "previous_id")
    message: MessageDict = {"type": "alias", "previousId": previous}
    return _common(message, user_id, anonymous_id, context, timestamp, integrations, message_id)


BUILDERS: dict[str, Callable[..., MessageDict]] = {
    "track": build_track,
    "identify": build_identify,
    "page": build_page,
    "screen": build_screen,
    "group": build_group,
    "alias": build_alias,
}
