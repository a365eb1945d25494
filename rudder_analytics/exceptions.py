"""The error tree of rudder_analytics.

Bad input raises in the caller's thread; delivery problems never raise from
background work: they are handed to ``on_error`` and counted in ``stats()``.
A synchronous send (sync mode, batch blocks, ``client.send``) raises them only
when the client was built with ``raise_on_error=True``::

    RudderAnalyticsError(Exception)
    ├── ConfigurationError(RudderAnalyticsError, ValueError)  bad write key, URL or limits
    ├── ValidationError(RudderAnalyticsError, ValueError)     bad arguments to a public call
    │   ├── InvalidTypeError(ValidationError, TypeError)      a value of the wrong type
    │   └── MessageTooLargeError(ValidationError)             over the per-message limit
    ├── ClientClosedError(RudderAnalyticsError)               raised only with raise_on_error
    └── DeliveryError(RudderAnalyticsError)                   given to on_error; raised by a
        │                                                     sync send with raise_on_error
        ├── TransportError                                    connect, read, timeout
        ├── HTTPStatusError                                   status, Retry-After, body
        └── RetriesExhaustedError                             attempts, last error

The double bases (``ValueError``, ``TypeError``) let callers catch either the
SDK's root or the builtin they already expect.

Every error survives ``pickle`` and ``copy.deepcopy`` with its attributes (a
``multiprocessing`` pool, Celery and ``dataclasses.asdict`` rely on that), with
one exception: ``response`` (the live ``requests.Response``) becomes None in the
copy. It holds the connection and the request with the ``Authorization``
header, which must not travel to another process; ``status_code``, ``body``
and ``retry_after`` carry what it said.
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = [
    "ClientClosedError",
    "ConfigurationError",
    "DeliveryError",
    "HTTPStatusError",
    "InvalidTypeError",
    "MessageTooLargeError",
    "RetriesExhaustedError",
    "RudderAnalyticsError",
    "TransportError",
    "ValidationError",
]


def _rebuild_error(cls: type[BaseException], args: tuple[Any, ...]) -> BaseException:
    """Unpickling: make the error without calling ``__init__`` (its signature varies);
    pickle then restores its attributes from the saved state."""
    return cls.__new__(cls, *args)


def _portable(value: Any) -> Any:
    """``value``, or a RuntimeError saying what it was if it could not be rebuilt from its
    pickled form (a library exception whose ``__init__`` takes other arguments than its
    ``args``): one wrapped exception must not make the whole error unpicklable."""
    if not isinstance(value, BaseException) or isinstance(value, RudderAnalyticsError):
        return value
    try:
        reduced: Any = value.__reduce_ex__(4)
        reduced[0](*reduced[1])  # what unpickling and deepcopy will call
    except Exception:
        return RuntimeError(f"{type(value).__name__}: {value}")
    return value


class RudderAnalyticsError(Exception):
    """Root of every error this SDK raises or reports.

    Pickles and deep-copies with its attributes, whatever the subclass's
    ``__init__`` takes; ``response`` is left out of copies (None).
    """

    def __reduce__(self) -> tuple[Any, ...]:
        state = {
            name: None if name == "response" else _portable(value)
            for name, value in self.__dict__.items()
        }
        return _rebuild_error, (type(self), self.args), state


class ConfigurationError(RudderAnalyticsError, ValueError):
    """A client option is missing or invalid (write key, data plane URL, limits)."""


class ValidationError(RudderAnalyticsError, ValueError):
    """A public call received bad arguments; raised in the caller's thread."""


class InvalidTypeError(ValidationError, TypeError):
    """An argument, or a value inside one, has a type the SDK cannot send."""


class MessageTooLargeError(ValidationError):
    """The encoded message is over the per-message limit; its contents are not echoed."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message is {size} bytes encoded, over the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class ClientClosedError(RudderAnalyticsError):
    """The client was shut down; raised only when the caller opted into exceptions."""


class DeliveryError(RudderAnalyticsError):
    """A batch could not be delivered. Handed to ``on_error``; never raised by workers.

    ``str()`` is short and names the cause and the target (``connection refused
    by 127.0.0.1:8080``, ``401 invalid write key for https://...``); ``cause``
    is the same without variable parts, stable across requests. The other
    attributes mirror the seed SDK's four ``on_error`` values: ``status_code``,
    ``body``, ``exception`` and ``response`` (None in a pickled or copied error).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: Optional[int] = None,
        body: Optional[str] = None,
        exception: Optional[BaseException] = None,
        response: Any = None,
        cause: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.exception = exception
        self.response = response
        self.cause: str = cause or message
        """A short description of the cause, without counts: one report line per cause."""


class TransportError(DeliveryError):
    """The request failed below HTTP: connect, reset, read timeout."""


class HTTPStatusError(DeliveryError):
    """The data plane answered with a non-200 status (``location``: a redirect's target)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: Optional[str] = None,
        retry_after: Optional[float] = None,
        response: Any = None,
        cause: Optional[str] = None,
        location: Optional[str] = None,
    ) -> None:
        super().__init__(message, status_code=status_code, body=body, response=response,
                         cause=cause)
        self.retry_after = retry_after
        self.location = location


class RetriesExhaustedError(DeliveryError):
    """Every allowed attempt failed; ``last_error`` says how the last one did."""

    def __init__(self, attempts: int, last_error: DeliveryError) -> None:
        super().__init__(
            f"gave up after {attempts} attempt(s): {last_error}",
            status_code=last_error.status_code,
            body=last_error.body,
            exception=last_error.exception or last_error,
            response=last_error.response,
            cause=getattr(last_error, "cause", None),
        )
        self.attempts = attempts
        self.last_error = last_error
