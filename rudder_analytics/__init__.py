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

import logging as _logging
import sys as _sys
from collections.abc import Mapping as _Mapping
from collections.abc import Sequence as _Sequence
from typing import Any as _Any
from typing import Callable as _Callable
from typing import Literal as _Literal
from typing import Optional as _Optional
from typing import Union as _Union

from ._module import facade as _facade
from ._module.facade import (
    alias,
    batch,
    flush,
    get_default_client,
    group,
    identify,
    join,
    page,
    screen,
    shutdown,
    stats,
    track,
)
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

_logging.getLogger("rudder_analytics").addHandler(_logging.NullHandler())

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
    "aflush",
    "alias",
    "ashutdown",
    "batch",
    "default_client",
    "flush",
    "get_default_client",
    "group",
    "identify",
    "join",
    "page",
    "screen",
    "shutdown",
    "stats",
    "track",
]

async def aflush(timeout: _Optional[float] = None) -> bool:
    """``await`` :meth:`Client.aflush <rudder_analytics.Client.aflush>` on the default client."""
    return await get_default_client().aflush(timeout)


async def ashutdown(timeout: _Optional[float] = None) -> bool:
    """:func:`shutdown` from a coroutine: the loop stays free while the default client delivers."""
    client = _facade.current_client()
    if client is None:
        return shutdown(timeout)  # nothing to wait for; marks the module closed as shutdown() does
    return await client.ashutdown(timeout)


# --- module-level settings -------------------------------------------------------------
# One per Config field (rudder_analytics._module.settings.SETTINGS is derived from the dataclass,
# so an option added there is a setting too, typed here once it is annotated); None means
# "the option's default". Assigning one after the default client exists retires that
# client (it still delivers what it queued) and the next call builds a new one. An
# unknown name (a typo, or another SDK's option) raises ConfigurationError.

default_client: _Optional[Client] = None
"""The client behind the module-level calls; None until the first call (or flush) builds
it. Assign None to start over with a fresh client, or a Client of your own."""

write_key: _Optional[str] = None
data_plane_url: _Optional[str] = None
dataPlaneUrl: _Optional[str] = None  # alias for rudder-sdk-python users
host: _Optional[str] = None  # alias for Segment users
on_error: _Union[_Callable[..., _Any], _Literal[False], None] = None
on_drop: _Union[_Callable[[str, list[dict[str, _Any]]], _Any], _Literal[False], None] = None
debug: bool = False
send: bool = True
sync_mode: bool = False
gzip: _Optional[bool] = None
gzip_level: _Optional[int] = None
max_queue_size: _Optional[int] = None
max_queue_bytes: _Optional[int] = None
upload_size: _Optional[int] = None
upload_bytes: _Optional[int] = None
upload_interval: _Optional[float] = None
timeout: _Union[float, tuple[float, float], None] = None
max_retries: _Optional[int] = None
retry_deadline: _Optional[float] = None
retry_base_delay: _Optional[float] = None
retry_max_delay: _Optional[float] = None
proxies: _Optional[_Mapping[str, str]] = None
verify: _Union[bool, str, None] = None
thread: _Optional[int] = None
max_message_size: _Optional[int] = None
max_request_bytes: _Optional[int] = None
shutdown_timeout: _Optional[float] = None
sync_deadline: _Optional[float] = None
raise_on_error: _Optional[bool] = None
atexit: _Optional[bool] = None
max_response_bytes: _Optional[int] = None
before_send: _Union[
    _Callable[[dict[str, _Any]], _Optional[dict[str, _Any]]],
    _Sequence[_Callable[[dict[str, _Any]], _Optional[dict[str, _Any]]]],
    None,
] = None
flush_timeout: _Optional[float] = None
handle_sigterm: _Optional[bool] = None
on_full: _Optional[str] = None  # "drop" (the default) or "block"
block_timeout: _Optional[float] = None
persist_dir: _Optional[str] = None  # the durable journal (docs/guides/journal.md)
persist_max_bytes: _Optional[int] = None
persist_fsync: _Optional[str] = None  # "never", "interval" (the default) or "always"

_facade.bind(_sys.modules[__name__])  # and every Config field added since: None
_sys.modules[__name__].__class__ = _facade.SettingsModule
