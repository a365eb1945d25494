"""``rudder-analytics import FILE``: JSON lines, validated by the SDK's builders, sent in
batches over several connections, with progress, ``--rejects`` and an exact summary.

The stages: open the client and the files; read and check each line (a bad one is
skipped, reported and written to ``--rejects``); hand full batches to the sender
threads; wait for them; print the summary. Ctrl-C stops within a second or two, even
while the data plane hangs: batches not started are not sent, requests under way are
given a moment, and the summary says how many read lines were not sent.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import time
from typing import IO, Any, Dict, Optional, Tuple

from ..batches import Batch
from ..exceptions import ConfigurationError, ValidationError
from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    client_options,
    error,
    sigint_once,
    url_hint,
)
from .lines import LineError, loads, own_library, parse_line
from .progress import Progress, Tally
from .senders import Senders
from .waiting import POLL_INTERVAL, WaitNotices

__all__ = ["INTERRUPT_GRACE", "run_import"]

INTERRUPT_GRACE = 0.5
"""Seconds that requests under way get to finish after Ctrl-C."""


class UsageError(Exception):
    """A problem with the command's arguments or files (exit status 2)."""


def _open_input(path: str) -> Tuple[IO[bytes], Optional[int], bool]:
    """(binary stream, size in bytes if known, whether we opened it)."""
    if path == "-":
        return sys.stdin.buffer, None, False
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise UsageError(f"cannot open {path}: {exc.strerror}") from None
    try:
        info = os.fstat(handle.fileno())
        size = info.st_size if stat.S_ISREG(info.st_mode) else None
    except OSError:
        size = None
    return handle, size, True


class Rejects:
    """``--rejects FILE``: one JSON line per skipped line: its number, reason and text."""

    def __init__(self, path: Optional[str]) -> None:
        self.path = path
        self._handle: Optional[IO[str]] = None
        if path is not None:
            try:
                self._handle = open(path, "w", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise UsageError(f"cannot write {path}: {exc.strerror}") from None

    def write(self, number: int, reason: str, raw: bytes) -> None:
        """Record skipped line ``number`` (a no-op without ``--rejects``)."""
        if self._handle is None:
            return
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        record = {"line": number, "reason": reason, "input": text}
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    def close(self) -> None:
        """Close the rejects file, if one was opened."""
        if self._handle is not None:
            self._handle.close()


def with_own_libraries(batch: Batch, libraries: Dict[int, Any]) -> Batch:
    """``batch`` with each listed message's ``context.library`` put back as the line had it.

    The builders always set the SDK's own library; a re-imported exported event keeps
    the one that built it. Goes through the public stored-batch format, which keeps
    message ids and timestamps; unchanged if the result would not be valid.
    """
    if not libraries:
        return batch
    messages = batch.messages
    for index, library in libraries.items():
        messages[index]["context"]["library"] = library
    try:
        return Batch.from_json(json.dumps({"version": 1, "messages": messages}))
    except (ValidationError, TypeError, ValueError):
        return batch


def _line_text(number: int, raw: bytes) -> str:
    """The decoded line; raises LineError when it is not UTF-8."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LineError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return text.lstrip("\ufeff") if number == 1 else text


def _decode(text: str) -> Any:
    try:
        return loads(text)
    except ValueError as exc:  # json and orjson errors are ValueErrors
        raise LineError(f"not valid JSON: {exc}") from None


class Import:
    """One run of the command; each stage is a method."""

    stream: IO[bytes]
    """The input (set by :meth:`open`)."""
    opened: bool
    """Whether :meth:`open` opened ``stream`` (and :meth:`close` must close it)."""
    progress: Progress
    """The display on stderr (set by :meth:`open`)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.client: Any = None
        self.tally: Tally = Tally()
        self.started: float = time.monotonic()
        self.stopped: Optional[str] = None
        """Why reading stopped early (None: it did not)."""
        self.unanswered: int = 0
        """Messages in requests still under way when the summary was taken."""
        self.batch: Batch = Batch()
        self.libraries: Dict[int, Any] = {}
        self.rejects: Rejects = Rejects(None)
        self.senders: Optional[Senders] = None
        self.notices: Optional[WaitNotices] = None

    # --- opening ----------------------------------------------------------------------

    def open(self) -> None:
        """The input, the rejects file, the client (unless a dry run) and the display."""
        args = self.args
        self.stream, size, self.opened = _open_input(args.file)
        try:
            self.rejects = Rejects(args.rejects)
            self.client = self._client()
        except BaseException:
            if self.opened:
                self.stream.close()
            self.rejects.close()
            raise
        self.progress = Progress(self.tally, sys.stderr, size, args.progress_interval,
                                 args.quiet, args.dry_run)
        sdk_log = getattr(args, "sdk_log", None)
        if sdk_log is not None:
            sdk_log.sink = self.progress.write
        if self.client is not None:
            hint = url_hint(self.client.config.data_plane_url)
            if hint:
                self.progress.write(f"import: {hint}")
            self.senders = Senders(self.client, args.threads, self.tally)
            self.notices = WaitNotices(self.client,
                                       lambda text: self.progress.write(f"import: {text}"))
            self.batch = self.client.batch()

    def _client(self) -> Any:
        if self.args.dry_run:
            return None
        from ..client import Client

        try:
            return Client(self.args.write_key, self.args.data_plane_url,
                          **client_options(self.args))
        except ConfigurationError as exc:
            raise UsageError(str(exc)) from None

    # --- reading ----------------------------------------------------------------------

    def read(self) -> None:
        """Every line, until the end or until sending is hopeless."""
        for number, raw in enumerate(self.stream, 1):
            with self.tally.lock:
                self.tally.lines = number
            self.progress.advance(len(raw))
            self.add_line(number, raw)
            if len(self.batch) >= self.args.batch_size and not self.submit():
                return
        self.submit()

    def add_line(self, number: int, raw: bytes) -> None:
        """Check one line and add it to the batch, or skip and report it."""
        try:
            text = _line_text(number, raw)
            if not text.strip():
                return
            kind, kwargs = parse_line(_decode(text))
            getattr(self.batch, kind)(**kwargs)
        except (ValueError, TypeError) as exc:  # LineError, ValidationError and kin
            self.skip(number, str(exc), raw)
            return
        library = own_library(kwargs)
        if library is not None:
            self.libraries[len(self.batch) - 1] = library
        with self.tally.lock:
            self.tally.valid += 1

    def skip(self, number: int, reason: str, raw: bytes) -> None:
        """Count, report and write to ``--rejects`` line ``number``, which is not sent."""
        with self.tally.lock:
            self.tally.skipped += 1
        self.progress.write(f"line {number}: skipped: {reason}")
        self.rejects.write(number, reason, raw)

    # --- sending ----------------------------------------------------------------------

    def submit(self) -> bool:
        """Hand the batch to the senders (waiting for room); False when it is hopeless."""
        batch, libraries = self.batch, self.libraries
        self.batch, self.libraries = self.client.batch() if self.client else Batch(), {}
        if self.senders is None or not len(batch):
            return True
        batch = with_own_libraries(batch, libraries)
        while not self.senders.submit(batch, POLL_INTERVAL):
            if not self.keep_going():
                return False
        return self.keep_going()

    def keep_going(self) -> bool:
        """Show progress and explain waits; False once N requests in a row failed."""
        assert self.senders is not None and self.notices is not None
        for problem in self.senders.problems():
            self.progress.write(f"import: {problem}")
        self.progress.tick()
        self.notices.poll(self.senders.waiting_since())
        limit = self.args.give_up_after
        with self.tally.lock:
            hopeless = 0 < limit <= self.tally.failed_in_a_row
        if hopeless:
            self.stopped = f"gave up after {limit} requests in a row failed"
        return not hopeless

    def finish(self) -> None:
        """Wait for every request handed over (none are started after giving up)."""
        if self.senders is None:
            return
        if self.stopped:
            self.senders.cancel()
        while not self.senders.wait(POLL_INTERVAL):
            self.keep_going()
            if self.stopped:
                self.senders.cancel()

    def interrupt(self) -> None:
        """Ctrl-C: send nothing more; requests under way get ``INTERRUPT_GRACE``."""
        self.stopped = "interrupted"
        if self.senders is None:
            return
        self.senders.cancel()
        self.senders.wait(INTERRUPT_GRACE)

    # --- closing ----------------------------------------------------------------------

    def close(self) -> None:
        """Freeze the counts, then release the threads, the files and the display."""
        if self.senders is not None:
            self.unanswered = self.senders.freeze()
            self.senders.close()
        if self.opened:
            self.stream.close()
        self.rejects.close()
        self.progress.close()

    def summary(self) -> int:
        """Print the summary (once); the exit status."""
        counts = self.counts()
        last_error = self.client.stats()["last_error"] if self.client is not None else None
        if self.client is not None:
            self.client.shutdown(timeout=0)
        print(self.summary_line(counts))
        if counts["failed"] and last_error:
            print(f"import: last delivery error: {last_error}", file=sys.stderr)
        if counts["skipped"] and self.args.rejects:
            print(f"import: skipped lines written to {self.args.rejects}", file=sys.stderr)
        if self.stopped == "interrupted":
            return EXIT_INTERRUPTED
        return EXIT_OK if counts["failed"] == 0 and counts["skipped"] == 0 else EXIT_FAILED

    def counts(self) -> Dict[str, float]:
        """The tally at one instant, with the elapsed time and the rate."""
        tally = self.tally
        elapsed = time.monotonic() - self.started
        with tally.lock:
            counts: Dict[str, float] = {
                "lines": tally.lines, "valid": tally.valid, "sent": tally.sent,
                "failed": tally.failed, "skipped": tally.skipped, "elapsed": elapsed,
                "not_sent": tally.valid - tally.sent - tally.failed,
            }
        counts["rate"] = counts["sent"] / elapsed if elapsed > 0 else counts["sent"]
        return counts

    def summary_line(self, c: Dict[str, float]) -> str:
        """The summary's one line on stdout, from :meth:`counts`."""
        if self.args.dry_run:
            return (f"import (dry run): {c['valid']:,.0f} valid, {c['skipped']:,.0f} skipped, "
                    f"{c['lines']:,.0f} lines in {c['elapsed']:.2f}s")
        line = (f"import: sent {c['sent']:,.0f}, failed {c['failed']:,.0f}, "
                f"skipped {c['skipped']:,.0f} in {c['elapsed']:.2f}s "
                f"({c['rate']:,.0f} events/s)")
        if self.stopped:
            line += f"; {self.stopped}, {c['not_sent']:,.0f} read but not sent"
            if self.unanswered:
                line += (f" ({self.unanswered:,} of them in requests still unanswered, "
                         "which may have arrived)")
        return line


def run_import(args: argparse.Namespace) -> int:
    """The ``import`` command: its exit status (130 after Ctrl-C)."""
    run = Import(args)
    with sigint_once():  # a second Ctrl-C while winding down is ignored
        try:
            run.open()
        except UsageError as exc:
            error("import", str(exc))
            return EXIT_USAGE
        try:
            run.read()
            run.finish()
        except KeyboardInterrupt:
            run.interrupt()
        run.close()
        return run.summary()
