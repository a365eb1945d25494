"""``rudder-analytics journal DIR``: shows a dead process's journal; ``--send`` delivers it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rudder_analytics import Client
from rudder_analytics.cli import main
from rudder_analytics.devserver import DevServer

KEY = "clikey"


def test_journal_command_shows_and_sends(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The command counts what an ended client left, then --send delivers it all with
    the original messageIds and the journal is gone."""
    with DevServer(write_keys=[KEY]) as server:
        server.fail_fraction(1.0)
        client = Client(KEY, server.url, persist_dir=str(tmp_path), max_retries=100_000,
                        retry_deadline=3600.0, retry_base_delay=0.01, retry_max_delay=0.02,
                        upload_interval=0.02)
        for i in range(120):
            client.track("u", "e", message_id=f"c-{i}")
        client.shutdown(timeout=0.3)
        server.clear_faults()
        capsys.readouterr()
        assert main(["journal", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert "120 event(s)" in out and "dead" in out
        assert main(["journal", str(tmp_path), "--json"]) == 0
        info = json.loads(capsys.readouterr().out.splitlines()[0])
        assert info["events"] == 120 and info["owner_alive"] is False and info["damaged"] == 0
        assert main(["journal", str(tmp_path), "--send", "--write-key", KEY,
                     "--data-plane-url", server.url, "--wait", "20"]) == 0
        assert "left 0" in capsys.readouterr().out
        assert {e["messageId"] for e in server.events()} == {f"c-{i}" for i in range(120)}
    assert main(["journal", str(tmp_path)]) == 0
    assert "no journal" in capsys.readouterr().out


def test_journal_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    """journal --help exits 0 and shows worked examples."""
    assert main(["journal", "--help"]) == 0
    assert "rudder-analytics journal" in capsys.readouterr().out
