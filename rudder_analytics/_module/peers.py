"""Client attributes that rudder-sdk-python and analytics-python users read.

The peers' clients expose their options as plain attributes (``client.host``,
``client.debug``, ``client.send`` ...). Ours keeps them in one frozen
:class:`~rudder_analytics.config.Config`; these descriptors read them from there,
and refuse assignment with an error that names the fix (options are fixed when
the client is built). ``client.send`` is both the peers' bool and our
``send(batch)`` method: see :class:`SendAttribute`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Generic,
    NoReturn,
    Optional,
    TypeVar,
    Union,
    overload,
)

from ..exceptions import ConfigurationError

if TYPE_CHECKING:
    from ..batches import Batch, BatchResult
    from ..client import Client

__all__ = ["BoundSend", "ConfigAttribute", "QueueAttribute", "QueueView", "SendAttribute",
           "missing_attribute"]

T = TypeVar("T")


def _fixed(name: str, option: str) -> NoReturn:
    raise ConfigurationError(
        f"client.{name} cannot be changed after the client is built: "
        f"pass Client(..., {option}=...) (or set rudder_analytics.{option} before the first call)"
    )


class ConfigAttribute(Generic[T]):
    """A read-only attribute that returns ``client.config.<option>``."""

    def __init__(self, option: str) -> None:
        self.option: str = option
        self.name: str = option

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: Optional[type] = None) -> ConfigAttribute[T]: ...

    @overload
    def __get__(self, obj: Client, owner: Optional[type] = None) -> T: ...

    def __get__(self, obj: Optional[Client], owner: Optional[type] = None) -> Any:
        if obj is None:
            return self
        return getattr(obj.config, self.option)

    def __set__(self, obj: Client, value: T) -> None:
        _fixed(self.name, self.option)


class BoundSend:
    """``client.send``: call it with a batch (``client.send(batch)``), or read it as the
    peers' bool option (``if client.send:``, ``client.send == False``)."""

    __slots__ = ("_client",)

    def __init__(self, client: Client) -> None:
        self._client = client

    def __call__(self, batch: Batch) -> BatchResult:
        """Deliver a batch now (synchronously), keeping its message ids."""
        return self._client.send_batch(batch)

    def __bool__(self) -> bool:
        return bool(self._client.config.send)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (bool, int)):
            return bool(self) == other
        if isinstance(other, BoundSend):
            return self._client is other._client
        return NotImplemented

    def __hash__(self) -> int:
        return hash(bool(self))

    def __repr__(self) -> str:
        return f"<Client.send: {bool(self)}; call send(batch) to deliver a batch>"


class SendAttribute:
    """The descriptor behind ``client.send`` (see :class:`BoundSend`)."""

    @overload
    def __get__(self, obj: None, owner: Optional[type] = None) -> SendAttribute: ...

    @overload
    def __get__(self, obj: Client, owner: Optional[type] = None) -> BoundSend: ...

    def __get__(self, obj: Optional[Client], owner: Optional[type] = None) -> Any:
        if obj is None:
            return self
        return BoundSend(obj)

    def __set__(self, obj: Client, value: object) -> None:
        _fixed("send", "send")


class QueueView:
    """``client.queue``: the read-only part of the peers' ``queue.Queue`` that their users
    read (``empty()``, ``qsize()``, ``maxsize``). Events cannot be put or taken here."""

    __slots__ = ("_client",)

    def __init__(self, client: Client) -> None:
        self._client = client

    @property
    def maxsize(self) -> int:
        """The queue's bound in events (``max_queue_size``)."""
        return int(self._client.config.max_queue_size)

    def qsize(self) -> int:
        """Events queued and not yet taken by a worker."""
        return int(self._client.stats()["queue_depth"])

    def empty(self) -> bool:
        """True when nothing is waiting to be sent."""
        return self.qsize() == 0

    def full(self) -> bool:
        """True when the next event would be dropped (``queue_full``)."""
        return self.qsize() >= self.maxsize

    def __repr__(self) -> str:
        return f"<Client.queue: {self.qsize()} of {self.maxsize}>"


class QueueAttribute:
    """The descriptor behind ``client.queue`` (see :class:`QueueView`)."""

    @overload
    def __get__(self, obj: None, owner: Optional[type] = None) -> QueueAttribute: ...

    @overload
    def __get__(self, obj: Client, owner: Optional[type] = None) -> QueueView: ...

    def __get__(self, obj: Optional[Client], owner: Optional[type] = None) -> Any:
        if obj is None:
            return self
        return QueueView(obj)


_PEER_ONLY = {
    "consumers": "the workers are internal: client.stats() reports their work, "
                 "client.config.thread their number",
    "oauth_manager": "OAuth is Segment-only; RudderStack authenticates with the write key",
    "max_total_backoff_duration": "use client.config.retry_deadline",
    "max_rate_limit_duration": "use client.config.retry_deadline",
}


class PeerOnlyAttribute:
    """A peer attribute the Client lacks: reading it raises an AttributeError saying what
    to use instead. (Not ``__getattr__``: defining that on the class would put every
    attribute read of the hot path on CPython's slow lookup.)"""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: Optional[type] = None) -> PeerOnlyAttribute: ...

    @overload
    def __get__(self, obj: object, owner: Optional[type] = None) -> NoReturn: ...

    def __get__(self, obj: Optional[object], owner: Optional[type] = None) -> Any:
        if obj is None:
            return self
        missing_attribute(obj, self._name)


def missing_attribute(obj: object, name: str) -> NoReturn:
    """A peer attribute we do not have is explained, not bare."""
    hint = _PEER_ONLY.get(name)
    kind = type(obj).__name__
    if hint is None:
        raise AttributeError(f"{kind!r} object has no attribute {name!r}")
    raise AttributeError(f"{kind!r} object has no attribute {name!r} "
                         f"(rudder-sdk-python / analytics-python have one): {hint}")


class PeerAttributes:
    """The attributes rudder-sdk-python's and analytics-python's users read on a client.

    Mixed into :class:`~rudder_analytics.client.Client`. They are read from its
    ``config`` and fixed at construction (assigning one raises ConfigurationError).
    """

    # rudder-sdk-python and analytics-python expose these on their Client; ours are read
    # from self.config and fixed at construction (assigning raises ConfigurationError).
    log: logging.Logger = logging.getLogger("rudder_analytics")
    """The SDK's logger (``client.log.setLevel(logging.DEBUG)``), as in the peers."""
    send: SendAttribute = SendAttribute()
    """``client.send(batch)`` delivers a batch now; ``bool(client.send)`` is the send option."""
    queue: QueueAttribute = QueueAttribute()
    """Read-only ``empty()``, ``qsize()`` and ``maxsize`` of the event queue."""
    write_key: ConfigAttribute[str] = ConfigAttribute("write_key")
    data_plane_url: ConfigAttribute[str] = ConfigAttribute("data_plane_url")
    host: ConfigAttribute[str] = ConfigAttribute("data_plane_url")
    on_error: ConfigAttribute[Optional[Callable[..., Any]]] = ConfigAttribute(
        "on_error")
    debug: ConfigAttribute[bool] = ConfigAttribute("debug")
    sync_mode: ConfigAttribute[bool] = ConfigAttribute("sync_mode")
    gzip: ConfigAttribute[bool] = ConfigAttribute("gzip")
    timeout: ConfigAttribute[Union[float, tuple[float, float]]] = ConfigAttribute(
        "timeout")
    proxies: ConfigAttribute[Optional[Mapping[str, str]]] = ConfigAttribute(
        "proxies")
    max_queue_size: ConfigAttribute[int] = ConfigAttribute("max_queue_size")
    max_retries: ConfigAttribute[int] = ConfigAttribute("max_retries")
    upload_size: ConfigAttribute[int] = ConfigAttribute("upload_size")
    upload_interval: ConfigAttribute[float] = ConfigAttribute("upload_interval")
    thread: ConfigAttribute[int] = ConfigAttribute("thread")

    consumers: PeerOnlyAttribute = PeerOnlyAttribute()
    oauth_manager: PeerOnlyAttribute = PeerOnlyAttribute()
    max_total_backoff_duration: PeerOnlyAttribute = PeerOnlyAttribute()
    max_rate_limit_duration: PeerOnlyAttribute = PeerOnlyAttribute()
