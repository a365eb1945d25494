"""``rudder-analytics journal DIR``: what a journal holds; ``--send`` delivers it.

Works on journals whose owner died (``--send`` adopts those with the same write
key and data plane URL, as a restarted client would, and waits until they are
delivered or the deadline passes). Exit status 0, or 1 if events remain.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from .common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, PROG, error

_EPILOG = f"""examples:
  {PROG} journal /var/lib/app/rudder
  {PROG} journal /var/lib/app/rudder --json
  {PROG} journal /var/lib/app/rudder --send --write-key KEY --data-plane-url URL
"""


def add_journal_command(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                        connection: argparse.ArgumentParser) -> None:
    """Register the ``journal`` sub-command."""
    parser = sub.add_parser(
        "journal", parents=[connection], help="show (or --send) what a persist_dir journal holds",
        description="Show what the journals in a persist_dir hold; --send delivers those "
                    "whose owner died.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", metavar="DIR", help="the persist_dir (or one journal in it)")
    parser.add_argument("--send", action="store_true",
                        help="deliver the journals of dead processes with these credentials")
    parser.add_argument("--json", action="store_true", help="one JSON object per journal")
    parser.add_argument("--wait", type=float, default=60.0, metavar="SECONDS",
                        help="with --send: how long to wait for delivery (default 60)")


def _show(args: argparse.Namespace) -> int:
    from ..journal.inspect import inspect_dir

    journals = inspect_dir(args.dir)
    for info in journals:
        if args.json:
            print(json.dumps(info.as_dict()))
            continue
        owner = "alive" if info.owner_alive else "dead"
        print(f"{info.path}: {info.events:,} event(s), {info.size_bytes:,} bytes, oldest "
              f"{info.oldest or '-'}, owner pid {info.pid} {owner}, damaged {info.damaged}, "
              f"url {info.url}")
    if not journals and not args.json:
        print(f"{args.dir}: no journal")
    return EXIT_OK


def _send(args: argparse.Namespace) -> int:
    from ..client import Client
    from ..journal.inspect import inspect_dir
    from ..journal.store import key_hash

    options = {"persist_dir": args.dir, "atexit": False}
    if args.no_gzip:
        options["gzip"] = False
    client = Client(args.write_key, args.data_plane_url, **options)
    digest, url = key_hash(client.config.write_key), client.config.data_plane_url
    targets = [i.path for i in inspect_dir(args.dir)
               if i.key_sha256 == digest and i.url == url and not i.owner_alive and i.events]
    deadline = time.monotonic() + args.wait
    while any(os.path.exists(path) for path in targets) and time.monotonic() < deadline:
        client.flush(max(0.0, deadline - time.monotonic()))
        time.sleep(0.2)  # adopted journals are deleted once delivered
    client.shutdown()
    left = sum(i.events for i in inspect_dir(args.dir) if i.path in targets)
    stats = client.stats()
    print(f"recovered {stats['recovered']:,}, delivered {stats['delivered']:,}, "
          f"left {left:,}")
    return EXIT_OK if not left else EXIT_FAILED


def run_journal(args: argparse.Namespace) -> int:
    """The ``journal`` command."""
    if not os.path.isdir(args.dir):
        error("journal", f"{args.dir}: not a directory")
        return EXIT_USAGE
    return _send(args) if args.send else _show(args)
