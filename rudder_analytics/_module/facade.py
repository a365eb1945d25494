"""The module-level API behind ``rudder_analytics.track(...)``: settings and a default client.

The settings are the package's own attributes (``rudder_analytics.write_key = ...``),
one per :class:`~rudder_analytics.config.Config` field plus the ``dataPlaneUrl`` and
``host`` aliases, derived from the dataclass so a new client option is a module
setting too. ``rudder_analytics.default_client`` is the client behind the calls, or
``None`` until the first call (or :func:`flush`) builds it, as in rudder-sdk-python
and Segment's analytics-python.

Lifecycle promises:

- Changing a setting *retires* the current client: the next call builds a new one, and
  the retired one shuts down (delivering what it queued) on a background thread. It
  stays registered with the exit hook (and SIGTERM handling) until that shutdown has
  finished, so an exit meanwhile waits for it, within its ``shutdown_timeout``. A call
  racing the change that the retired client refuses is made again on the new client:
  nothing is lost.
- After :func:`shutdown`, calls are refused and counted (``after_shutdown``) until a
  setting changes or ``default_client`` is assigned (``None`` builds a fresh one).
- Assigning ``default_client`` replaces the client without shutting the old one down
  (``mock.patch`` puts it back afterwards); a dropped client still delivers what it
  queued (its workers drain it, and the exit hook finishes it).
"""

from __future__ import annotations

import os
import threading
import types as _types
from typing import Any, Callable, Optional, cast

from ..batches import Batch
from ..client import Client
from ..config import Config
from ..exceptions import ClientClosedError, ConfigurationError
from ..stats import StatsSnapshot
from ..types import (
    AliasMessage,
    GroupMessage,
    IdentifyMessage,
    Message,
    PageMessage,
    ScreenMessage,
    TrackMessage,
)
from .settings import SETTING_SET, SETTINGS, URL_ALIASES, initial_value, unknown_setting

__all__ = [
    "SettingsModule",
    "alias",
    "batch",
    "current_client",
    "flush",
    "get_default_client",
    "group",
    "identify",
    "install_default_if_unconfigured",
    "join",
    "page",
    "remove_default",
    "screen",
    "shutdown",
    "stats",
    "track",
]

_package: Optional[_types.ModuleType] = None
_client: Optional[Client] = None  # or a stand-in a test installed (unittest.mock.Mock)
_closed = False  # shutdown() was called with no client: the next one is built closed
_lock = threading.RLock()


def _new_lock_in_child() -> None:
    global _lock
    _lock = threading.RLock()  # another thread may have held it at fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)

_RETIRE_GRACE = 0.05
"""Seconds a retired client keeps taking calls that fetched it just before the change."""

ResultT = tuple[bool, Message]


def bind(package: _types.ModuleType) -> None:
    """Called once by the package: where the settings live."""
    global _package
    _package = package
    for name in SETTINGS:
        if name not in package.__dict__:
            package.__dict__[name] = initial_value(name)
    package.__dict__["default_client"] = _client


def _install(client: Optional[Client]) -> None:
    """Make ``client`` the default (under ``_lock``): the facade's and the package's copy."""
    global _client
    _client = client
    if _package is not None:
        _package.__dict__["default_client"] = client


class SettingsModule(_types.ModuleType):
    """The package's module class: settings retire the default client; typos are refused."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in SETTING_SET:
            super().__setattr__(name, value)
            _settings_changed()
            return
        if name == "default_client":
            set_default(value)
            return
        if (name.startswith("_") or name in self.__dict__
                or isinstance(value, _types.ModuleType)):
            super().__setattr__(name, value)
            return
        raise unknown_setting(name)

    def __delattr__(self, name: str) -> None:
        if name == "default_client":
            set_default(None)
            return
        super().__delattr__(name)

    def __dir__(self) -> list[str]:
        public: list[str] = list(self.__dict__.get("__all__", ()))
        return sorted({*public, *SETTINGS})


# --- the default client ---------------------------------------------------------------


def _build() -> Client:
    with _lock:
        if _client is not None:
            return _client
        package = _package
        assert package is not None, "rudder_analytics.facade.bind() was not called"
        values = package.__dict__
        url = next((values[n] for n in ("data_plane_url", *URL_ALIASES) if values.get(n)),
                   None)
        options = {n: values[n] for n in SETTINGS
                   if n not in ("write_key", "data_plane_url", *URL_ALIASES)
                   and values.get(n) is not None}
        factory = values.get("Client", Client)  # rudder_analytics.Client, patchable as in peers
        client: Client = factory(values.get("write_key"), url, **options)
        if _closed:
            client.shutdown(0)
        _install(client)
        return client


def get_default_client() -> Client:
    """The default client, built from the settings if there is none yet.

    Raises :class:`ConfigurationError` if no write key or data plane URL is set
    in the settings or in ``RUDDER_WRITE_KEY`` / ``RUDDER_DATA_PLANE_URL``.
    """
    client: Optional[Client] = _client
    return client if client is not None else _build()


def current_client() -> Optional[Client]:
    """The default client if one exists; never builds one."""
    return _client


def _retire(old: object) -> None:
    """Shut ``old`` down without blocking the caller. Until done, ``old`` stays in the exit
    hook (``Client.shutdown`` leaves it only when finished), which then waits for it."""
    if not isinstance(old, Client) or old.closed:
        return

    def run() -> None:
        threading.Event().wait(_RETIRE_GRACE)
        old.shutdown()

    threading.Thread(target=run, name="rudder-analytics-retire", daemon=True).start()


def set_default(value: Optional[Client]) -> None:
    """``rudder_analytics.default_client = value``: None builds a fresh one on the next call.

    The client it replaces is not shut down (as with the peers, it may be put back, e.g.
    by ``mock.patch``); it still delivers what it queued, at exit at the latest. Any object
    with a ``track`` method is accepted, so that tests can install a mock
    (``mock.patch.object(rudder_analytics, "default_client", Mock())``).
    """
    global _closed
    if value is not None and not callable(getattr(value, "track", None)):
        raise ConfigurationError(
            f"default_client must be a rudder_analytics.Client (or None to build a fresh "
            f"one), not {type(value).__name__}")
    with _lock:
        _install(value)
        _closed = False


def _settings_changed() -> None:
    global _closed
    with _lock:
        old = _client
        _install(None)
        _closed = False
    if old is not None:
        _retire(old)


def install_default_if_unconfigured(factory: Callable[[], Client]) -> Optional[Client]:
    """Install ``factory()`` as the default client when the settings and the environment
    cannot build one; returns it, or None if nothing was installed (for testing)."""
    with _lock:
        if _client is not None:
            return None
        try:
            Config.build(*_configured_key_and_url())
        except ConfigurationError:
            pass
        else:
            return None
        client = factory()
        _install(client)
        return client


def _configured_key_and_url() -> tuple[Any, Any]:
    values = _package.__dict__ if _package is not None else {}
    url = next((values[n] for n in ("data_plane_url", *URL_ALIASES) if values.get(n)), None)
    return values.get("write_key"), url


def remove_default(client: Client) -> bool:
    """Uninstall ``client`` if it is still the default (without shutting it down)."""
    with _lock:
        if _client is client:
            _install(None)
            return True
        return False


def _again(client: Client, method: str, args: tuple[Any, ...], result: Any) -> Any:
    """A call the (retired) ``client`` refused: make it on the current default client."""
    if client is _client or not client.closed:
        return result
    return getattr(get_default_client(), method)(*args)


def _call(method: str, args: tuple[Any, ...]) -> ResultT:
    """The rare path: the client was retired while this call used it."""
    client = get_default_client()
    try:
        result: ResultT = getattr(client, method)(*args)
    except ClientClosedError:
        if client is _client:
            raise
        return cast(ResultT, getattr(get_default_client(), method)(*args))
    return cast(ResultT, _again(client, method, args, result))


# --- module-level calls -----------------------------------------------------------------


def track(
    user_id: Any = None,
    event: Optional[str] = None,
    properties: Optional[dict[str, Any]] = None,
    context: Optional[dict[str, Any]] = None,
    timestamp: Any = None,
    anonymous_id: Any = None,
    integrations: Optional[dict[str, Any]] = None,
    message_id: Any = None,
) -> tuple[bool, TrackMessage]:
    """:meth:`Client.track <rudder_analytics.Client.track>` on the default client.

    Records the action ``event`` done by a user (``user_id`` or ``anonymous_id``
    is required). Returns ``(queued, message)``; raises ``ValidationError`` for
    bad input and ``ConfigurationError`` when no write key or URL is set.
    """
    args = (user_id, event, properties, context, timestamp, anonymous_id, integrations,
            message_id)
    client = _client
    if client is not None:  # the hot path: one call, re-made only if a retired client refused
        try:
            result = client.track(*args)
        except ClientClosedError:  # raise_on_error, and retired during the call
            if client is _client:
                raise
        else:
            if client is _client or result[0]:
                return cast("tuple[bool, TrackMessage]", result)
    return cast("tuple[bool, TrackMessage]", _call("track", args))


def identify(
    user_id: Any = None,
    traits: Optional[dict[str, Any]] = None,
    context: Optional[dict[str, Any]] = None,
    timestamp: Any = None,
    anonymous_id: Any = None,
    integrations: Optional[dict[str, Any]] = None,
    message_id: Any = None,
) -> tuple[bool, IdentifyMessage]:
    """:meth:`Client.identify <rudder_analytics.Client.identify>` on the default client:
    ties a user to their ``traits``."""
    args = (user_id, traits, context, timestamp, anonymous_id, integrations, message_id)
    return cast("tuple[bool, IdentifyMessage]", _call("identify", args))


def page(
    user_id: Any = None,
    category: Optional[str] = None,
    name: Optional[str] = None,
    properties: Optional[dict[str, Any]] = None,
    context: Optional[dict[str, Any]] = None,
    timestamp: Any = None,
    anonymous_id: Any = None,
    integrations: Optional[dict[str, Any]] = None,
    message_id: Any = None,
) -> tuple[bool, PageMessage]:
    """:meth:`Client.page <rudder_analytics.Client.page>` on the default client:
    records a page view ``name`` in ``category``."""
    args = (user_id, category, name, properties, context, timestamp, anonymous_id,
            integrations, message_id)
    return cast("tuple[bool, PageMessage]", _call("page", args))


def screen(
    user_id: Any = None,
    category: Optional[str] = None,
    name: Optional[str] = None,
    properties: Optional[dict[str, Any]] = None,
    context: Optional[dict[str, Any]] = None,
    timestamp: Any = None,
    anonymous_id: Any = None,
    integrations: Optional[dict[str, Any]] = None,
    message_id: Any = None,
) -> tuple[bool, ScreenMessage]:
    """:meth:`Client.screen <rudder_analytics.Client.screen>` on the default client:
    records a screen view, shaped like :func:`page`."""
    args = (user_id, category, name, properties, context, timestamp, anonymous_id,
            integrations, message_id)
    return cast("tuple[bool, ScreenMessage]", _call("screen", args))


def group(
    user_id: Any = None,
    group_id: Any = None,
    traits: Optional[dict[str, Any]] = None,
    context: Optional[dict[str, Any]] = None,
    timestamp: Any = None,
    anonymous_id: Any = None,
    integrations: Optional[dict[str, Any]] = None,
    message_id: Any = None,
) -> tuple[bool, GroupMessage]:
    """:meth:`Client.group <rudder_analytics.Client.group>` on the default client:
    associates a user with the group ``group_id``."""
    args = (user_id, group_id, traits, context, timestamp, anonymous_id, integrations,
            message_id)
    return cast("tuple[bool, GroupMessage]", _call("group", args))


def alias(
    previous_id: Any = None,
    user_id: Any = None,
    context: Optional[dict[str, Any]] = None,
    timestamp: Any = None,
    integrations: Optional[dict[str, Any]] = None,
    message_id: Any = None,
    anonymous_id: Any = None,
) -> tuple[bool, AliasMessage]:
    """:meth:`Client.alias <rudder_analytics.Client.alias>` on the default client:
    merges the identity ``previous_id`` into ``user_id``."""
    args = (previous_id, user_id, context, timestamp, integrations, message_id, anonymous_id)
    return cast("tuple[bool, AliasMessage]", _call("alias", args))


def batch() -> Batch:
    """:meth:`Client.batch <rudder_analytics.Client.batch>` on the default client."""
    return get_default_client().batch()


def flush(timeout: Optional[float] = None) -> bool:
    """:meth:`Client.flush <rudder_analytics.Client.flush>` on the default client.

    Builds the default client if there is none yet (as the peers do), so it raises
    ``ConfigurationError`` when no write key or URL is set.
    """
    return get_default_client().flush(timeout)


def shutdown(timeout: Optional[float] = None) -> bool:
    """Shut the default client down (delivering what it queued, within ``timeout``).

    Later module-level calls are refused and counted (``after_shutdown``) and return
    ``(False, message)``, until a setting changes or ``default_client`` is assigned
    (``rudder_analytics.default_client = None`` re-opens with a fresh client).
    """
    global _closed
    with _lock:
        client = _client
        if client is None:
            _closed = True
            return True
    return client.shutdown(timeout)


join = shutdown
"""Alias of :func:`shutdown`, kept for code written for rudder-sdk-python."""


def stats() -> Optional[StatsSnapshot]:
    """:meth:`Client.stats <rudder_analytics.Client.stats>` of the default client, or None
    if there is none yet."""
    client: Optional[Client] = _client
    return None if client is None else client.stats()
