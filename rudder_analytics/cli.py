"""The ``rudder-analytics`` command (placeholder until the CLI lands)."""

from __future__ import annotations

import sys
from typing import Optional


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of the console script."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "dev-server":
        from .devserver.cli import main as devserver_main

        return devserver_main(args[1:])
    print("usage: rudder-analytics {dev-server,demo} ...", file=sys.stderr)
    return 2
