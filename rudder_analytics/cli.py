"""The ``rudder-analytics`` command (also ``python -m rudder_analytics``).

Commands:

* ``track``, ``identify``, ``page``, ``screen``, ``group``, ``alias``: send one
  event synchronously; the exit status says whether it was delivered.
* ``import FILE``: send JSON-lines messages in bulk (a backfill), with progress
  and a summary.
* ``dev-server``: the local stand-in data plane (see :mod:`.devserver`).
* ``demo``: a local data plane plus one event of every type, end to end.

Exit statuses: 0 success, 1 delivery failed (or, for ``import``, some lines
failed or were skipped), 2 usage or validation error.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import difflib
import importlib
import json
import os
import stat
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any, Callable, Dict, List, Optional, TextIO, Tuple

from .config import ENV_DATA_PLANE_URL, ENV_WRITE_KEY
from .devserver.cli import non_negative_int, positive_int
from .exceptions import ConfigurationError, DeliveryError, ValidationError
from .version import VERSION

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
"""Delivery failed, or an import had failed or skipped lines."""
EXIT_USAGE = 2
"""Bad arguments, bad JSON, missing configuration, or an event the SDK refused."""
EXIT_INTERRUPTED = 130

PROG = "rudder-analytics"
EVENT_COMMANDS = ("track", "identify", "page", "screen", "group", "alias")

_Formatter = argparse.RawDescriptionHelpFormatter

# --- help texts ------------------------------------------------------------------------

_MAIN_EPILOG = f"""\
configuration:
  --write-key / --data-plane-url, or the environment variables
  {ENV_WRITE_KEY} and {ENV_DATA_PLANE_URL}

examples:
  {PROG} demo
  {PROG} track --user-id u1 --event "Signed Up" --properties '{{"plan": "pro"}}'
  {PROG} identify --user-id u1 --traits '{{"email": "ada@example.com"}}'
  {PROG} import events.jsonl
  {PROG} dev-server --port 8080

exit status: 0 ok, 1 delivery failed (or import lines failed/skipped), 2 usage error
"""

_EVENT_EPILOGS = {
    "track": f"""\
examples:
  {PROG} track --user-id u1 --event "Order Completed" \\
      --properties '{{"revenue": 9.95, "currency": "USD"}}'
  {PROG} track --anonymous-id a-123 --event "Page Scrolled" --timestamp 2024-05-01T12:00:00Z
  {PROG} track --user-id u1 --event "Signed Up" --properties @props.json --dry-run
""",
    "identify": f"""\
examples:
  {PROG} identify --user-id u1 --traits '{{"email": "ada@example.com", "plan": "pro"}}'
  {PROG} identify --anonymous-id a-123 --traits '{{"locale": "fr"}}' \\
      --context '{{"ip": "10.0.0.1"}}'
""",
    "page": f"""\
examples:
  {PROG} page --user-id u1 --name Pricing --category Docs \\
      --properties '{{"url": "https://example.com/pricing"}}'
""",
    "screen": f"""\
examples:
  {PROG} screen --user-id u1 --name Home --properties '{{"variant": "b"}}'
""",
    "group": f"""\
examples:
  {PROG} group --user-id u1 --group-id acme --traits '{{"name": "Acme", "employees": 42}}'
""",
    "alias": f"""\
examples:
  {PROG} alias --previous-id a-123 --user-id u1
""",
}

_IMPORT_EPILOG = f"""\
input: one JSON object per line, with a "type" (track, identify, page, screen, group,
alias) and the message fields, in RudderStack camelCase or snake_case:
  userId/user_id, anonymousId/anonymous_id, event, name, category, properties, traits,
  context, integrations, timestamp, messageId/message_id, groupId/group_id,
  previousId/previous_id
"originalTimestamp" is used as the event time when "timestamp" is absent; channel,
sentAt, receivedAt, rudderId and request_ip (as in exported events) are ignored.
Each line is validated by the SDK's builders; a bad line is reported with its line
number and skipped. Give each line a messageId to make re-running an import safe
(the data plane de-duplicates on it); lines without one get a new id every run.

examples:
  {PROG} import events.jsonl
  {PROG} import --dry-run events.jsonl          # validate only, send nothing
  zcat export.jsonl.gz | {PROG} import - --threads 8

  example line:
  {{"type": "track", "userId": "u1", "event": "Signed Up", "properties": {{"plan": "pro"}},
   "timestamp": "2024-05-01T12:00:00Z", "messageId": "signup-u1"}}

exit status: 0 when every line was delivered, 1 when any failed or was skipped,
2 for a usage error (unreadable file, missing write key or data plane URL)
"""

_DEMO_EPILOG = f"""\
Starts the local data plane on a free loopback port, sends one message of every type
(track, identify, page, screen, group, alias) from several threads through a
background Client, flushes, and prints what the data plane stored and the client's
stats. Exit status 0 when every event arrived.

examples:
  {PROG} demo
  {PROG} demo --json
"""

_DEV_SERVER_HELP = "run the local stand-in data plane (see: dev-server --help)"


# --- argument types --------------------------------------------------------------------


def _json_object(text: str) -> Dict[str, Any]:
    """A JSON object given inline, or ``@FILE`` to read it from a file."""
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


_json_object.__name__ = "JSON object"


def _timestamp(text: str) -> Any:
    """Epoch seconds as a number, anything else as the ISO-8601 string the SDK parses."""
    try:
        return float(text)
    except ValueError:
        return text


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _non_negative_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


# --- the parser ------------------------------------------------------------------------


def _connection_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection")
    group.add_argument("--write-key", metavar="KEY",
                       help=f"source write key (default: ${ENV_WRITE_KEY})")
    group.add_argument("--data-plane-url", metavar="URL",
                       help=f"data plane URL (default: ${ENV_DATA_PLANE_URL})")
    group.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                       help="HTTP connect and read timeout (default 15)")
    group.add_argument("--max-retries", type=non_negative_int, metavar="N",
                       help="retries of a failed request (default 10)")
    group.add_argument("--deadline", type=_seconds, metavar="SECONDS",
                       help="total time for one request, retries included (default 30)")
    group.add_argument("--no-gzip", action="store_true",
                       help="send uncompressed bodies (rudder-server before v1.4)")
    group.add_argument("--debug", action="store_true",
                       help="log the SDK's DEBUG messages to stderr")
    return parent


def _message_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("message")
    group.add_argument("--user-id", metavar="ID", help="the user's id in your database")
    group.add_argument("--anonymous-id", metavar="ID",
                       help="an id for a user not known yet (user or anonymous id required)")
    group.add_argument("--timestamp", type=_timestamp, metavar="TIME",
                       help="when it happened: ISO-8601 or epoch seconds (default: now)")
    group.add_argument("--message-id", metavar="ID",
                       help="a fixed message id, for de-duplication (default: a new UUID)")
    group.add_argument("--context", type=_json_object, metavar="JSON",
                       help="context object, e.g. '{\"ip\": \"10.0.0.1\"}' (or @FILE)")
    group.add_argument("--integrations", type=_json_object, metavar="JSON",
                       help="destinations on/off, e.g. '{\"All\": true}' (or @FILE)")
    output = parent.add_argument_group("output")
    output.add_argument("--dry-run", action="store_true",
                        help="validate and print the message as JSON; send nothing")
    output.add_argument("--json", action="store_true",
                        help="print the sent message as JSON instead of a summary line")
    output.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return parent


def _add_event_parser(
    sub: Any, name: str, help_text: str, parents: List[argparse.ArgumentParser]
) -> Any:
    """A subcommand for one call type; returns the argument group for its own fields."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help_text, description=help_text[:1].upper() + help_text[1:] + ".",
        parents=parents, epilog=_EVENT_EPILOGS[name], formatter_class=_Formatter)
    return parser.add_argument_group(f"{name} fields")


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser (``dev-server`` is parsed by its own)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Send events to RudderStack from the command line, import JSON-lines "
                    "backfills, and run a local data plane.",
        epilog=_MAIN_EPILOG, formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=f"{PROG} {VERSION}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    connection = _connection_parent()
    message = _message_parent()
    parents = [connection, message]

    track = _add_event_parser(sub, "track", "record an action a user performed", parents)
    track.add_argument("--event", help="the action's name, e.g. 'Signed Up' (required)")
    track.add_argument("--properties", type=_json_object, metavar="JSON",
                       help="event properties object (or @FILE)")

    identify = _add_event_parser(sub, "identify", "tie a user to their traits", parents)
    identify.add_argument("--traits", type=_json_object, metavar="JSON",
                          help="user traits object (or @FILE)")

    for name, text in (("page", "record a page view"), ("screen", "record a screen view")):
        page = _add_event_parser(sub, name, text, parents)
        page.add_argument("--name", help="the page's name")
        page.add_argument("--category", help="the page's category")
        page.add_argument("--properties", type=_json_object, metavar="JSON",
                          help="page properties object (or @FILE)")

    group = _add_event_parser(sub, "group", "associate a user with a group", parents)
    group.add_argument("--group-id", metavar="ID", help="the group's id (required)")
    group.add_argument("--traits", type=_json_object, metavar="JSON",
                       help="group traits object (or @FILE)")

    alias = _add_event_parser(sub, "alias", "merge a previous identity into a user",
                              parents)
    alias.add_argument("--previous-id", metavar="ID",
                       help="the identity to merge (required)")

    importer = sub.add_parser(
        "import", help="send JSON-lines messages in bulk (a backfill)",
        description="Send JSON-lines messages in bulk (a backfill), with progress and a "
                    "summary.",
        parents=[connection], epilog=_IMPORT_EPILOG, formatter_class=_Formatter)
    importer.add_argument("file", metavar="FILE", help="JSON-lines file, or - for stdin")
    importer.add_argument("--dry-run", action="store_true",
                          help="validate every line; send nothing (no write key needed)")
    importer.add_argument("--threads", type=positive_int, default=4, metavar="N",
                          help="concurrent requests (default 4)")
    importer.add_argument("--batch-size", type=positive_int, default=100, metavar="N",
                          help="messages per request at most (default 100)")
    importer.add_argument("--give-up-after", type=non_negative_int, default=5, metavar="N",
                          help="stop reading after N requests in a row delivered nothing "
                               "(a dead data plane, a wrong write key); 0: never (default 5)")
    importer.add_argument("--progress-interval", type=_non_negative_seconds, default=5.0,
                          metavar="SECONDS",
                          help="seconds between counter lines when stderr is not a terminal "
                               "(default 5)")
    importer.add_argument("-q", "--quiet", action="store_true",
                          help="no progress output (bad lines and the summary still print)")

    sub.add_parser("dev-server", help=_DEV_SERVER_HELP, add_help=False)

    demo = sub.add_parser(
        "demo", help="local data plane + one event of every type, end to end",
        description="Run the SDK end to end against a local data plane.",
        epilog=_DEMO_EPILOG, formatter_class=_Formatter)
    demo.add_argument("--json", action="store_true", help="print stored events as JSON lines")
    demo.add_argument("--timeout", type=_seconds, default=10.0, metavar="SECONDS",
                      help="how long to wait for delivery (default 10)")
    return parser


# --- helpers ---------------------------------------------------------------------------


def _error(command: str, text: str) -> None:
    print(f"{PROG} {command}: error: {text}", file=sys.stderr)


def _client_options(args: argparse.Namespace) -> Dict[str, Any]:
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


_EVENT_FIELDS: Dict[str, Tuple[str, ...]] = {
    "track": ("user_id", "event", "properties"),
    "identify": ("user_id", "traits"),
    "page": ("user_id", "category", "name", "properties"),
    "screen": ("user_id", "category", "name", "properties"),
    "group": ("user_id", "group_id", "traits"),
    "alias": ("previous_id", "user_id"),
}
_COMMON_FIELDS = ("anonymous_id", "context", "timestamp", "integrations", "message_id")


def _describe(message: Mapping[str, Any]) -> str:
    kind = message.get("type", "?")
    who = message.get("userId") or message.get("anonymousId")
    label = message.get("event") or message.get("name") or message.get("groupId") or \
        message.get("previousId")
    text = f"{kind} for {who}"
    if label:
        text += f": {label}"
    return f"{text} (messageId {message.get('messageId')})"


# --- event commands --------------------------------------------------------------------


def _run_event(args: argparse.Namespace) -> int:
    """Build one message and deliver it synchronously; 0 only when it was delivered."""
    from . import messages
    from .client import Client

    command: str = args.command
    kwargs = {name: getattr(args, name) for name in _EVENT_FIELDS[command] + _COMMON_FIELDS}
    kwargs = {name: value for name, value in kwargs.items() if value is not None}
    if args.dry_run:
        try:
            builder: Callable[..., Dict[str, Any]] = getattr(messages, f"build_{command}")
            message = builder(**kwargs)
        except ValidationError as exc:
            _error(command, str(exc))
            return EXIT_USAGE
        print(json.dumps(message, indent=2, ensure_ascii=False, default=str))
        return EXIT_OK
    try:
        client = Client(args.write_key, args.data_plane_url, sync_mode=True,
                        raise_on_error=True, **_client_options(args))
    except ConfigurationError as exc:
        _error(command, str(exc))
        return EXIT_USAGE
    try:
        ok, message = getattr(client, command)(**kwargs)
    except ValidationError as exc:
        _error(command, str(exc))
        return EXIT_USAGE
    except DeliveryError as exc:
        _error(command, f"not delivered: {exc}")
        return EXIT_FAILED
    finally:
        client.shutdown()
    if not ok:
        last = client.stats()["last_error"]
        _error(command, "not delivered" + (f": {last}" if last else ""))
        return EXIT_FAILED
    if args.json:
        print(json.dumps(message, ensure_ascii=False, default=str))
    elif not args.quiet:
        print(f"delivered {_describe(message)}")
    return EXIT_OK


# --- import ----------------------------------------------------------------------------


class LineError(ValueError):
    """An input line that is not a valid message."""


_COMMON_KEYS = {
    "userId": "user_id", "anonymousId": "anonymous_id", "context": "context",
    "integrations": "integrations", "timestamp": "timestamp", "messageId": "message_id",
}
_TYPE_KEYS: Dict[str, Dict[str, str]] = {
    "track": {"event": "event", "properties": "properties"},
    "identify": {"traits": "traits"},
    "page": {"name": "name", "category": "category", "properties": "properties"},
    "screen": {"name": "name", "category": "category", "properties": "properties"},
    "group": {"groupId": "group_id", "traits": "traits"},
    "alias": {"previousId": "previous_id"},
}
_IGNORED_KEYS = frozenset({
    "channel", "sentAt", "sent_at", "receivedAt", "received_at", "rudderId", "rudder_id",
    "request_ip", "requestIP",
})
_ORIGINAL_TIMESTAMP_KEYS = ("originalTimestamp", "original_timestamp")
_ALL_FIELD_KEYS = frozenset(
    key for table in (_COMMON_KEYS, *_TYPE_KEYS.values()) for pair in table.items()
    for key in pair
)


def _accepted(kind: str) -> Dict[str, str]:
    """Every key a line of this type may use (camelCase and snake_case) -> kwarg."""
    table = {**_COMMON_KEYS, **_TYPE_KEYS[kind]}
    return {**table, **{kwarg: kwarg for kwarg in table.values()}}


_ACCEPTED = {kind: _accepted(kind) for kind in _TYPE_KEYS}


def _suggest(key: str, accepted: Mapping[str, str]) -> str:
    """A ``did you mean`` hint: same letters in another case or spelling first, then close."""
    folded = key.lower().replace("_", "")
    same = [name for name in accepted if name.lower().replace("_", "") == folded]
    close = sorted(same, key=lambda name: "_" in name) or difflib.get_close_matches(
        key, sorted(accepted), n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


def parse_line(data: Any) -> Tuple[str, Dict[str, Any]]:
    """A decoded JSON line -> (type, builder keyword arguments); raises LineError."""
    if not isinstance(data, dict):
        raise LineError(f"expected a JSON object, got {type(data).__name__}")
    kind = data.get("type")
    if kind not in _TYPE_KEYS:
        if kind is None:
            raise LineError('missing "type"')
        raise LineError(f'"type" must be one of {", ".join(_TYPE_KEYS)}, got {kind!r}')
    accepted = _ACCEPTED[kind]
    kwargs: Dict[str, Any] = {}
    original_timestamp: Any = None
    for key, value in data.items():
        if key == "type" or key in _IGNORED_KEYS:
            continue
        if key in _ORIGINAL_TIMESTAMP_KEYS:
            original_timestamp = value
            continue
        kwarg = accepted.get(key)
        if kwarg is None:
            if key in _ALL_FIELD_KEYS:
                raise LineError(f'field "{key}" does not apply to {kind}')
            hint = _suggest(key, accepted)
            raise LineError(f'unknown field "{key}"{hint}')
        if kwarg in kwargs:
            raise LineError(f'field "{key}" is given twice (camelCase and snake_case)')
        kwargs[kwarg] = value
    if kwargs.get("timestamp") is None and original_timestamp is not None:
        kwargs["timestamp"] = original_timestamp
    return kind, kwargs


try:  # orjson parses JSON lines several times faster when installed (the "fast" extra)
    _orjson: Any = importlib.import_module("orjson")
    _loads: Callable[[str], Any] = _orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _loads = json.loads


class _Tally:
    """Counts shared by the reader (main thread) and the senders; guarded by a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lines = 0
        self.valid = 0
        self.sent = 0
        self.failed = 0
        self.skipped = 0
        self.failed_in_a_row = 0
        """Requests in a row that delivered nothing (reset by any delivery)."""


_BAR_REFRESH = 0.1
"""Seconds between two updates of the progress bar (tqdm's own refresh rate)."""


class _Progress:
    """A tqdm bar on a terminal; otherwise a counter line on stderr every few seconds."""

    def __init__(self, tally: _Tally, stream: TextIO, total_bytes: Optional[int],
                 interval: float, quiet: bool, dry_run: bool) -> None:
        self._tally = tally
        self._stream = stream
        self._interval = interval
        self._dry_run = dry_run
        self._started = time.monotonic()
        self._last_line = self._started
        self._bar: Any = None
        self._bytes = False
        self._pending = 0
        self._next = self._started + interval
        self._lines = not quiet
        if quiet:
            return
        isatty = getattr(stream, "isatty", None)
        if callable(isatty) and isatty():
            try:
                tqdm_module = importlib.import_module("tqdm")
            except ImportError:
                tqdm_module = None
            if tqdm_module is not None:
                options: Dict[str, Any] = {"file": stream, "desc": "import", "leave": True,
                                           "dynamic_ncols": True}
                if total_bytes is not None:
                    options.update(total=total_bytes, unit="B", unit_scale=True,
                                   unit_divisor=1024)
                else:
                    options.update(unit=" lines")
                self._bar = tqdm_module.tqdm(**options)
                self._bytes = total_bytes is not None
                self._lines = False
                self._next = self._started

    def advance(self, nbytes: int) -> None:
        """One more line was read (``nbytes`` long)."""
        self._pending += nbytes if self._bytes else 1
        self.tick()

    def tick(self, force: bool = False) -> None:
        """Show the counts, at most every ``_BAR_REFRESH`` (bar) or ``interval`` seconds."""
        if self._bar is None and not self._lines:
            return
        now = time.monotonic()
        if now < self._next and not force:
            return
        if self._bar is not None:
            self._next = now + _BAR_REFRESH
            tally = self._tally
            with tally.lock:
                counts = ({"valid": tally.valid, "skipped": tally.skipped} if self._dry_run
                          else {"sent": tally.sent, "failed": tally.failed,
                                "skipped": tally.skipped})
            self._bar.set_postfix({k: f"{v:,}" for k, v in counts.items()}, refresh=False)
            self._bar.update(self._pending)
            self._pending = 0
            return
        self._next = now + self._interval
        self._stream.write(self._counter_line(now) + "\n")
        self._stream.flush()

    def _counter_line(self, now: float) -> str:
        tally = self._tally
        elapsed = max(now - self._started, 1e-9)
        with tally.lock:
            if self._dry_run:
                return (f"import: {tally.lines:,} lines read, {tally.valid:,} valid, "
                        f"{tally.skipped:,} skipped")
            return (f"import: {tally.lines:,} lines read, {tally.sent:,} sent, "
                    f"{tally.failed:,} failed, {tally.skipped:,} skipped "
                    f"({tally.sent / elapsed:,.0f} events/s)")

    def write(self, text: str) -> None:
        """A message line that does not break the bar."""
        if self._bar is not None:
            self._bar.write(text, file=self._stream)
        else:
            self._stream.write(text + "\n")
            self._stream.flush()

    def close(self) -> None:
        """Show the final counts and release the bar."""
        if self._bar is not None:
            self.tick(force=True)
            self._bar.close()


def _open_input(path: str) -> Tuple[IO[bytes], Optional[int], bool]:
    """(binary stream, size in bytes if known, whether we opened it)."""
    if path == "-":
        return sys.stdin.buffer, None, False
    handle = open(path, "rb")  # noqa: SIM115 - closed by the caller
    try:
        info = os.fstat(handle.fileno())
        size = info.st_size if stat.S_ISREG(info.st_mode) else None
    except OSError:
        size = None
    return handle, size, True


def _run_import(args: argparse.Namespace) -> int:
    """Validate each line through the SDK's builders and send them in batches."""
    from .batches import Batch, BatchResult
    from .client import Client

    client: Optional[Client] = None
    if not args.dry_run:
        try:
            client = Client(args.write_key, args.data_plane_url, **_client_options(args))
        except ConfigurationError as exc:
            _error("import", str(exc))
            return EXIT_USAGE
    try:
        stream, size, opened = _open_input(args.file)
    except OSError as exc:
        _error("import", f"cannot open {args.file}: {exc.strerror}")
        return EXIT_USAGE

    tally = _Tally()
    progress = _Progress(tally, sys.stderr, size, args.progress_interval, args.quiet,
                         args.dry_run)
    started = time.monotonic()
    executor = (futures.ThreadPoolExecutor(max_workers=args.threads,
                                           thread_name_prefix="rudder-import")
                if client is not None else None)
    pending: Dict[futures.Future[BatchResult], int] = {}
    max_pending = args.threads * 2
    interrupted = False
    gave_up = False
    not_sent = 0

    def settle(done: Iterable[futures.Future[BatchResult]]) -> None:
        for future in done:
            count = pending.pop(future)
            try:
                result = future.result()
                delivered, failed = result.delivered, result.failed
            except futures.CancelledError:
                delivered, failed = 0, count
            except Exception as exc:  # never lose count of a batch, whatever happened
                progress.write(f"import: a request failed unexpectedly: {exc!r}")
                delivered, failed = 0, count
            with tally.lock:
                tally.sent += delivered
                tally.failed += failed
                tally.failed_in_a_row = 0 if delivered else tally.failed_in_a_row + 1
        progress.tick()

    def hopeless() -> bool:
        with tally.lock:
            return bool(0 < args.give_up_after <= tally.failed_in_a_row)

    def submit(batch: Batch) -> None:
        if not len(batch):
            return
        if executor is None or client is None:
            return
        while len(pending) >= max_pending:
            done, _ = futures.wait(list(pending), return_when=futures.FIRST_COMPLETED)
            settle(done)
        pending[executor.submit(client.send, batch)] = len(batch)

    def new_batch() -> Batch:
        return client.batch() if client is not None else Batch()

    batch = new_batch()
    try:
        for number, raw in enumerate(stream, 1):
            with tally.lock:
                tally.lines = number
            progress.advance(len(raw))
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                _skip(tally, progress, number, f"not UTF-8 ({exc.reason} at byte {exc.start})")
                continue
            if number == 1:
                text = text.lstrip("\ufeff")
            if not text.strip():
                continue
            try:
                kind, kwargs = parse_line(_loads(text))
                getattr(batch, kind)(**kwargs)
            except (ValueError, TypeError) as exc:  # bad JSON, LineError, ValidationError
                reason = str(exc) if isinstance(exc, (LineError, ValidationError)) \
                    else f"not valid JSON: {exc}"
                _skip(tally, progress, number, reason)
                continue
            with tally.lock:
                tally.valid += 1
            if len(batch) >= args.batch_size:
                submit(batch)
                batch = new_batch()
                if hopeless():
                    gave_up = True
                    break
        if gave_up:  # requests not started yet are not worth trying
            for future in list(pending):
                future.cancel()
        else:
            submit(batch)
        if pending:
            settle(futures.wait(list(pending)).done)
    except KeyboardInterrupt:
        interrupted = True
        for future in list(pending):
            future.cancel()
        if pending:
            settle(futures.wait(list(pending)).done)
    finally:
        if interrupted or gave_up:
            with tally.lock:
                not_sent = tally.valid - tally.sent - tally.failed
        if executor is not None:
            executor.shutdown(wait=True)
        if opened:
            stream.close()
        progress.close()
    last_error = client.stats()["last_error"] if client is not None else None
    if client is not None:
        client.shutdown()
    elapsed = time.monotonic() - started
    stopped = ("interrupted" if interrupted else
               f"gave up after {args.give_up_after} requests in a row failed" if gave_up
               else None)
    _print_summary(tally, elapsed, args.dry_run, last_error, stopped, not_sent)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if tally.failed == 0 and tally.skipped == 0 else EXIT_FAILED


def _skip(tally: _Tally, progress: _Progress, number: int, reason: str) -> None:
    with tally.lock:
        tally.skipped += 1
    progress.write(f"line {number}: skipped: {reason}")


def _print_summary(tally: _Tally, elapsed: float, dry_run: bool, last_error: Optional[str],
                   stopped: Optional[str], not_sent: int) -> None:
    rate = tally.sent / elapsed if elapsed > 0 else float(tally.sent)
    if dry_run:
        print(f"import (dry run): {tally.valid:,} valid, {tally.skipped:,} skipped, "
              f"{tally.lines:,} lines in {elapsed:.2f}s")
        return
    line = (f"import: sent {tally.sent:,}, failed {tally.failed:,}, "
            f"skipped {tally.skipped:,} in {elapsed:.2f}s ({rate:,.0f} events/s)")
    if stopped:
        line += f"; {stopped}, {not_sent:,} read but not sent"
    print(line)
    if tally.failed and last_error:
        print(f"import: last delivery error: {last_error}", file=sys.stderr)


# --- demo ------------------------------------------------------------------------------


DEMO_WRITE_KEY = "demo-write-key"


def _demo_calls(client: Any) -> List[Tuple[str, Callable[[], Any]]]:
    """One call of every type, as a reader of the docs would write them."""
    return [
        ("identify", lambda: client.identify(
            user_id="demo-user-1", traits={"email": "ada@example.com", "plan": "pro"})),
        ("track", lambda: client.track(
            user_id="demo-user-1", event="Order Completed",
            properties={"order_id": "o-1001", "revenue": 9.95, "currency": "USD"})),
        ("page", lambda: client.page(
            user_id="demo-user-1", category="Docs", name="Pricing",
            properties={"url": "https://example.com/pricing"})),
        ("screen", lambda: client.screen(
            user_id="demo-user-1", name="Home", properties={"variant": "b"})),
        ("group", lambda: client.group(
            user_id="demo-user-1", group_id="acme", traits={"name": "Acme", "employees": 42})),
        ("alias", lambda: client.alias(previous_id="anon-7f3a", user_id="demo-user-1")),
    ]


def _demo_line(event: Mapping[str, Any], format_event: Callable[[Any], str]) -> str:
    """The dev server's console line, plus the fields that tell the call types apart."""
    extras = []
    for key in ("groupId", "previousId"):
        if key in event:
            extras.append(f"{key}={event[key]}")
    for key in ("properties", "traits"):
        value = event.get(key)
        if value:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            extras.append(text if len(text) <= 60 else text[:59] + "\u2026")
    line = format_event(dict(event))
    return f"{line:<66} {' '.join(extras)}".rstrip() if extras else line


def _run_demo(args: argparse.Namespace) -> int:
    """Local data plane + background Client + one event of each type from six threads."""
    from .client import Client
    from .devserver import DevServer
    from .devserver.console import format_event

    server = DevServer(write_keys=(DEMO_WRITE_KEY,))
    try:
        server.start()
    except OSError as exc:
        _error("demo", f"cannot start the local data plane: {exc}")
        return EXIT_FAILED
    try:
        print(f"local data plane listening on {server.url} (write key {DEMO_WRITE_KEY})")
        client = Client(DEMO_WRITE_KEY, server.url, upload_interval=0.05, atexit=False,
                        retry_base_delay=0.05, retry_max_delay=0.5)
        sent: Dict[str, str] = {}
        errors: List[str] = []
        lock = threading.Lock()

        def call(kind: str, fn: Callable[[], Any]) -> None:
            try:
                ok, message = fn()
            except Exception as exc:  # shown, and the demo fails
                with lock:
                    errors.append(f"{kind}: {exc}")
                return
            with lock:
                if ok:
                    sent[message["messageId"]] = kind
                else:
                    errors.append(f"{kind}: not queued")

        threads = [threading.Thread(target=call, args=pair, name=f"demo-{pair[0]}")
                   for pair in _demo_calls(client)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(args.timeout)
        print(f"sent {len(sent)} events from {len(threads)} threads through a background "
              "Client; flushing...")
        flushed = client.flush(timeout=args.timeout)
        server.wait_for_events(len(sent), timeout=args.timeout)
        stored = server.events()
        print(f"\nthe data plane stored {len(stored)} events:")
        for event in stored:
            print(json.dumps(event, ensure_ascii=False) if args.json
                  else f"  {_demo_line(event, format_event)}")
        stats = client.stats()
        client.shutdown(timeout=args.timeout)
        print(f"\nclient stats: enqueued={stats['enqueued']}, delivered={stats['delivered']}, "
              f"dropped={stats['dropped_total']}, requests={stats['requests']}, "
              f"retries={stats['retries']}, bytes_sent={stats['bytes_sent']}")
        for text in errors:
            _error("demo", text)
        arrived = {event.get("messageId") for event in stored}
        missing = sorted(kind for message_id, kind in sent.items() if message_id not in arrived)
        ok = flushed and not errors and not missing and len(sent) == len(threads)
        if ok:
            print(f"all {len(sent)} events arrived")
            return EXIT_OK
        if missing:
            _error("demo", f"not stored: {', '.join(missing)}")
        return EXIT_FAILED
    finally:
        server.close()


# --- entry point -----------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the console script and of ``python -m rudder_analytics``."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "dev-server":
        from .devserver.cli import main as devserver_main

        return _exit_code(lambda: devserver_main(args_list[1:]))
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help, --version, usage errors: argparse's own status
        return _status(exc.code)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.command in EVENT_COMMANDS:
        return _run_event(args)
    if args.command == "import":
        return _run_import(args)
    if args.command == "demo":
        return _run_demo(args)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse checks
    return EXIT_USAGE  # pragma: no cover


def _exit_code(run: Callable[[], int]) -> int:
    try:
        return run()
    except SystemExit as exc:
        return _status(exc.code)


def _status(code: Any) -> int:
    if code is None:
        return EXIT_OK
    return code if isinstance(code, int) else EXIT_FAILED
