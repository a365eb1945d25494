"""Command line for the stand-in data plane: ``rudder-analytics dev-server`` or
``python -m rudder_analytics.devserver``.

Prints one line with the URL and write keys when it listens (a JSON object with
``--json``) and one with the address of the live page for a browser, then one line per
stored event or refused request unless ``--quiet``. Ctrl-C and SIGTERM stop
it cleanly with exit status 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
from types import FrameType
from typing import Any, Dict, List, Optional

from .._argtypes import non_negative_int, parse_rate_limit, positive_int
from .protocol import DEFAULT_MAX_REQUEST_BYTES
from .server import DEFAULT_WRITE_KEY, DevServer

__all__ = ["build_parser", "main", "non_negative_int", "parse_rate_limit", "positive_int"]


def build_parser() -> argparse.ArgumentParser:
    """The ``dev-server`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="rudder-analytics dev-server",
        description=(
            "A local stand-in for the RudderStack data plane (rudder-server's gateway):"
            " accepts /v1/batch and the single-event routes with the real status codes and"
            " bodies, stores events in SQLite and shows them live. Test control API under"
            " /_dev/ (not part of rudder-server)."
        ),
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; a warning is printed off loopback)",
    )
    parser.add_argument(
        "--port",
        type=non_negative_int,
        default=8080,
        help="port to listen on (default 8080; 0 picks a free port and prints it)",
    )
    parser.add_argument(
        "--write-key",
        dest="write_keys",
        action="append",
        metavar="KEY",
        help=f"write key of an enabled source; repeatable (default {DEFAULT_WRITE_KEY})",
    )
    parser.add_argument(
        "--disabled-write-key",
        dest="disabled_write_keys",
        action="append",
        metavar="KEY",
        default=[],
        help="write key of a disabled source (answered 404 source is disabled); repeatable",
    )
    parser.add_argument(
        "--max-request-bytes",
        type=positive_int,
        default=DEFAULT_MAX_REQUEST_BYTES,
        metavar="N",
        help=f"request size limit after gunzip (default {DEFAULT_MAX_REQUEST_BYTES:,})",
    )
    parser.add_argument(
        "--legacy-bodies",
        action="store_true",
        help="answer with the capitalised bodies of rudder-server before v1.46 (OK, ...)",
    )
    parser.add_argument(
        "--rate-limit",
        type=parse_rate_limit,
        metavar="EVENTS/SECONDS",
        help="enable the gateway's event rate limit, e.g. 1000/60 (default off)",
    )
    parser.add_argument(
        "--max-concurrent-requests",
        type=positive_int,
        metavar="N",
        help="answer 503 Service Unavailable above N requests in flight (default off)",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long before handling each ingestion request (default 0)",
    )
    parser.add_argument(
        "--db",
        metavar="PATH",
        help="SQLite file to store events in (default: in memory)",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--quiet", action="store_true", help="do not print events")
    output.add_argument("--json", action="store_true", help="print each event as one JSON line")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the dev server until Ctrl-C or SIGTERM; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    console = None if args.quiet else ("json" if args.json else "text")
    # The command is an application: show the package's warnings (non-loopback host,
    # handler errors) on stderr for as long as it runs.
    log = logging.getLogger("rudder_analytics.devserver")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("rudder-analytics dev-server: %(message)s"))
    handler.setLevel(logging.WARNING)
    log.addHandler(handler)
    propagate, log.propagate = log.propagate, False
    try:
        return _run(args, console)
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


def _run(args: argparse.Namespace, console: Optional[str]) -> int:
    """Start the server, print the start line, serve until a signal."""
    try:
        server = DevServer(
            write_keys=args.write_keys or (DEFAULT_WRITE_KEY,),
            disabled_write_keys=args.disabled_write_keys,
            max_request_bytes=args.max_request_bytes,
            legacy_bodies=args.legacy_bodies,
            rate_limit=args.rate_limit,
            max_concurrent_requests=args.max_concurrent_requests,
            host=args.host,
            port=args.port,
            db=args.db,
            console=console,
        )
        if args.latency:
            server.set_latency(args.latency)
        server.start()
    except (OSError, ValueError) as exc:
        print(f"rudder-analytics dev-server: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()

    def _on_signal(signum: int, frame: Optional[FrameType]) -> None:
        stop.set()

    previous: Dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, OSError):  # unusual platforms
                previous[sig] = signal.signal(sig, _on_signal)
    try:
        # The banner comes after the handlers, so a signal sent on seeing it stops cleanly.
        if args.json:
            banner: Dict[str, Any] = {
                "listening": server.url,
                "write_keys": list(server.write_keys),
                "disabled_write_keys": list(server.disabled_write_keys),
            }
            banner["page"] = server.page_url
            print(json.dumps(banner), flush=True)
        else:
            line = f"rudder-analytics dev-server listening on {server.url}"
            line += f"  write keys: {', '.join(server.write_keys)}"
            if server.disabled_write_keys:
                line += f"  disabled: {', '.join(server.disabled_write_keys)}"
            print(line, flush=True)
            print(f"open {server.page_url} in a browser to watch events arrive", flush=True)
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:  # pragma: no cover - only if SIGINT handling was refused
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
        print(
            f"rudder-analytics dev-server stopped ({server.count()} events stored)",
            file=sys.stderr,
            flush=True,
        )
        server.close()
    return 0
