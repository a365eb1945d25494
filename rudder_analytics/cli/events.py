"""``track``, ``identify``, ``page``, ``screen``, ``group``, ``alias``: one event, sent
synchronously; exit status 0 only when the data plane stored it."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any, Callable, Dict, Tuple

from ..exceptions import ConfigurationError, DeliveryError, ValidationError
from .common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, client_options, error, url_hint
from .waiting import WaitNotices, run_watched

__all__ = ["EVENT_FIELDS", "describe", "run_event"]

EVENT_FIELDS: Dict[str, Tuple[str, ...]] = {
    "track": ("user_id", "event", "properties"),
    "identify": ("user_id", "traits"),
    "page": ("user_id", "category", "name", "properties"),
    "screen": ("user_id", "category", "name", "properties"),
    "group": ("user_id", "group_id", "traits"),
    "alias": ("previous_id", "user_id"),
}
"""The options of each command that become its builder's arguments."""
_COMMON_FIELDS = ("anonymous_id", "context", "timestamp", "integrations", "message_id")


def describe(message: Mapping[str, Any]) -> str:
    """``track for u1: Signed Up (messageId ...)``."""
    kind = message.get("type", "?")
    who = message.get("userId") or message.get("anonymousId")
    label = message.get("event") or message.get("name") or message.get("groupId") or \
        message.get("previousId")
    text = f"{kind} for {who}"
    if label:
        text += f": {label}"
    return f"{text} (messageId {message.get('messageId')})"


def _kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    names = EVENT_FIELDS[args.command] + _COMMON_FIELDS
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _dry_run(command: str, kwargs: Dict[str, Any]) -> int:
    """Validate and print the message; send nothing."""
    from .._build import messages

    builder: Callable[..., Dict[str, Any]] = getattr(messages, f"build_{command}")
    try:
        message = builder(**kwargs)
    except ValidationError as exc:
        error(command, str(exc))
        return EXIT_USAGE
    print(json.dumps(message, indent=2, ensure_ascii=False, default=str))
    return EXIT_OK


def _deliver(command: str, client: Any, kwargs: Dict[str, Any]) -> Tuple[int, Any]:
    """Send through the sync client, explaining waits; (exit status, message or None)."""
    notices = WaitNotices(client, lambda text: print(f"{command}: {text}", file=sys.stderr))
    try:
        ok, message = run_watched(lambda: getattr(client, command)(**kwargs), notices)
    except ValidationError as exc:
        error(command, str(exc))
        return EXIT_USAGE, None
    except DeliveryError as exc:
        error(command, f"not delivered: {exc}")
        return EXIT_FAILED, None
    if not ok:
        last = client.stats()["last_error"]
        error(command, "not delivered" + (f": {last}" if last else ""))
        return EXIT_FAILED, None
    return EXIT_OK, message


def run_event(args: argparse.Namespace) -> int:
    """Build one message and deliver it synchronously; 0 only when it was delivered."""
    from ..client import Client

    command: str = args.command
    kwargs = _kwargs(args)
    if args.dry_run:
        return _dry_run(command, kwargs)
    try:
        client = Client(args.write_key, args.data_plane_url, sync_mode=True,
                        raise_on_error=True, **client_options(args))
    except ConfigurationError as exc:
        error(command, str(exc))
        return EXIT_USAGE
    hint = url_hint(client.config.data_plane_url)
    if hint:
        print(f"{command}: {hint}", file=sys.stderr)
    try:
        status, message = _deliver(command, client, kwargs)
    finally:
        client.shutdown(timeout=0)
    if status == EXIT_OK:
        if args.json:
            print(json.dumps(message, ensure_ascii=False, default=str))
        elif not args.quiet:
            print(f"delivered {describe(message)}")
    return status
