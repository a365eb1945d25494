"""The counts of an ``import`` and how they are shown while it runs.

On a terminal (with tqdm installed, the ``cli`` extra) a one-line bar that fits the
terminal's width (80 columns included) and shows events/s; elsewhere a counter line
on stderr every few seconds.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from typing import Any, Dict, Optional, TextIO

__all__ = ["Progress", "Tally", "compact"]

BAR_REFRESH = 0.1
"""Seconds between two updates of the progress bar (tqdm's own refresh rate)."""


class Tally:
    """Counts shared by the reader (main thread) and the senders; guarded by ``lock``."""

    def __init__(self) -> None:
        self.lock: threading.Lock = threading.Lock()
        self.lines: int = 0
        self.valid: int = 0
        self.sent: int = 0
        self.failed: int = 0
        self.skipped: int = 0
        self.failed_in_a_row: int = 0
        """Requests in a row that delivered nothing (reset by any delivery)."""

    def settle(self, delivered: int, failed: int) -> None:
        """One request's outcome (from a sender thread)."""
        with self.lock:
            self.sent += delivered
            self.failed += failed
            self.failed_in_a_row = 0 if delivered else self.failed_in_a_row + 1


def compact(count: float) -> str:
    """``9,999``, then ``12.3k``, ``456k``, ``1.23M``: five characters up to 999G."""
    if count < 10_000:
        return f"{count:,.0f}"
    text = ""
    for unit, size in (("k", 1e3), ("M", 1e6), ("G", 1e9)):
        value = count / size
        digits = 2 if value < 9.995 else 1 if value < 99.95 else 0
        text = f"{value:.{digits}f}{unit}"
        if value < 999.5:
            break
    return text


def _columns(stream: TextIO) -> int:
    """The terminal's width: that of ``stream``, else ``$COLUMNS``, else 80."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        pass
    try:
        return int(os.environ.get("COLUMNS", "")) or 80
    except ValueError:
        return 80


def _tqdm() -> Any:
    try:
        return importlib.import_module("tqdm")
    except ImportError:
        return None


_SIZED_FORMAT = "{desc} {percentage:3.0f}%|{bar}| {remaining} left{postfix}"
_UNSIZED_FORMAT = "{desc} {n_fmt} lines in {elapsed}{postfix}"


class Progress:
    """A tqdm bar on a terminal; otherwise a counter line on stderr every ``interval``."""

    def __init__(self, tally: Tally, stream: TextIO, total_bytes: Optional[int],
                 interval: float, quiet: bool, dry_run: bool) -> None:
        self._tally = tally
        self._stream = stream
        self._interval = interval
        self._dry_run = dry_run
        self._started = time.monotonic()
        self._pending = 0
        self._lines = not quiet
        self._bytes = False
        self._bar: Any = None
        self._next = self._started + interval
        isatty = getattr(stream, "isatty", None)
        tqdm_module = _tqdm() if not quiet and callable(isatty) and isatty() else None
        if tqdm_module is not None:
            self._bar = self._open_bar(tqdm_module, total_bytes)
            self._bytes = total_bytes is not None
            self._lines = False
            self._next = self._started

    def _open_bar(self, tqdm_module: Any, total_bytes: Optional[int]) -> Any:
        options: Dict[str, Any] = {"file": self._stream, "desc": "import", "leave": True,
                                   "ncols": _columns(self._stream), "mininterval": BAR_REFRESH}
        if total_bytes is not None:
            options.update(total=total_bytes, unit="B", bar_format=_SIZED_FORMAT)
        else:
            options.update(unit=" lines", bar_format=_UNSIZED_FORMAT)
        return tqdm_module.tqdm(**options)

    def advance(self, nbytes: int) -> None:
        """One more line was read (``nbytes`` long)."""
        self._pending += nbytes if self._bytes else 1
        self.tick()

    def tick(self, force: bool = False) -> None:
        """Show the counts, at most every ``BAR_REFRESH`` (bar) or ``interval`` seconds."""
        if self._bar is None and not self._lines:
            return
        now = time.monotonic()
        if now < self._next and not force:
            return
        if self._bar is not None:
            self._next = now + BAR_REFRESH
            self._bar.ncols = _columns(self._stream)  # follows a resized terminal
            self._bar.set_postfix_str(self._bar_counts(now), refresh=False)
            self._bar.update(self._pending)
            self._pending = 0
            if force:
                self._bar.refresh()
            return
        self._next = now + self._interval
        self._stream.write(self._counter_line(now) + "\n")
        self._stream.flush()

    def _rate(self, now: float, count: int) -> float:
        return count / max(now - self._started, 1e-9)

    def _bar_counts(self, now: float) -> str:
        """Events/s first (it must survive trimming to the width), then the counts."""
        tally = self._tally
        with tally.lock:
            if self._dry_run:
                return (f"{compact(self._rate(now, tally.valid))} lines/s, "
                        f"valid {compact(tally.valid)}, skipped {compact(tally.skipped)}")
            return (f"{compact(self._rate(now, tally.sent))} events/s, "
                    f"sent {compact(tally.sent)}, failed {compact(tally.failed)}, "
                    f"skipped {compact(tally.skipped)}")

    def _counter_line(self, now: float) -> str:
        tally = self._tally
        with tally.lock:
            if self._dry_run:
                return (f"import: {tally.lines:,} lines read, {tally.valid:,} valid, "
                        f"{tally.skipped:,} skipped")
            return (f"import: {tally.lines:,} lines read, {tally.sent:,} sent, "
                    f"{tally.failed:,} failed, {tally.skipped:,} skipped "
                    f"({self._rate(now, tally.sent):,.0f} events/s)")

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
            self._bar = None
