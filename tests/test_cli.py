"""The rudder-analytics command: event commands, import, demo, dev-server, over real HTTP."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rudder_analytics.cli import main, parse_line
from rudder_analytics.devserver import DevServer
from rudder_analytics.version import VERSION

WRITE_KEY = "test-write-key"  # what the rudder_dataplane fixture accepts

EVENT_COMMANDS = ["track", "identify", "page", "screen", "group", "alias"]


def _args(server: DevServer, *rest: str) -> list[str]:
    return [rest[0], "--write-key", WRITE_KEY, "--data-plane-url", server.url, *rest[1:]]


def _instant(text: str) -> dt.datetime:
    """An ISO-8601 time as an aware datetime, whichever UTC spelling ("Z", "+00:00")."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _write_lines(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                            for line in lines), encoding="utf-8")
    return path


# --- help and version ------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the package version and exits 0."""
    assert main(["--version"]) == 0
    assert VERSION in capsys.readouterr().out


@pytest.mark.parametrize("command", [*EVENT_COMMANDS, "import", "demo"])
def test_every_command_has_help_with_examples(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each command's --help exits 0 and shows worked examples."""
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"rudder-analytics {command}" in out


def test_top_level_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    """The top-level help names every command and the configuration variables."""
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in [*EVENT_COMMANDS, "import", "dev-server", "demo"]:
        assert command in out
    assert "RUDDER_WRITE_KEY" in out and "RUDDER_DATA_PLANE_URL" in out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a command the usage is printed and the exit status is 2."""
    assert main([]) == 2
    assert "usage:" in capsys.readouterr().err


# --- event commands --------------------------------------------------------------------


def test_track_is_delivered(rudder_dataplane: DevServer, capsys: pytest.CaptureFixture[str]
                            ) -> None:
    """track sends synchronously: exit 0 means the data plane already stored it."""
    status = main(_args(rudder_dataplane, "track", "--user-id", "u1", "--event", "Signed Up",
                        "--properties", '{"plan": "pro", "seats": 3}'))
    assert status == 0
    [event] = rudder_dataplane.events(type="track")
    assert event["userId"] == "u1" and event["event"] == "Signed Up"
    assert event["properties"] == {"plan": "pro", "seats": 3}
    assert f"messageId {event['messageId']}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["identify", "--user-id", "u1", "--traits", '{"email": "a@b.c"}'],
         {"type": "identify", "traits": {"email": "a@b.c"}}),
        (["page", "--anonymous-id", "a1", "--name", "Pricing", "--category", "Docs"],
         {"type": "page", "name": "Pricing", "category": "Docs", "anonymousId": "a1"}),
        (["screen", "--user-id", "u1", "--name", "Home", "--properties", '{"v": "b"}'],
         {"type": "screen", "name": "Home"}),
        (["group", "--user-id", "u1", "--group-id", "acme", "--traits", '{"n": 1}'],
         {"type": "group", "groupId": "acme", "traits": {"n": 1}}),
        (["alias", "--previous-id", "a1", "--user-id", "u1"],
         {"type": "alias", "previousId": "a1", "userId": "u1"}),
    ],
)
def test_each_event_command_sends_its_fields(
    rudder_dataplane: DevServer, argv: list[str], expected: dict[str, Any]
) -> None:
    """Every call type's options become the message's fields."""
    assert main(_args(rudder_dataplane, *argv)) == 0
    [event] = rudder_dataplane.events()
    assert {key: event.get(key) for key in expected} == expected


def test_common_fields(rudder_dataplane: DevServer, tmp_path: Path) -> None:
    """--timestamp, --message-id, --context, --integrations and @FILE JSON are all applied."""
    props = tmp_path / "props.json"
    props.write_text('{"from_file": true}', encoding="utf-8")
    status = main(_args(rudder_dataplane, "track", "--user-id", "u1", "--event", "E",
                        "--properties", f"@{props}", "--timestamp", "2024-05-01T12:00:00Z",
                        "--message-id", "fixed-id-1", "--context", '{"ip": "10.0.0.1"}',
                        "--integrations", '{"All": false, "Amplitude": true}'))
    assert status == 0
    [event] = rudder_dataplane.events(message_id="fixed-id-1")
    assert event["properties"] == {"from_file": True}
    assert _instant(event["timestamp"]) == _instant("2024-05-01T12:00:00Z")
    assert event["context"]["ip"] == "10.0.0.1"
    assert event["integrations"] == {"All": False, "Amplitude": True}


def test_epoch_timestamp(rudder_dataplane: DevServer) -> None:
    """A numeric --timestamp is taken as epoch seconds."""
    assert main(_args(rudder_dataplane, "track", "--user-id", "u1", "--event", "E",
                      "--timestamp", "1714564800")) == 0
    assert _instant(rudder_dataplane.events()[0]["timestamp"]) == \
        _instant("2024-05-01T12:00:00Z")


def test_configuration_from_environment(rudder_dataplane: DevServer) -> None:
    """Without --write-key/--data-plane-url, RUDDER_WRITE_KEY/RUDDER_DATA_PLANE_URL are used."""
    assert os.environ["RUDDER_DATA_PLANE_URL"] == rudder_dataplane.url  # set by the fixture
    assert main(["identify", "--user-id", "env-user", "-q"]) == 0
    assert rudder_dataplane.count(user_id="env-user") == 1


def test_json_output(rudder_dataplane: DevServer, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints the message that was delivered."""
    assert main(_args(rudder_dataplane, "track", "--user-id", "u1", "--event", "E",
                      "--json")) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["messageId"] == rudder_dataplane.events()[0]["messageId"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [("{not json", "not valid JSON"), ("[1, 2]", "must be a JSON object")],
)
def test_bad_json_is_a_usage_error(
    rudder_dataplane: DevServer, capsys: pytest.CaptureFixture[str], value: str, reason: str
) -> None:
    """Malformed or non-object JSON exits 2 naming the option; nothing is sent."""
    status = main(_args(rudder_dataplane, "track", "--user-id", "u1", "--event", "E",
                        "--properties", value))
    assert status == 2
    err = capsys.readouterr().err
    assert "--properties" in err and reason in err
    assert rudder_dataplane.count() == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["track", "--user-id", "u1"], "event is required"),
        (["track", "--event", "E"], "either user_id or anonymous_id is required"),
        (["group", "--user-id", "u1"], "group_id is required"),
        (["alias", "--user-id", "u1"], "previous_id is required"),
        (["track", "--user-id", "u1", "--event", "E", "--timestamp", "yesterday"],
         "timestamp is not an ISO-8601 date-time"),
    ],
)
def test_validation_error_prints_the_sdk_message(
    rudder_dataplane: DevServer, capsys: pytest.CaptureFixture[str], argv: list[str],
    message: str,
) -> None:
    """An event the SDK refuses exits 2 with the SDK's own validation message."""
    assert main(_args(rudder_dataplane, *argv)) == 2
    assert message in capsys.readouterr().err
    assert rudder_dataplane.count() == 0


def test_missing_configuration(monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    """No write key anywhere: exit 2 with the SDK's configuration message."""
    monkeypatch.delenv("RUDDER_WRITE_KEY", raising=False)
    monkeypatch.setenv("RUDDER_DATA_PLANE_URL", "http://127.0.0.1:9")
    assert main(["track", "--user-id", "u1", "--event", "E"]) == 2
    assert "write key is required" in capsys.readouterr().err


def test_rejected_delivery_exits_1(rudder_dataplane: DevServer,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A write key the data plane refuses (401) exits 1 with the data plane's answer."""
    status = main(["track", "--write-key", "wrong-key", "--data-plane-url", rudder_dataplane.url,
                   "--user-id", "u1", "--event", "E"])
    assert status == 1
    err = capsys.readouterr().err
    assert "not delivered" in err and "401" in err
    assert rudder_dataplane.count() == 0


def test_retries_exhausted_exits_1(rudder_dataplane: DevServer,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A 503 with --max-retries 0 is not delivered: exit 1."""
    rudder_dataplane.fail_next(1, status=503)
    assert main(_args(rudder_dataplane, "track", "--user-id", "u1", "--event", "E",
                      "--max-retries", "0")) == 1
    assert "503" in capsys.readouterr().err
    assert rudder_dataplane.count() == 0


def test_transient_failure_is_retried(rudder_dataplane: DevServer) -> None:
    """503s followed by success: the command retries and exits 0 with one stored event."""
    rudder_dataplane.fail_next(2, status=503, retry_after=0)
    assert main(_args(rudder_dataplane, "track", "--user-id", "u1", "--event", "E",
                      "--max-retries", "3")) == 0
    assert rudder_dataplane.count() == 1
    assert len(rudder_dataplane.requests()) == 3


def test_dry_run_needs_no_configuration(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """--dry-run validates and prints the message without a write key or a network."""
    monkeypatch.delenv("RUDDER_WRITE_KEY", raising=False)
    monkeypatch.delenv("RUDDER_DATA_PLANE_URL", raising=False)
    assert main(["page", "--user-id", "u1", "--name", "Home", "--dry-run"]) == 0
    message = json.loads(capsys.readouterr().out)
    assert message["type"] == "page" and message["name"] == "Home"
    assert main(["page", "--name", "Home", "--dry-run"]) == 2


# --- import ----------------------------------------------------------------------------


ALL_TYPES = [
    {"type": "track", "userId": "u1", "event": "Signed Up", "properties": {"plan": "pro"},
     "messageId": "m-track"},
    {"type": "identify", "user_id": "u1", "traits": {"email": "a@b.c"},
     "message_id": "m-identify"},
    {"type": "page", "anonymousId": "a1", "name": "Pricing", "category": "Docs",
     "messageId": "m-page"},
    {"type": "screen", "userId": "u1", "name": "Home", "messageId": "m-screen"},
    {"type": "group", "userId": "u1", "group_id": "acme", "traits": {"n": 1},
     "messageId": "m-group"},
    {"type": "alias", "previousId": "a1", "userId": "u1", "messageId": "m-alias"},
]


def test_import_sends_every_type(rudder_dataplane: DevServer, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Valid lines of every type, camelCase or snake_case, are all delivered; exit 0."""
    path = _write_lines(tmp_path / "events.jsonl", [*ALL_TYPES, ""])
    assert main(_args(rudder_dataplane, "import", str(path))) == 0
    stored = {e["messageId"]: e for e in rudder_dataplane.events()}
    assert set(stored) == {line["messageId"] if "messageId" in line else line["message_id"]
                           for line in ALL_TYPES}
    assert stored["m-identify"]["traits"] == {"email": "a@b.c"}
    assert stored["m-group"]["groupId"] == "acme"
    assert stored["m-alias"]["previousId"] == "a1"
    out = capsys.readouterr().out
    assert "sent 6, failed 0, skipped 0" in out and "events/s" in out


def test_import_reports_and_skips_bad_lines(rudder_dataplane: DevServer, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Each bad line is reported with its number and reason and skipped; exit 1."""
    lines: list[Any] = [
        {"type": "track", "userId": "u1", "event": "Good", "messageId": "good-1"},
        "{not json",
        {"type": "track", "userId": "u1"},
        {"type": "launch", "userId": "u1"},
        {"type": "identify", "userId": "u1", "event": "Nope"},
        {"type": "track", "userid": "u1", "event": "E"},
        {"type": "track", "userId": "u1", "user_id": "u2", "event": "E"},
        [1, 2, 3],
        {"type": "track", "anonymousId": "a", "event": "E", "properties": "plan=pro"},
        {"type": "track", "userId": "u1", "event": "Good", "messageId": "good-2"},
    ]
    path = _write_lines(tmp_path / "mixed.jsonl", lines)
    assert main(_args(rudder_dataplane, "import", str(path))) == 1
    captured = capsys.readouterr()
    err = captured.err
    assert "line 2: skipped: not valid JSON" in err
    assert "line 3: skipped: event is required" in err
    assert 'line 4: skipped: "type" must be one of' in err
    assert 'line 5: skipped: field "event" does not apply to identify' in err
    assert 'line 6: skipped: unknown field "userid" (did you mean "userId"?)' in err
    assert 'line 7: skipped: field "user_id" is given twice' in err
    assert "line 8: skipped: expected a JSON object, got list" in err
    assert "line 9: skipped: properties must be a mapping" in err
    assert "sent 2, failed 0, skipped 8" in captured.out
    assert {e["messageId"] for e in rudder_dataplane.events()} == {"good-1", "good-2"}


def test_import_counts_failed_requests_exactly(rudder_dataplane: DevServer, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A request the data plane rejects counts its messages as failed; the rest are sent."""
    lines = [{"type": "track", "userId": f"u{i}", "event": "E"} for i in range(250)]
    path = _write_lines(tmp_path / "events.jsonl", lines)
    rudder_dataplane.fail_next(1, status=400)
    assert main(_args(rudder_dataplane, "import", str(path), "--threads", "1",
                      "--batch-size", "100")) == 1
    captured = capsys.readouterr()
    assert "sent 150, failed 100, skipped 0" in captured.out
    assert "last delivery error" in captured.err and "400" in captured.err
    assert rudder_dataplane.count() == 150


def test_import_gives_up_when_nothing_gets_through(rudder_dataplane: DevServer,
                                                    tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """After N requests in a row deliver nothing, import stops reading and says so."""
    lines = [{"type": "track", "userId": f"u{i}", "event": "E"} for i in range(5000)]
    path = _write_lines(tmp_path / "events.jsonl", lines)
    rudder_dataplane.fail_next(1000, status=401)
    assert main(_args(rudder_dataplane, "import", str(path), "--threads", "1",
                      "--batch-size", "10", "--give-up-after", "3")) == 1
    out = capsys.readouterr().out
    assert "gave up after 3 requests in a row failed" in out
    posts = [r for r in rudder_dataplane.requests() if r.path == "/v1/batch"]
    assert 3 <= len(posts) <= 6  # not all 500 batches
    assert rudder_dataplane.count() == 0


def test_import_many_lines_concurrently(rudder_dataplane: DevServer, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Thousands of lines over several threads: every one is delivered exactly once."""
    lines = [{"type": "track", "userId": f"u{i % 50}", "event": "E", "messageId": f"m{i}"}
             for i in range(3000)]
    path = _write_lines(tmp_path / "big.jsonl", lines)
    assert main(_args(rudder_dataplane, "import", str(path), "--threads", "4",
                      "--batch-size", "250")) == 0
    assert "sent 3,000, failed 0, skipped 0" in capsys.readouterr().out
    assert rudder_dataplane.count() == 3000
    assert len({e["messageId"] for e in rudder_dataplane.events()}) == 3000


def test_import_from_stdin(rudder_dataplane: DevServer, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    """'-' reads the JSON lines from standard input."""
    data = "".join(json.dumps(line) + "\n" for line in ALL_TYPES[:2]).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(_args(rudder_dataplane, "import", "-")) == 0
    assert rudder_dataplane.count() == 2
    assert "sent 2," in capsys.readouterr().out


def test_import_uses_original_timestamp_and_ignores_server_fields(
    rudder_dataplane: DevServer, tmp_path: Path
) -> None:
    """An exported event re-imports: originalTimestamp becomes the event time, server keys drop."""
    exported = {"type": "track", "userId": "u1", "event": "E", "messageId": "exp-1",
                "originalTimestamp": "2023-01-02T03:04:05.678Z", "channel": "server",
                "sentAt": "2023-01-02T03:04:06.000Z", "receivedAt": "2023-01-02T03:04:07Z",
                "rudderId": "r", "request_ip": "1.2.3.4"}
    path = _write_lines(tmp_path / "export.jsonl", [exported])
    assert main(_args(rudder_dataplane, "import", str(path))) == 0
    [event] = rudder_dataplane.events()
    assert _instant(event["timestamp"]) == _instant("2023-01-02T03:04:05.678Z")


def test_import_dry_run_sends_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """--dry-run validates every line without a write key and sends nothing."""
    monkeypatch.delenv("RUDDER_WRITE_KEY", raising=False)
    path = _write_lines(tmp_path / "events.jsonl", ALL_TYPES)
    assert main(["import", "--dry-run", str(path)]) == 0
    assert "6 valid, 0 skipped" in capsys.readouterr().out
    path = _write_lines(tmp_path / "bad.jsonl", [*ALL_TYPES, {"type": "track"}])
    assert main(["import", "--dry-run", str(path)]) == 1
    captured = capsys.readouterr()
    assert "line 7: skipped" in captured.err and "6 valid, 1 skipped" in captured.out


def test_import_missing_file_is_a_usage_error(rudder_dataplane: DevServer, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """An unreadable input file exits 2."""
    assert main(_args(rudder_dataplane, "import", str(tmp_path / "nope.jsonl"))) == 2
    assert "cannot open" in capsys.readouterr().err


def test_import_counter_lines_when_not_a_terminal(rudder_dataplane: DevServer, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Off a terminal, progress is a plain counter line on stderr."""
    path = _write_lines(tmp_path / "events.jsonl", ALL_TYPES)
    assert main(_args(rudder_dataplane, "import", str(path), "--progress-interval", "0")) == 0
    err = capsys.readouterr().err
    assert "lines read" in err and "\r" not in err


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_import_progress_bar_on_a_terminal(rudder_dataplane: DevServer, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal with tqdm installed, progress is a tqdm bar."""
    pytest.importorskip("tqdm")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    path = _write_lines(tmp_path / "events.jsonl", ALL_TYPES)
    assert main(_args(rudder_dataplane, "import", str(path), "--progress-interval", "0")) == 0
    shown = terminal.getvalue()
    assert "import" in shown and "events/s" in shown and "\r" in shown
    assert "lines read" not in shown


def test_import_without_tqdm_falls_back_to_lines(rudder_dataplane: DevServer, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal without tqdm, the plain counter line is used."""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes "import tqdm" fail
    path = _write_lines(tmp_path / "events.jsonl", ALL_TYPES)
    assert main(_args(rudder_dataplane, "import", str(path), "--progress-interval", "0")) == 0
    assert "lines read" in terminal.getvalue()


def test_parse_line_maps_both_spellings() -> None:
    """camelCase and snake_case keys map to the same builder arguments."""
    camel = parse_line({"type": "group", "userId": "u", "groupId": "g", "messageId": "m"})
    snake = parse_line({"type": "group", "user_id": "u", "group_id": "g", "message_id": "m"})
    assert camel == snake == ("group", {"user_id": "u", "group_id": "g", "message_id": "m"})


# --- demo and dev-server ---------------------------------------------------------------


def test_demo_delivers_one_event_of_every_type(capsys: pytest.CaptureFixture[str]) -> None:
    """demo starts a local data plane, sends all six types and exits 0 when all arrived."""
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "all 6 events arrived" in out
    assert "watch events at http://127.0.0.1:" in out
    for kind in EVENT_COMMANDS:
        assert f"  {kind} " in out
    assert "delivered=6" in out and "dropped=0" in out


def test_dev_server_is_delegated(capsys: pytest.CaptureFixture[str]) -> None:
    """dev-server hands its arguments to the dev server's own command line."""
    assert main(["dev-server", "--help"]) == 0
    assert "rudder-analytics dev-server" in capsys.readouterr().out
    assert main(["dev-server", "--port", "not-a-port"]) == 2


# --- a real subprocess -----------------------------------------------------------------


def test_python_dash_m_in_a_subprocess(rudder_dataplane: DevServer, tmp_path: Path) -> None:
    """python -m rudder_analytics works as a program: track, then import from stdin."""
    env = {**os.environ, "RUDDER_WRITE_KEY": WRITE_KEY,
           "RUDDER_DATA_PLANE_URL": rudder_dataplane.url}
    track = subprocess.run(
        [sys.executable, "-m", "rudder_analytics", "track", "--user-id", "sub-u",
         "--event", "From Subprocess"],
        env=env, capture_output=True, text=True, timeout=60, check=False)
    assert track.returncode == 0, track.stderr
    assert rudder_dataplane.count(user_id="sub-u", event="From Subprocess") == 1
    lines = "".join(json.dumps(line) + "\n" for line in ALL_TYPES)
    imported = subprocess.run(
        [sys.executable, "-m", "rudder_analytics", "import", "-"], input=lines, env=env,
        capture_output=True, text=True, timeout=60, check=False)
    assert imported.returncode == 0, imported.stderr
    assert "sent 6, failed 0, skipped 0" in imported.stdout
    assert rudder_dataplane.count() == 7
    bad = subprocess.run(
        [sys.executable, "-m", "rudder_analytics", "track", "--user-id", "u"], env=env,
        capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "event is required" in bad.stderr
