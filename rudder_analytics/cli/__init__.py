"""The ``rudder-analytics`` command (also ``python -m rudder_analytics``).

Commands:

* ``track``, ``identify``, ``page``, ``screen``, ``group``, ``alias``: send one
  event synchronously; the exit status says whether it was delivered
  (:mod:`.events`).
* ``import FILE``: send JSON-lines messages in bulk (a backfill), with progress
  and a summary (:mod:`.importer`).
* ``dev-server``: the local stand-in data plane (:mod:`rudder_analytics.devserver.cli`,
  loaded only for that command).
* ``demo``: a local data plane plus one event of every type, end to end (:mod:`.demo`).

Exit statuses: 0 success, 1 delivery failed (or, for ``import``, some lines
failed or were skipped), 2 usage or validation error, 130 interrupted (Ctrl-C).
Importing this package loads neither the dev server nor ``requests``' sessions.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, Callable, Dict, Optional, Union

from .common import (
    EVENT_COMMANDS,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    SdkLog,
    error,
)
from .lines import LineError, parse_line
from .parser import build_parser

__all__ = [
    "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "LineError", "build_parser",
    "main", "parse_line",
]


def _run_event(args: argparse.Namespace) -> int:
    from .events import run_event

    return run_event(args)


def _run_import(args: argparse.Namespace) -> int:
    from .importer import run_import

    return run_import(args)


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args)


def _journal_cli() -> Any:
    from . import journal

    return journal


_COMMANDS: Dict[str, Callable[[argparse.Namespace], int]] = {
    **dict.fromkeys(EVENT_COMMANDS, _run_event),
    "import": _run_import,
    "demo": _run_demo,
    "journal": lambda args: _journal_cli().run_journal(args),
}


def _status(code: Any) -> int:
    """argparse's ``SystemExit`` code as an exit status."""
    if code is None:
        return EXIT_OK
    return code if isinstance(code, int) else EXIT_FAILED


def _dev_server(argv: Sequence[str]) -> int:
    from ..devserver.cli import main as devserver_main

    try:
        return devserver_main(list(argv))
    except SystemExit as exc:
        return _status(exc.code)


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> Union[argparse.Namespace, int]:
    """The parsed arguments, or the exit status of --help, --version or a usage error."""
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:
        return _status(exc.code)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the console script and of ``python -m rudder_analytics``."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "dev-server":
        return _dev_server(args_list[1:])
    parser = build_parser()
    args = _parse(parser, args_list)
    if isinstance(args, int):
        return args
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        with SdkLog.installed(bool(getattr(args, "debug", False))) as log:
            args.sdk_log = log
            return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        error(args.command, "interrupted")
        return EXIT_INTERRUPTED
