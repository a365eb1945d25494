"""Client options: one frozen object, validated once when the client is built.

Every option, its default and its meaning is listed in :class:`Config`. The
README's configuration table is written from it. Unknown option names are
refused with a suggestion, so a typo never silently does nothing.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional, Union
from urllib.parse import urlsplit

from .exceptions import ConfigurationError

__all__ = ["DEFAULT_DATA_PLANE_URL", "ENV_DATA_PLANE_URL", "ENV_WRITE_KEY", "Config"]

logger: logging.Logger = logging.getLogger("rudder_analytics")

PEER_HINTS = {
    "flush_at": "upload_size",
    "flush_interval": "upload_interval",
    "max_total_backoff_duration": "retry_deadline",
    "max_rate_limit_duration": "retry_deadline",
    "log_handler": "logging.getLogger('rudder_analytics').addHandler(handler)",
}
"""Options of rudder-sdk-python 1.x or analytics-python, and what to use instead."""

ENV_WRITE_KEY = "RUDDER_WRITE_KEY"
ENV_DATA_PLANE_URL = "RUDDER_DATA_PLANE_URL"
ENV_PERSIST_DIR = "RUDDER_PERSIST_DIR"
PERSIST_FSYNC = ("never", "interval", "always")
DEFAULT_DATA_PLANE_URL = "https://hosted.rudderlabs.com"

AUTO_BATCH_TRIGGER = 100
"""With ``upload_size`` automatic: the queue depth at which a batch starts at once (the
batch itself takes everything queued, up to ``upload_bytes``)."""

ON_FULL = ("drop", "block")
"""The values of ``on_full``."""

SERVER_MAX_REQUEST_BYTES = 4_096_000
"""rudder-server's ``Gateway.maxReqSizeInKB`` default (4000 KiB), measured after gunzip."""

ErrorCallback = Callable[..., Any]
DropCallback = Callable[[str, list[dict[str, Any]]], Any]
BeforeSend = Callable[[dict[str, Any]], Optional[dict[str, Any]]]

_warned_plain_http: set[str] = set()


def _hint(name: str, names: set[str]) -> str:
    """What to use instead of the unknown option ``name``: a peer's, or the nearest name."""
    if name in PEER_HINTS:
        return f"; use {PEER_HINTS[name]} instead"
    close = difflib.get_close_matches(name, sorted(names), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclasses.dataclass(frozen=True)
class Config:
    """Every client option, with its default. Build with :meth:`Config.build`."""

    write_key: str = dataclasses.field(repr=False)
    """The source's write key, sent as the Basic-auth user name. Never logged or shown."""
    data_plane_url: str = DEFAULT_DATA_PLANE_URL
    """Base URL of the data plane; requests go to ``{data_plane_url}/v1/batch``."""
    on_error: Optional[ErrorCallback] = None
    """Called once per batch that could not be delivered: ``(error, batch)`` or the
    seed's ``(status_code, body, exception, response)``."""
    on_drop: Optional[DropCallback] = None
    """Called as ``(reason, messages)`` for every dropped event, whatever the reason."""
    before_send: Union[BeforeSend, Sequence[BeforeSend], None] = None
    """A callable, or a list applied in order, given each built message (a copy) in the
    caller's thread before it is encoded; returns the message to send, or None to drop
    it (reason ``filtered``). One that raises drops the event (``hook_error``).
    ``before_enqueue`` (rudder-sdk-python 2.2's name) is accepted for it."""
    debug: bool = False
    """Log at DEBUG to the ``rudder_analytics`` logger (no global logging changes)."""
    send: bool = True
    """False: validate and build messages, but send nothing (for tests and dry runs)."""
    sync_mode: bool = False
    """True: each call is delivered in the caller's thread before it returns."""
    gzip: bool = True
    """Gzip request bodies (rudder-server v1.4+). False for older servers."""
    gzip_level: int = 1
    """zlib level 1-9; 1 is the cheapest in CPU (see benchmarks/README.md)."""
    max_queue_size: int = 100_000
    """Events the queue holds before new ones are dropped (reason ``queue_full``)."""
    max_queue_bytes: int = 128 * 1024 * 1024
    """Encoded bytes the queue holds before new events are dropped."""
    on_full: str = "drop"
    """What a call does when the queue is full: ``"drop"`` the event at once (counted as
    ``queue_full``), or ``"block"``: wait up to ``block_timeout`` seconds for room, then
    drop. For backfills and batch jobs; a call from a worker or a callback never waits."""
    block_timeout: float = 10.0
    """Seconds a call waits for room in a full queue with ``on_full="block"``."""
    upload_size: Optional[int] = None
    """Events per request at most. None (the default): sized by the backlog, as many as
    ``upload_bytes`` allows when the queue is deep, a prompt small batch when it is idle
    (a batch starts at 100 queued events or after ``upload_interval``). A number is a hard
    maximum, and also the queue depth at which a batch starts at once."""
    upload_bytes: int = 500_000
    """Target uncompressed bytes per request (checked before a message is added)."""
    upload_interval: float = 0.5
    """Seconds a partial batch waits for more events before it is sent."""
    timeout: Union[float, tuple[float, float]] = 15.0
    """Seconds one HTTP attempt may take in all, reading the answer included (for a
    ``(connect, read)`` pair: their sum, with ``connect`` also bounding the connect)."""
    max_retries: int = 10
    """Retries per batch after the first attempt."""
    retry_deadline: float = 600.0
    """Seconds from a batch's first attempt after which it is not retried again."""
    retry_base_delay: float = 0.5
    """First backoff delay in seconds; doubles per retry, with jitter."""
    retry_max_delay: float = 30.0
    """Cap of one backoff delay (a server's ``Retry-After`` is obeyed beyond it)."""
    proxies: Optional[Mapping[str, str]] = None
    """``requests`` proxies mapping, e.g. ``{"https": "http://proxy:3128"}``."""
    verify: Union[bool, str] = True
    """TLS verification: True, False (logs a warning) or a CA bundle path."""
    thread: int = 1
    """Number of consumer threads."""
    max_message_size: int = 32 * 1024
    """Largest encoded message accepted, in bytes (RudderStack's documented 32 KiB)."""
    max_request_bytes: int = SERVER_MAX_REQUEST_BYTES
    """Largest uncompressed request body; the server's own limit by default."""
    shutdown_timeout: float = 5.0
    """Seconds the exit hook spends delivering what is still queued."""
    flush_timeout: float = 30.0
    """Seconds ``flush()`` waits when called without a timeout."""
    sync_deadline: float = 30.0
    """Total seconds a synchronous send (sync mode, batches) may take, retries included."""
    raise_on_error: bool = False
    """Sync mode and batches raise :class:`DeliveryError` on failure instead of returning False."""
    atexit: bool = True
    """Deliver queued events at interpreter exit."""
    handle_sigterm: bool = False
    """Install a SIGTERM handler (from the main thread, once per process) that delivers
    every live client within ``shutdown_timeout``, then hands the signal to the handler
    it replaced (or ends the process as SIGTERM's default action does, status -15).
    See docs/guides/deployment.md."""
    max_response_bytes: int = 64 * 1024
    """Response bodies are read up to this many bytes, never more."""
    persist_dir: Optional[str] = None
    """Directory of the durable journal (``RUDDER_PERSIST_DIR``); None: memory only.
    See docs/guides/journal.md."""
    persist_max_bytes: int = 1024 ** 3
    """Disk the journal may use; past it the oldest whole segment is evicted (``evicted``)."""
    persist_fsync: str = "interval"
    """``"never"``, ``"interval"`` (at most once a second) or ``"always"`` (every commit)."""

    @classmethod
    def build(cls, write_key: Any, data_plane_url: Any = None, **options: Any) -> Config:
        """Validate and normalise options; raise ConfigurationError with the reason."""
        for alias in ("host", "dataPlaneUrl"):
            if alias in options:
                value = options.pop(alias)
                if data_plane_url is None:
                    data_plane_url = value
        if "before_enqueue" in options:
            hook = options.pop("before_enqueue")
            options.setdefault("before_send", hook)
        names = {f.name for f in dataclasses.fields(cls)}
        for name in options:
            if name not in names:
                raise ConfigurationError(f"unknown option {name!r}{_hint(name, names)}")
        if write_key is None:
            write_key = os.environ.get(ENV_WRITE_KEY)
        if data_plane_url is None:
            data_plane_url = os.environ.get(ENV_DATA_PLANE_URL)
        if "persist_dir" not in options and os.environ.get(ENV_PERSIST_DIR):
            options["persist_dir"] = os.environ[ENV_PERSIST_DIR]
        if not isinstance(write_key, str) or not write_key.strip():
            raise ConfigurationError(
                f"a write key is required: pass write_key or set {ENV_WRITE_KEY}"
            )
        if data_plane_url is None or (isinstance(data_plane_url, str) and not data_plane_url):
            raise ConfigurationError(
                f"a data plane URL is required: pass data_plane_url or set {ENV_DATA_PLANE_URL}"
            )
        config = cls(write_key=write_key.strip(), data_plane_url=_check_url(data_plane_url),
                     **options)
        config._check()
        return config

    def _check(self) -> None:
        """Apply every rule below; the first broken one raises ConfigurationError."""
        _check_limits(self)
        _check_choices(self)
        _check_callbacks(self)
        if self.proxies is not None and not isinstance(self.proxies, Mapping):
            raise ConfigurationError("proxies must be a mapping of scheme to proxy URL")
        _check_persist(self)
        if self.verify is False:
            logger.warning("TLS certificate verification is off (verify=False)")

    @property
    def batch_trigger(self) -> int:
        """Queued events that start a batch at once: ``upload_size``, or 100 when it is
        automatic (:data:`AUTO_BATCH_TRIGGER`)."""
        return self.upload_size if self.upload_size is not None else AUTO_BATCH_TRIGGER

    @property
    def batch_url(self) -> str:
        """Where batches are posted."""
        return self.data_plane_url + "/v1/batch"

    def without_callbacks(self) -> Config:
        """A copy for background parts (workers, retired pools): no user callables.

        A callback may be a bound method of the object that owns the client; held
        by a pool that a finalizer keeps, it would keep that owner alive forever.
        """
        return dataclasses.replace(self, on_error=None, on_drop=None, before_send=None)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.name != "write_key"
        )
        return f"Config(write_key=<redacted>, {shown})"


def _check_url(url: Any) -> str:
    """A data plane URL with a scheme and host; a trailing slash is dropped."""
    if not isinstance(url, str):
        raise ConfigurationError(f"data_plane_url must be a string, not {type(url).__name__}")
    text = url.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"data_plane_url must start with http:// or https:// and name a host, got {url!r}"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError("data_plane_url must not have a query or fragment")
    if parts.path.rstrip("/").endswith("/v1/batch"):
        raise ConfigurationError(
            f"data plane URL ends in /v1/batch: give the base URL "
            f"({text[: -len('/v1/batch')]!r}); the SDK adds /v1/batch itself"
        )
    insecure = parts.scheme == "http" and not _is_loopback(parts.hostname or "")
    if insecure and text not in _warned_plain_http:
        _warned_plain_http.add(text)
        logger.warning(
            "data plane URL %s uses plain http to a non-loopback host: "
            "events and the write key travel unencrypted", text,
        )
    return text


def _hooks(value: Any) -> Optional[tuple[BeforeSend, ...]]:
    """``before_send`` as a tuple of callables (None when unset or empty)."""
    if not value:
        return None
    hooks = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    for hook in hooks:
        if not callable(hook):
            raise ConfigurationError(
                f"before_send must be a callable or a list of callables, "
                f"not {type(hook).__name__}")
    return hooks


def _check_persist(config: Config) -> None:
    """The journal options; the directory must exist (or be creatable) and be writable."""
    if config.persist_fsync not in PERSIST_FSYNC:
        raise ConfigurationError(f"persist_fsync must be one of "
                                 f"{', '.join(map(repr, PERSIST_FSYNC))}, got "
                                 f"{config.persist_fsync!r}")
    size = config.persist_max_bytes
    if isinstance(size, bool) or not isinstance(size, int) or size < 1024 * 1024:
        raise ConfigurationError(f"persist_max_bytes must be at least 1 MiB, got {size!r}")
    if config.persist_dir is None:
        return
    from .journal.store import check_persist_dir

    try:
        path = check_persist_dir(os.fspath(config.persist_dir))
    except (OSError, TypeError) as exc:
        raise ConfigurationError(
            f"persist_dir {config.persist_dir!r} cannot hold a journal: {exc}") from None
    object.__setattr__(config, "persist_dir", path)


_POSITIVE_INTEGERS = ("max_queue_size", "max_queue_bytes", "upload_bytes", "thread",
                      "max_message_size", "max_request_bytes", "max_response_bytes")
_POSITIVE_SECONDS = ("upload_interval", "retry_deadline", "retry_base_delay", "retry_max_delay",
                     "shutdown_timeout", "sync_deadline", "flush_timeout", "block_timeout")


def _positive(config: Config, name: str, integer: bool = True) -> None:
    value = getattr(config, name)
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        what = "a positive integer" if integer else "a positive number"
        raise ConfigurationError(f"{name} must be {what}, got {value!r}")


def _check_limits(config: Config) -> None:
    """Sizes, counts and seconds are positive; a message fits in a request."""
    for name in _POSITIVE_INTEGERS:
        _positive(config, name)
    if config.upload_size is not None:
        _positive(config, "upload_size")
    for name in _POSITIVE_SECONDS:
        _positive(config, name, integer=False)
    retries = config.max_retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigurationError(f"max_retries must be >= 0, got {retries!r}")
    timeouts = config.timeout if isinstance(config.timeout, tuple) else (config.timeout,)
    if not timeouts or any(
        isinstance(t, bool) or not isinstance(t, (int, float)) or t <= 0 for t in timeouts
    ):
        raise ConfigurationError(f"timeout must be positive seconds, got {config.timeout!r}")
    if config.max_message_size + 200 > config.max_request_bytes:
        raise ConfigurationError("max_message_size must leave room within max_request_bytes")


def _check_choices(config: Config) -> None:
    """Options that take one of a few values."""
    if config.on_full not in ON_FULL:
        raise ConfigurationError(
            f"on_full must be one of {', '.join(map(repr, ON_FULL))}, got {config.on_full!r}")
    if not isinstance(config.gzip_level, int) or not 1 <= config.gzip_level <= 9:
        raise ConfigurationError(f"gzip_level must be 1..9, got {config.gzip_level!r}")


def _check_callbacks(config: Config) -> None:
    """Callbacks are callables; a falsy value means "none", as in the peer SDKs."""
    for name in ("on_error", "on_drop"):
        callback = getattr(config, name)
        if not callback and not callable(callback):  # False/0/"": "no callback", as peers
            object.__setattr__(config, name, None)
        elif callback is not None and not callable(callback):
            raise ConfigurationError(
                f"{name} must be callable or None, not {type(callback).__name__}")
    object.__setattr__(config, "before_send", _hooks(config.before_send))
