"""rudder-analytics import: rejects file, exported context.library, URL hints, the
progress bar's width and rate, and cancelled batches counted as not sent."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from rudder_analytics.cli import main
from rudder_analytics.cli.progress import Progress, Tally, compact
from rudder_analytics.devserver import DevServer
from rudder_analytics.version import VERSION

WRITE_KEY = "test-write-key"  # what the rudder_dataplane fixture accepts


def _args(server: DevServer, *rest: str) -> list[str]:
    return ["import", "--write-key", WRITE_KEY, "--data-plane-url", server.url, *rest]


def _write_lines(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                            for line in lines), encoding="utf-8")
    return path


def test_rejects_file_has_every_skipped_line(rudder_dataplane: DevServer, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """--rejects FILE gets one JSON line per skipped line: number, reason, the line itself."""
    source = tmp_path / "in.jsonl"
    source.write_bytes(
        b'{"type": "track", "userId": "u1", "event": "Good"}\n'
        b"{not json\n"
        b'{"type": "track", "userId": "u1"}\n'
        b"\n"
        b'{"type": "identify", "userId": "\xff"}\n'
        b'{"type": "launch", "userId": "u1"}\n')
    rejects = tmp_path / "rejects.jsonl"
    assert main(_args(rudder_dataplane, str(source), "--rejects", str(rejects))) == 1
    records = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in records] == [2, 3, 5, 6]
    assert records[0]["reason"].startswith("not valid JSON")
    assert records[0]["input"] == "{not json"
    assert records[1] == {"line": 3, "reason": "event is required",
                          "input": '{"type": "track", "userId": "u1"}'}
    assert records[2]["reason"].startswith("not UTF-8")
    assert '"type" must be one of' in records[3]["reason"]
    captured = capsys.readouterr()
    assert "skipped 4" in captured.out
    assert f"skipped lines written to {rejects}" in captured.err
    assert rudder_dataplane.count() == 1


def test_rejects_file_that_cannot_be_written_is_a_usage_error(
    rudder_dataplane: DevServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unwritable --rejects path exits 2 before anything is sent."""
    source = _write_lines(tmp_path / "in.jsonl", [{"type": "track", "userId": "u",
                                                   "event": "E"}])
    assert main(_args(rudder_dataplane, str(source), "--rejects",
                      str(tmp_path / "no" / "such" / "dir.jsonl"))) == 2
    assert "cannot write" in capsys.readouterr().err
    assert rudder_dataplane.count() == 0


def test_reimported_export_keeps_its_own_context_library(rudder_dataplane: DevServer,
                                                         tmp_path: Path) -> None:
    """An exported event's context.library survives the import; other lines get the SDK's."""
    exported_library = {"name": "rudder-sdk-ruby-sync", "version": "1.0.7"}
    lines = [
        {"type": "track", "userId": "u1", "event": "Old", "messageId": "exported-1",
         "context": {"library": exported_library, "ip": "10.0.0.1"},
         "originalTimestamp": "2023-01-02T03:04:05.678Z"},
        {"type": "identify", "userId": "u2", "messageId": "fresh-1",
         "context": {"ip": "10.0.0.2"}},
        {"type": "page", "userId": "u3", "name": "Home", "messageId": "exported-2",
         "context": {"library": {"name": "analytics-python", "version": "2.0"}}},
    ]
    path = _write_lines(tmp_path / "export.jsonl", lines)
    assert main(_args(rudder_dataplane, str(path))) == 0
    stored = {e["messageId"]: e for e in rudder_dataplane.events()}
    assert stored["exported-1"]["context"]["library"] == exported_library
    assert stored["exported-1"]["context"]["ip"] == "10.0.0.1"
    assert stored["exported-2"]["context"]["library"]["name"] == "analytics-python"
    own = stored["fresh-1"]["context"]["library"]
    assert own["version"] == VERSION and own["name"] != "analytics-python"


@pytest.mark.parametrize("suffix", ["/v1/batch", "/v1/batch/"])
def test_data_plane_url_ending_in_v1_batch_gets_a_hint(
    rudder_dataplane: DevServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    suffix: str,
) -> None:
    """A URL that ends in /v1/batch is refused with the base URL to give instead."""
    path = _write_lines(tmp_path / "in.jsonl", [{"type": "track", "userId": "u",
                                                 "event": "E"}])
    argv = ["import", "--write-key", WRITE_KEY, "--data-plane-url",
            rudder_dataplane.url + suffix, str(path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "/v1/batch" in err and rudder_dataplane.url in err
    assert rudder_dataplane.count() == 0


def test_data_plane_url_ending_in_v1_gets_a_hint(rudder_dataplane: DevServer, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A URL that ends in /v1 (so requests would go to /v1/v1/batch) gets a hint."""
    path = _write_lines(tmp_path / "in.jsonl", [{"type": "track", "userId": "u",
                                                 "event": "E"}])
    argv = ["import", "--write-key", WRITE_KEY, "--data-plane-url",
            rudder_dataplane.url + "/v1", str(path), "--max-retries", "0"]
    assert main(argv) == 1  # the dev server answers 404, like rudder-server
    err = capsys.readouterr().err
    assert "hint: the data plane URL ends in /v1" in err
    assert f"try --data-plane-url {rudder_dataplane.url}" in err


def test_batches_cancelled_after_giving_up_are_not_sent_not_failed(
    rudder_dataplane: DevServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After giving up, only requests that were sent count as failed; the rest: 'not sent'."""
    lines = [{"type": "track", "userId": f"u{i}", "event": "E"} for i in range(2000)]
    path = _write_lines(tmp_path / "events.jsonl", lines)
    rudder_dataplane.fail_next(1000, status=401)
    assert main(_args(rudder_dataplane, str(path), "--threads", "2", "--batch-size", "10",
                      "--give-up-after", "3")) == 1
    out = capsys.readouterr().out
    posts = [r for r in rudder_dataplane.requests() if r.path == "/v1/batch"]
    assert f"failed {10 * len(posts)}," in out
    read_not_sent = int(out.split("; gave up after 3 requests in a row failed, ")[1]
                        .split(" read but not sent")[0].replace(",", ""))
    assert read_not_sent > 0
    assert rudder_dataplane.count() == 0


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _shown_lines(terminal: _Terminal) -> list[str]:
    """Each state the bar was drawn in, and each line written between them."""
    return [part for chunk in terminal.getvalue().split("\n")
            for part in chunk.split("\r") if part.strip()]


@pytest.mark.parametrize("total", [None, 5_000_000_000])
def test_progress_bar_fits_80_columns_with_events_per_second(
    monkeypatch: pytest.MonkeyPatch, total: int | None
) -> None:
    """With huge counts the bar still fits an 80-column terminal and shows events/s."""
    pytest.importorskip("tqdm")
    monkeypatch.setenv("COLUMNS", "80")
    terminal = _Terminal()
    tally = Tally()
    progress = Progress(tally, terminal, total, 5.0, quiet=False, dry_run=False)
    tally.lines = tally.valid = 987_654_321
    tally.sent, tally.failed, tally.skipped = 987_654_000, 123_456, 99_999
    progress.advance(1_000_000)
    progress.tick(force=True)
    progress.close()
    shown = _shown_lines(terminal)
    assert shown
    for line in shown:
        assert len(line) <= 80, line
    assert "events/s" in shown[-1] and "sent 988M" in shown[-1]


def test_progress_bar_of_a_real_import_fits_80_columns(
    rudder_dataplane: DevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real import on an 80-column terminal: every drawn line fits and shows events/s."""
    pytest.importorskip("tqdm")
    monkeypatch.setenv("COLUMNS", "80")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    lines = [{"type": "track", "userId": f"u{i}", "event": "E"} for i in range(500)]
    path = _write_lines(tmp_path / "events.jsonl", lines)
    assert main(_args(rudder_dataplane, str(path))) == 0
    shown = _shown_lines(terminal)
    assert shown and all(len(line) <= 80 for line in shown)
    assert "events/s" in shown[-1] and "sent 500" in shown[-1]


def test_compact_counts_stay_short() -> None:
    """Counts in the bar are at most five characters wide."""
    counts = (0, 9_999, 10_000, 99_960, 123_456, 999_999, 1_234_567, 5e9)
    assert [compact(n) for n in counts] == \
        ["0", "9,999", "10.0k", "100k", "123k", "1.00M", "1.23M", "5.00G"]
