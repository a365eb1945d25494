"""argparse value types shared by the ``rudder-analytics`` commands.

Standard library only and importing nothing else of the package, so the main command's
parser can use them without loading the dev server.
"""

from __future__ import annotations

import argparse
from typing import Tuple

__all__ = ["non_negative_int", "parse_rate_limit", "positive_int"]


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer > 0."""
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def parse_rate_limit(text: str) -> Tuple[int, float]:
    """argparse type: ``EVENTS/SECONDS`` (e.g. ``1000/60``) -> ``(1000, 60.0)``."""
    events_text, sep, seconds_text = text.partition("/")
    try:
        if not sep:
            raise ValueError
        events = int(events_text)
        seconds = float(seconds_text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected EVENTS/SECONDS such as 1000/60, got {text!r}"
        ) from None
    if events <= 0 or seconds <= 0:
        raise argparse.ArgumentTypeError("EVENTS and SECONDS must be positive")
    return events, seconds
