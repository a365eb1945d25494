"""The argument parser of ``rudder-analytics`` and its help texts (``dev-server`` has its
own parser, in :mod:`rudder_analytics.devserver.cli`, loaded only for that command)."""

from __future__ import annotations

import argparse
from typing import Any, List

from .._argtypes import non_negative_int, positive_int
from ..config import ENV_DATA_PLANE_URL, ENV_WRITE_KEY
from ..version import VERSION
from .common import PROG, json_object, non_negative_seconds, seconds, timestamp
from .journal import add_journal_command

__all__ = ["build_parser"]

_Formatter = argparse.RawDescriptionHelpFormatter

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

exit status: 0 ok, 1 delivery failed (or import lines failed/skipped), 2 usage error,
130 interrupted (Ctrl-C)
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
"originalTimestamp" is used as the event time when "timestamp" is absent, and an
exported event keeps its own context.library; channel, sentAt, receivedAt, rudderId
and request_ip (as in exported events) are ignored.
Each line is validated by the SDK's builders; a bad line is reported with its line
number and skipped (and written to --rejects FILE). Give each line a messageId to make
re-running an import safe (the data plane de-duplicates on it); lines without one get
a new id every run.

Ctrl-C stops within a second or two, even while the data plane does not answer; the
summary says how many lines were read but not sent.

examples:
  {PROG} import events.jsonl
  {PROG} import --dry-run events.jsonl          # validate only, send nothing
  {PROG} import events.jsonl --rejects bad.jsonl
  zcat export.jsonl.gz | {PROG} import - --threads 8

  example line:
  {{"type": "track", "userId": "u1", "event": "Signed Up", "properties": {{"plan": "pro"}},
   "timestamp": "2024-05-01T12:00:00Z", "messageId": "signup-u1"}}

exit status: 0 when every line was delivered, 1 when any failed or was skipped,
2 for a usage error (unreadable file, missing write key or data plane URL),
130 when interrupted
"""

_DEMO_EPILOG = f"""\
Starts the local data plane on a free loopback port, sends one message of every type
(track, identify, page, screen, group, alias) from several threads through a
background Client, flushes, and prints what the data plane stored and the client's
stats. Exit status 0 when every event arrived. With --keep-running the local data
plane stays up until Ctrl-C (its web page is printed as "watch events at URL").

examples:
  {PROG} demo
  {PROG} demo --json
  {PROG} demo --keep-running
"""

_DEV_SERVER_HELP = "run the local stand-in data plane (see: dev-server --help)"


def _connection_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection")
    group.add_argument("--write-key", metavar="KEY",
                       help=f"source write key (default: ${ENV_WRITE_KEY})")
    group.add_argument("--data-plane-url", metavar="URL",
                       help=f"data plane URL, without /v1/batch (default: "
                            f"${ENV_DATA_PLANE_URL})")
    group.add_argument("--timeout", type=seconds, metavar="SECONDS",
                       help="HTTP connect and read timeout (default 15)")
    group.add_argument("--max-retries", type=non_negative_int, metavar="N",
                       help="retries of a failed request (default 10)")
    group.add_argument("--deadline", type=seconds, metavar="SECONDS",
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
    group.add_argument("--timestamp", type=timestamp, metavar="TIME",
                       help="when it happened: ISO-8601 or epoch seconds (default: now)")
    group.add_argument("--message-id", metavar="ID",
                       help="a fixed message id, for de-duplication (default: a new UUID)")
    group.add_argument("--context", type=json_object, metavar="JSON",
                       help="context object, e.g. '{\"ip\": \"10.0.0.1\"}' (or @FILE)")
    group.add_argument("--integrations", type=json_object, metavar="JSON",
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


def _add_event_commands(sub: Any, parents: List[argparse.ArgumentParser]) -> None:
    track = _add_event_parser(sub, "track", "record an action a user performed", parents)
    track.add_argument("--event", help="the action's name, e.g. 'Signed Up' (required)")
    track.add_argument("--properties", type=json_object, metavar="JSON",
                       help="event properties object (or @FILE)")

    identify = _add_event_parser(sub, "identify", "tie a user to their traits", parents)
    identify.add_argument("--traits", type=json_object, metavar="JSON",
                          help="user traits object (or @FILE)")

    for name, text in (("page", "record a page view"), ("screen", "record a screen view")):
        page = _add_event_parser(sub, name, text, parents)
        page.add_argument("--name", help="the page's name")
        page.add_argument("--category", help="the page's category")
        page.add_argument("--properties", type=json_object, metavar="JSON",
                          help="page properties object (or @FILE)")

    group = _add_event_parser(sub, "group", "associate a user with a group", parents)
    group.add_argument("--group-id", metavar="ID", help="the group's id (required)")
    group.add_argument("--traits", type=json_object, metavar="JSON",
                       help="group traits object (or @FILE)")

    alias = _add_event_parser(sub, "alias", "merge a previous identity into a user",
                              parents)
    alias.add_argument("--previous-id", metavar="ID",
                       help="the identity to merge (required)")


def _add_import_command(sub: Any, connection: argparse.ArgumentParser) -> None:
    importer = sub.add_parser(
        "import", help="send JSON-lines messages in bulk (a backfill)",
        description="Send JSON-lines messages in bulk (a backfill), with progress and a "
                    "summary.",
        parents=[connection], epilog=_IMPORT_EPILOG, formatter_class=_Formatter)
    importer.add_argument("file", metavar="FILE", help="JSON-lines file, or - for stdin")
    importer.add_argument("--dry-run", action="store_true",
                          help="validate every line; send nothing (no write key needed)")
    importer.add_argument("--rejects", metavar="FILE",
                          help="write each skipped line to FILE as a JSON line "
                               '{"line": N, "reason": ..., "input": ...}')
    importer.add_argument("--threads", type=positive_int, default=4, metavar="N",
                          help="concurrent requests (default 4)")
    importer.add_argument("--batch-size", type=positive_int, default=100, metavar="N",
                          help="messages per request at most (default 100)")
    importer.add_argument("--give-up-after", type=non_negative_int, default=5, metavar="N",
                          help="stop reading after N requests in a row delivered nothing "
                               "(a dead data plane, a wrong write key); 0: never (default 5)")
    importer.add_argument("--progress-interval", type=non_negative_seconds, default=5.0,
                          metavar="SECONDS",
                          help="seconds between counter lines when stderr is not a terminal "
                               "(default 5)")
    importer.add_argument("-q", "--quiet", action="store_true",
                          help="no progress output (bad lines and the summary still print)")


def _add_demo_command(sub: Any) -> None:
    demo = sub.add_parser(
        "demo", help="local data plane + one event of every type, end to end",
        description="Run the SDK end to end against a local data plane.",
        epilog=_DEMO_EPILOG, formatter_class=_Formatter)
    demo.add_argument("--json", action="store_true", help="print stored events as JSON lines")
    demo.add_argument("--timeout", type=seconds, default=10.0, metavar="SECONDS",
                      help="how long to wait for delivery (default 10)")
    demo.add_argument("--keep-running", action="store_true",
                      help="keep the local data plane up afterwards, until Ctrl-C")


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
    _add_event_commands(sub, [connection, _message_parent()])
    _add_import_command(sub, connection)
    sub.add_parser("dev-server", help=_DEV_SERVER_HELP, add_help=False)
    _add_demo_command(sub)
    add_journal_command(sub, connection)
    return parser
