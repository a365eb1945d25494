"""Capture what your code sends, in your own tests: no network, no data plane.

::

    from rudder_analytics import testing

    def test_signup_is_tracked():
        with testing.capture() as events:
            signup("u1", plan="pro")          # your code, calling the SDK
        events.assert_tracked("Signed Up", user_id="u1", properties={"plan": "pro"})
        assert len(events.of_type("identify")) == 1

With pytest, the ``rudder_events`` fixture does the same for one test (see
:mod:`rudder_analytics.pytest_plugin`).

While a capture is active, every message built by any client in the process
(the module-level calls, every :class:`~rudder_analytics.Client`, batches sent
with ``client.send``) is validated and built as usual, recorded here, and
neither queued nor sent. A call with bad arguments still raises its
:class:`~rudder_analytics.ValidationError`, so tests see what production would.
Captured messages are snapshots of what would go on the wire (JSON round trip:
a ``datetime`` property reads back as its ISO-8601 string), so later changes to
the dicts your code passed in do not change them.

Captures nest: an inner one records only its own span, an outer one records
everything, and each removes only itself on exit. Recording is thread-safe, and
:meth:`CapturedEvents.wait_for` waits (with a deadline) for messages built in
other threads.

Module-level calls need a configured default client. When none is configured
(no write key or data plane URL in the module settings or the environment), a
capture installs a stand-in default client that sends nothing, and removes it
on exit, so ``rudder_analytics.track(...)`` works in tests without setup. Pass
``stand_in_default=False`` to keep the usual :class:`ConfigurationError`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, Dict, List, Optional, Union, overload

from ._build.capture import add_capture_hook, remove_capture_hook
from ._build.encoding import decode_message
from ._module import facade
from ._testing_match import describe as _describe
from ._testing_match import expected_id as _id
from ._testing_match import looked_for as _looked_for
from ._testing_match import matches as _matches
from .client import Client

__all__ = ["CapturedEvents", "CapturedMessage", "capture"]

CapturedMessage = Dict[str, Any]
"""A captured message: the dict the SDK built, as it would be sent (see :mod:`.types`)."""

STAND_IN_WRITE_KEY = "rudder-analytics-testing"
STAND_IN_DATA_PLANE_URL = "http://localhost"

_MAX_SHOWN = 20
"""Captured messages listed in an assertion's failure message."""

_install_lock = threading.Lock()


class CapturedEvents:
    """Messages built while the capture is active, with filters and assertions.

    Use :func:`capture` (or this class) as a context manager. Reading and
    filtering work during and after the capture.
    """

    def __init__(self, *, stand_in_default: bool = True) -> None:
        self._messages: List[CapturedMessage] = []
        self._cond = threading.Condition(threading.Lock())
        self._active = False
        self._stand_in_default = stand_in_default
        self._stand_in: Optional[Client] = None  # the default client we installed, if any

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> CapturedEvents:
        """Begin capturing (what ``with`` does); returns self."""
        with _install_lock:
            if self._active:
                raise RuntimeError("this capture is already active")
            add_capture_hook(self._record)
            self._active = True
        if self._stand_in_default:
            self._install_stand_in()
        return self

    def stop(self) -> None:
        """Stop capturing and restore what was there before; idempotent."""
        with _install_lock:
            if not self._active:
                return
            self._active = False
            remove_capture_hook(self._record)  # ours only: bound methods compare by self
        self._remove_stand_in()

    def __enter__(self) -> CapturedEvents:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.stop()

    @property
    def active(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._active

    def _record(self, encoded: bytes) -> None:
        """The capture hook: called by the SDK with each message as encoded for sending."""
        snapshot = decode_message(encoded)
        with self._cond:
            self._messages.append(snapshot)
            self._cond.notify_all()

    def _install_stand_in(self) -> None:
        """A default client that sends nothing, when the module settings cannot build one."""
        self._stand_in = facade.install_default_if_unconfigured(
            lambda: Client(STAND_IN_WRITE_KEY, STAND_IN_DATA_PLANE_URL, send=False,
                           atexit=False))

    def _remove_stand_in(self) -> None:
        stand_in = self._stand_in
        if stand_in is None:
            return
        self._stand_in = None
        facade.remove_default(stand_in)
        stand_in.shutdown()

    # --- reading ----------------------------------------------------------------------

    @property
    def messages(self) -> List[CapturedMessage]:
        """Every captured message, oldest first (a copy of the list)."""
        with self._cond:
            return list(self._messages)

    def __len__(self) -> int:
        with self._cond:
            return len(self._messages)

    def __iter__(self) -> Iterator[CapturedMessage]:
        return iter(self.messages)

    @overload
    def __getitem__(self, index: int) -> CapturedMessage: ...

    @overload
    def __getitem__(self, index: slice) -> List[CapturedMessage]: ...

    def __getitem__(
        self, index: Union[int, slice]
    ) -> Union[CapturedMessage, List[CapturedMessage]]:
        with self._cond:
            return self._messages[index]

    def __repr__(self) -> str:
        return f"<CapturedEvents {len(self)} message(s), active={self._active}>"

    def clear(self) -> None:
        """Forget what was captured so far (the capture stays active)."""
        with self._cond:
            self._messages.clear()

    def wait_for(self, n: int, timeout: float = 5.0) -> bool:
        """Wait until at least ``n`` messages are captured; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._messages) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    # --- filters ----------------------------------------------------------------------

    def of_type(self, type: str) -> List[CapturedMessage]:
        """Messages of one call type: ``"track"``, ``"identify"``, ``"page"``, ..."""
        return [m for m in self.messages if m.get("type") == type]

    def named(self, name: str) -> List[CapturedMessage]:
        """Track calls whose ``event`` is ``name``, and page/screen calls of that ``name``."""
        return [m for m in self.messages
                if m.get("event") == name or (m.get("type") in ("page", "screen")
                                              and m.get("name") == name)]

    def for_user(self, user_id: Any) -> List[CapturedMessage]:
        """Messages whose ``userId`` is ``user_id`` (compared as the SDK stringifies it)."""
        wanted = _id(user_id, "user_id")
        return [m for m in self.messages if m.get("userId") == wanted]

    def for_anonymous(self, anonymous_id: Any) -> List[CapturedMessage]:
        """Messages whose ``anonymousId`` is ``anonymous_id``."""
        wanted = _id(anonymous_id, "anonymous_id")
        return [m for m in self.messages if m.get("anonymousId") == wanted]

    def find(
        self,
        type: Optional[str] = None,
        *,
        event: Optional[str] = None,
        name: Optional[str] = None,
        category: Optional[str] = None,
        user_id: Any = None,
        anonymous_id: Any = None,
        group_id: Any = None,
        previous_id: Any = None,
        properties: Optional[Mapping[str, Any]] = None,
        traits: Optional[Mapping[str, Any]] = None,
        context: Optional[Mapping[str, Any]] = None,
        integrations: Optional[Mapping[str, Any]] = None,
    ) -> List[CapturedMessage]:
        """Messages matching every filter given; mappings match as subsets.

        ``properties={"plan": "pro"}`` matches messages whose properties contain
        that key and value (others may be present); nested mappings likewise.
        """
        wanted: Dict[str, Any] = {}
        for key, value in (("type", type), ("event", event), ("name", name),
                           ("category", category)):
            if value is not None:
                wanted[key] = value
        for key, value, field in (("userId", user_id, "user_id"),
                                  ("anonymousId", anonymous_id, "anonymous_id"),
                                  ("groupId", group_id, "group_id"),
                                  ("previousId", previous_id, "previous_id")):
            if value is not None:
                wanted[key] = _id(value, field)
        for key, mapping in (("properties", properties), ("traits", traits),
                             ("context", context), ("integrations", integrations)):
            if mapping is not None:
                wanted[key] = mapping
        return [m for m in self.messages if _matches(m, wanted)]

    # --- assertions -------------------------------------------------------------------
    # Each failure says what was looked for (every filter given) and what was captured.
    # ``__tracebackhide__`` keeps these frames out of pytest's traceback.

    def _expect(self, kind: str, filters: Dict[str, Any], times: Optional[int]
                ) -> CapturedMessage:
        __tracebackhide__ = True
        given = {k: v for k, v in filters.items() if v is not None}
        found = self.find(kind, **given)
        if found and (times is None or len(found) == times):
            return found[0]
        what = _looked_for(kind, given)
        if times is not None and found:
            problem = f"expected {what} {times} time(s), found {len(found)}"
        else:
            problem = f"expected {what}, found none"
        raise AssertionError(f"{problem}\n{self._summary()}")

    def _summary(self) -> str:
        messages = self.messages
        if not messages:
            return "nothing was captured"
        lines = [f"captured {len(messages)} message(s):"]
        lines.extend(f"  {_describe(m)}" for m in messages[:_MAX_SHOWN])
        if len(messages) > _MAX_SHOWN:
            lines.append(f"  ... and {len(messages) - _MAX_SHOWN} more")
        return "\n".join(lines)

    def assert_tracked(
        self,
        event: str,
        user_id: Any = None,
        *,
        anonymous_id: Any = None,
        properties: Optional[Mapping[str, Any]] = None,
        context: Optional[Mapping[str, Any]] = None,
        integrations: Optional[Mapping[str, Any]] = None,
        times: Optional[int] = None,
    ) -> CapturedMessage:
        """Assert a track call of ``event`` matching the filters; returns the first match.

        ``times`` asserts the exact number of matching calls.
        """
        __tracebackhide__ = True
        return self._expect("track", {
            "event": event, "user_id": user_id, "anonymous_id": anonymous_id,
            "properties": properties, "context": context, "integrations": integrations,
        }, times)

    def assert_not_tracked(
        self,
        event: str,
        user_id: Any = None,
        *,
        anonymous_id: Any = None,
        properties: Optional[Mapping[str, Any]] = None,
    ) -> None:
        """Assert that no track call of ``event`` (matching the filters given) was captured."""
        __tracebackhide__ = True
        given = {k: v for k, v in {"event": event, "user_id": user_id,
                                    "anonymous_id": anonymous_id,
                                    "properties": properties}.items() if v is not None}
        found = self.find("track", **given)
        if found:
            raise AssertionError(
                f"expected no {_looked_for('track', given)}, found {len(found)}\n"
                f"{self._summary()}")

    def assert_identified(
        self,
        user_id: Any = None,
        *,
        anonymous_id: Any = None,
        traits: Optional[Mapping[str, Any]] = None,
        context: Optional[Mapping[str, Any]] = None,
        times: Optional[int] = None,
    ) -> CapturedMessage:
        """Assert an identify call matching the filters (``traits`` as a subset)."""
        __tracebackhide__ = True
        return self._expect("identify", {
            "user_id": user_id, "anonymous_id": anonymous_id, "traits": traits,
            "context": context,
        }, times)

    def assert_paged(
        self,
        name: Optional[str] = None,
        user_id: Any = None,
        *,
        anonymous_id: Any = None,
        category: Optional[str] = None,
        properties: Optional[Mapping[str, Any]] = None,
        times: Optional[int] = None,
    ) -> CapturedMessage:
        """Assert a page call matching the filters."""
        __tracebackhide__ = True
        return self._expect("page", {
            "name": name, "user_id": user_id, "anonymous_id": anonymous_id,
            "category": category, "properties": properties,
        }, times)

    def assert_screened(
        self,
        name: Optional[str] = None,
        user_id: Any = None,
        *,
        anonymous_id: Any = None,
        category: Optional[str] = None,
        properties: Optional[Mapping[str, Any]] = None,
        times: Optional[int] = None,
    ) -> CapturedMessage:
        """Assert a screen call matching the filters."""
        __tracebackhide__ = True
        return self._expect("screen", {
            "name": name, "user_id": user_id, "anonymous_id": anonymous_id,
            "category": category, "properties": properties,
        }, times)

    def assert_grouped(
        self,
        group_id: Any,
        user_id: Any = None,
        *,
        anonymous_id: Any = None,
        traits: Optional[Mapping[str, Any]] = None,
        times: Optional[int] = None,
    ) -> CapturedMessage:
        """Assert a group call into ``group_id`` matching the filters."""
        __tracebackhide__ = True
        return self._expect("group", {
            "group_id": group_id, "user_id": user_id, "anonymous_id": anonymous_id,
            "traits": traits,
        }, times)

    def assert_aliased(
        self, previous_id: Any, user_id: Any = None, *, times: Optional[int] = None
    ) -> CapturedMessage:
        """Assert an alias call from ``previous_id`` (to ``user_id``, if given)."""
        __tracebackhide__ = True
        return self._expect("alias", {"previous_id": previous_id, "user_id": user_id}, times)

    def assert_nothing_sent(self) -> None:
        """Assert that no message at all was captured."""
        __tracebackhide__ = True
        if len(self):
            raise AssertionError(f"expected no messages\n{self._summary()}")


def capture(*, stand_in_default: bool = True) -> CapturedEvents:
    """A :class:`CapturedEvents` to use as ``with capture() as events:``."""
    return CapturedEvents(stand_in_default=stand_in_default)
