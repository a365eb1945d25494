"""The error tree of rudder_analytics.

Bad input raises in the caller's thread; delivery problems never raise from
background work, they are handed to ``on_error`` and counted in ``stats()``::

    RudderAnalyticsError(Exception)
    ├── ConfigurationError(RudderAnalyticsError, ValueError)  bad write key, URL or limits
    ├── ValidationError(RudderAnalyticsError, ValueError)     bad arguments to a public call
    │   ├── InvalidTypeError(ValidationError, TypeError)      a value of the wrong type
    │   └── MessageTooLargeError(ValidationError)             over the per-message limit
    ├── ClientClosedError(RudderAnalyticsError)               only with raise_on_error
    └── DeliveryError(RudderAnalyticsError)                   given to on_error, never raised
        ├── TransportError                                    connect, read, timeout
        ├── HTTPStatusError                                   status, Retry-After, body
        └── RetriesExhaustedError                             attempts, last error

The double bases (``ValueError``, ``TypeError``) let callers catch either the
SDK's root or the builtin they already expect.
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


class RudderAnalyticsError(Exception):
    """Root of every error this SDK raises or reports."""


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

    Attributes mirror the seed SDK's four ``on_error`` values: ``status_code``,
    ``body``, ``exception`` and ``response``.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: Optional[int] = None,
        body: Optional[str] = None,
        exception: Optional[BaseException] = None,
        response: Any = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.exception = exception
        self.response = response


class TransportError(DeliveryError):
    """The request failed below HTTP: connect, reset, read timeout."""


class HTTPStatusError(DeliveryError):
    """The data plane answered with a non-200 status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: Optional[str] = None,
        retry_after: Optional[float] = None,
        response: Any = None,
    ) -> None:
        super().__init__(message, status_code=status_code, body=body, response=response)
        self.retry_after = retry_after


class RetriesExhaustedError(DeliveryError):
    """Every allowed attempt failed; ``last_error`` says how the last one did."""

    def __init__(self, attempts: int, last_error: DeliveryError) -> None:
        super().__init__(
            f"gave up after {attempts} attempt(s): {last_error}",
            status_code=last_error.status_code,
            body=last_error.body,
            exception=last_error.exception or last_error,
            response=last_error.response,
        )
        self.attempts = attempts
        self.last_error = last_error
