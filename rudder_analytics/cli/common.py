"""What every ``rudder-analytics`` command shares: exit statuses, error lines, argument
types, the client options of the connection arguments, and the data plane URL hint."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any, Callable, Dict, Optional
from urllib.parse import urlsplit

__all__ = [
    "EVENT_COMMANDS", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "PROG",
    "SdkLog", "client_options", "error", "json_object", "non_negative_seconds", "seconds",
    "sigint_once", "timestamp", "url_hint",
]

EXIT_OK = 0
EXIT_FAILED = 1
"""Delivery failed, or an import had failed or skipped lines."""
EXIT_USAGE = 2
"""Bad arguments, bad JSON, missing configuration, or an event the SDK refused."""
EXIT_INTERRUPTED = 130
"""Stopped by Ctrl-C (SIGINT), as shells report it."""

PROG = "rudder-analytics"
EVENT_COMMANDS = ("track", "identify", "page", "screen", "group", "alias")


def error(command: str, text: str) -> None:
    """``rudder-analytics COMMAND: error: TEXT`` on stderr."""
    print(f"{PROG} {command}: error: {text}", file=sys.stderr)


# --- argument types --------------------------------------------------------------------


def json_object(text: str) -> Dict[str, Any]:
    """argparse type: a JSON object given inline, or ``@FILE`` to read it from a file."""
    source = text
    if text.startswith("@"):
        path = text[1:]
        try:
            with open(path, encoding="utf-8") as handle:
                source = handle.read()
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {path}: {exc.strerror}") from None
    try:
        value = json.loads(source)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"must be a JSON object ({{...}}), not {type(value).__name__}")
    return value


json_object.__name__ = "JSON object"  # how argparse names the type in its errors


def timestamp(text: str) -> Any:
    """argparse type: epoch seconds as a number, anything else as the ISO-8601 string."""
    try:
        return float(text)
    except ValueError:
        return text


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None


def seconds(text: str) -> float:
    """argparse type: a positive number of seconds."""
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def non_negative_seconds(text: str) -> float:
    """argparse type: a number of seconds >= 0."""
    value = _float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


# --- the connection arguments ----------------------------------------------------------


def client_options(args: argparse.Namespace) -> Dict[str, Any]:
    """Client options from the connection arguments (only those given)."""
    options: Dict[str, Any] = {"atexit": False}
    if args.timeout is not None:
        options["timeout"] = args.timeout
    if args.max_retries is not None:
        options["max_retries"] = args.max_retries
    if args.deadline is not None:
        options["sync_deadline"] = args.deadline
        options["retry_deadline"] = args.deadline
    if args.no_gzip:
        options["gzip"] = False
    if args.debug:
        options["debug"] = True
    return options


def url_hint(url: str) -> Optional[str]:
    """A hint when the data plane URL ends in ``/v1``, which the SDK appends itself.

    (A URL ending in ``/v1/batch`` is refused by the client's configuration, with
    the base URL to give instead.)
    """
    path = urlsplit(url).path.rstrip("/")
    if not path.endswith("/v1"):
        return None
    base = url.rstrip("/")[: -len("/v1")]
    return (f"hint: the data plane URL ends in /v1, but the SDK adds /v1/batch itself "
            f"(requests go to {url.rstrip('/')}/v1/batch); try --data-plane-url {base}")


@contextlib.contextmanager
def sigint_once() -> Iterator[None]:
    """The first Ctrl-C raises KeyboardInterrupt as usual; later ones are ignored.

    So a command that is winding down after Ctrl-C reports once, without a traceback
    from a second press. A no-op outside the main thread (signals are the main
    thread's).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed = threading.Event()

    def handler(signum: int, frame: Optional[FrameType]) -> None:
        if not pressed.is_set():
            pressed.set()
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class SdkLog(logging.Handler):
    """The SDK's own log lines while a command runs: shown with ``--debug``, else dropped.

    The commands report delivery themselves (the wait notices, the error lines and the
    import summary), so the SDK's "cannot deliver yet" and drop lines would only say
    it twice, and would break the progress bar; errors are always shown. Installed
    on the ``rudder_analytics`` logger before the client is built, it is also where
    ``--debug`` output goes. ``sink`` may be changed (the import routes it around its
    progress bar).
    """

    def __init__(self, debug: bool) -> None:
        super().__init__(logging.DEBUG if debug else logging.ERROR)
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        self.sink: Callable[[str], None] = _to_stderr

    def emit(self, record: logging.LogRecord) -> None:
        """Format ``record`` and pass it to ``sink``; a failing sink never raises here."""
        try:
            self.sink(self.format(record))
        except Exception:  # a broken terminal must not break delivery
            self.handleError(record)

    @classmethod
    @contextlib.contextmanager
    def installed(cls, debug: bool) -> Iterator[SdkLog]:
        """The handler on the ``rudder_analytics`` logger for the duration of a command."""
        handler = cls(debug)
        logger = logging.getLogger("rudder_analytics")
        logger.addHandler(handler)
        try:
            yield handler
        finally:
            logger.removeHandler(handler)
