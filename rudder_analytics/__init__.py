"""rudder_analytics: a fast, reliable server-side Python SDK for RudderStack.

Module-level use (settings first, then calls; the default client is built on
the first call)::

    import rudder_analytics
    rudder_analytics.write_key = "WRITE_KEY"
    rudder_analytics.data_plane_url = "https://your-data-plane"
    rudder_analytics.track(user_id="42", event="Signed Up", properties={"plan": "pro"})
    rudder_analytics.flush()

Or build a :class:`Client`. Importing the package has no side effects: no
threads, no logging configuration, no environment files.
"""

from __future__ import annotations

import logging
import sys
import threading
import types as _types
from typing import Any, Callable, Optional

from .batches import Batch, BatchResult
from .client import Client, Result
from .config import Config
from .exceptions import (
    ClientClosedError,
    ConfigurationError,
    DeliveryError,
    HTTPStatusError,
    InvalidTypeError,
    MessageTooLargeError,
    RetriesExhaustedError,
    RudderAnalyticsError,
    TransportError,
    ValidationError,
)
from .stats import DropReason, StatsSnapshot
from .types import (
    AliasMessage,
    GroupMessage,
    IdentifyMessage,
    Message,
    PageMessage,
    ScreenMessage,
    TrackMessage,
)
from .version import VERSION

logging.getLogger("rudder_analytics").addHandler(logging.NullHandler())

__version__ = VERSION

__all__ = [
    "VERSION",
    "AliasMessage",
    "Batch",
    "BatchResult",
    "Client",
    "ClientClosedError",
    "Config",
    "ConfigurationError",
    "DeliveryError",
    "DropReason",
    "GroupMessage",
    "HTTPStatusError",
    "IdentifyMessage",
    "InvalidTypeError",
    "Message",
    "MessageTooLargeError",
    "PageMessage",
    "Result",
    "RetriesExhaustedError",
    "RudderAnalyticsError",
    "ScreenMessage",
    "StatsSnapshot",
    "TrackMessage",
    "TransportError",
    "ValidationError",
    "__version__",
    "alias",
    "batch",
    "default_client",
    "flush",
    "group",
    "identify",
    "join",
    "page",
    "screen",
    "shutdown",
    "stats",
    "track",
]

# --- module-level settings -------------------------------------------------------------
# Each maps to the Client option of the same name; None means "the option's default".
# Assigning one after the default client exists retires that client (it still delivers
# what it queued) and the next call builds a new one with the new settings.

write_key: Optional[str] = None
data_plane_url: Optional[str] = None
dataPlaneUrl: Optional[str] = None  # alias for rudder-sdk-python users
host: Optional[str] = None  # alias for Segment users
on_error: Optional[Callable[..., Any]] = None
on_drop: Optional[Callable[..., Any]] = None
debug: bool = False
send: bool = True
sync_mode: bool = False
gzip: Optional[bool] = None
gzip_level: Optional[int] = None
max_queue_size: Optional[int] = None
max_queue_bytes: Optional[int] = None
upload_size: Optional[int] = None
upload_bytes: Optional[int] = None
upload_interval: Optional[float] = None
timeout: Optional[float] = None
max_retries: Optional[int] = None
retry_deadline: Optional[float] = None
proxies: Optional[dict[str, str]] = None
verify: Optional[bool] = None
thread: Optional[int] = None
max_message_size: Optional[int] = None
shutdown_timeout: Optional[float] = None
sync_deadline: Optional[float] = None
raise_on_error: Optional[bool] = None
retry_base_delay: Optional[float] = None
retry_max_delay: Optional[float] = None
max_request_bytes: Optional[int] = None
max_response_bytes: Optional[int] = None
atexit: Optional[bool] = None

_SETTINGS = (
    "on_error", "on_drop", "debug", "send", "sync_mode", "gzip", "gzip_level",
    "max_queue_size", "max_queue_bytes", "upload_size", "upload_bytes", "upload_interval",
    "timeout", "max_retries", "retry_deadline", "proxies", "verify", "thread",
    "max_message_size", "shutdown_timeout", "sync_deadline", "raise_on_error",
    "retry_base_delay", "retry_max_delay", "max_request_bytes", "max_response_bytes", "atexit",
)
_URL_SETTINGS = ("data_plane_url", "dataPlaneUrl", "host")
_ALL_SETTINGS = frozenset(("write_key", *_URL_SETTINGS, *_SETTINGS))

_default: Optional[Client] = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """The client behind the module-level calls, built from the settings on first use.

    Raises :class:`ConfigurationError` if no write key or data plane URL is set
    here or in ``RUDDER_WRITE_KEY`` / ``RUDDER_DATA_PLANE_URL``.
    """
    client = _default
    if client is not None:
        return client
    return _build_default()


def _build_default() -> Client:
    global _default
    module = sys.modules[__name__]
    with _default_lock:
        if _default is not None:
            return _default
        url = next((getattr(module, n) for n in _URL_SETTINGS if getattr(module, n)), None)
        options = {n: getattr(module, n) for n in _SETTINGS if getattr(module, n) is not None}
        _default = Client(module.write_key, url, **options)
        return _default


def _retire_default() -> None:
    """A setting changed: the next call builds a new default client."""
    global _default
    with _default_lock:
        old, _default = _default, None
    if old is not None:  # let it deliver what it has, without blocking the assignment
        threading.Thread(target=old.shutdown, name="rudder-analytics-retire", daemon=True).start()


class _SettingsModule(_types.ModuleType):
    """Lets ``rudder_analytics.write_key = ...`` retire a default client built earlier."""

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in _ALL_SETTINGS and _default is not None:
            _retire_default()


sys.modules[__name__].__class__ = _SettingsModule


# --- module-level calls ----------------------------------------------------------------


def track(*args: Any, **kwargs: Any) -> Result:
    """:meth:`Client.track` on the default client."""
    return default_client().track(*args, **kwargs)


def identify(*args: Any, **kwargs: Any) -> Result:
    """:meth:`Client.identify` on the default client."""
    return default_client().identify(*args, **kwargs)


def page(*args: Any, **kwargs: Any) -> Result:
    """:meth:`Client.page` on the default client."""
    return default_client().page(*args, **kwargs)


def screen(*args: Any, **kwargs: Any) -> Result:
    """:meth:`Client.screen` on the default client."""
    return default_client().screen(*args, **kwargs)


def group(*args: Any, **kwargs: Any) -> Result:
    """:meth:`Client.group` on the default client."""
    return default_client().group(*args, **kwargs)


def alias(*args: Any, **kwargs: Any) -> Result:
    """:meth:`Client.alias` on the default client."""
    return default_client().alias(*args, **kwargs)


def batch() -> Batch:
    """:meth:`Client.batch` on the default client."""
    return default_client().batch()


def flush(timeout: Optional[float] = None) -> bool:
    """:meth:`Client.flush` on the default client; True if there is none yet."""
    client = _default
    return True if client is None else client.flush(timeout)


def shutdown(timeout: Optional[float] = None) -> bool:
    """Shut the default client down; the next call builds a new one."""
    global _default
    with _default_lock:
        client, _default = _default, None
    return True if client is None else client.shutdown(timeout)


join = shutdown
"""Alias of :func:`shutdown`, kept for code written for rudder-sdk-python."""


def stats() -> Optional[StatsSnapshot]:
    """:meth:`Client.stats` of the default client, or None if there is none yet."""
    client = _default
    return None if client is None else client.stats()

