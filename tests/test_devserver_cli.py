"""The dev-server command: options, the start line, live event lines, clean stop.

The process tests start ``python -m rudder_analytics.devserver --port 0``, read the URL
from its first line, talk HTTP to it and stop it with SIGTERM or SIGINT. Every read of
the child's output goes through a queue with a deadline.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Iterator, List, Optional

import pytest
import requests

from rudder_analytics.devserver.cli import build_parser, parse_rate_limit

ROOT = Path(__file__).resolve().parent.parent
POSIX_SIGNALS = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


class Child:
    """A dev-server child process whose stdout lines arrive on a queue."""

    def __init__(self, *args: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rudder_analytics.devserver", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(ROOT),
        )
        self.lines: queue.Queue[Optional[str]] = queue.Queue()
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def line(self, timeout: float = 30.0) -> str:
        """The next stdout line (fails the test after ``timeout`` seconds or at EOF)."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no output from the dev server within {timeout} s")
        if line is None:
            _, err = self.proc.communicate(timeout=10)
            pytest.fail(f"dev server exited early: {self.proc.returncode}\n{err}")
        return line

    def rest(self) -> List[str]:
        """Every remaining stdout line, once the process has ended."""
        out: List[str] = []
        while True:
            line = self.lines.get(timeout=30)
            if line is None:
                return out
            out.append(line)

    def stop(self, sig: int = signal.SIGTERM) -> str:
        """Send ``sig``, wait for the exit (deadline 30 s) and return stderr."""
        self.proc.send_signal(sig)
        _, err = self.proc.communicate(timeout=30)
        return err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=30)


@pytest.fixture
def children() -> Iterator[List[Child]]:
    """Children started by a test; killed at the end if still running."""
    started: List[Child] = []
    yield started
    for child in started:
        child.kill()


def post(url: str, body: object, key: str = "test-write-key") -> requests.Response:
    return requests.post(url + "/v1/batch", json=body, auth=(key, ""), timeout=20)


def test_parser_defaults_and_options() -> None:
    """The options and defaults the task defines."""
    args = build_parser().parse_args([])
    assert (args.host, args.port, args.write_keys, args.disabled_write_keys) == (
        "127.0.0.1",
        8080,
        None,
        [],
    )
    assert (args.max_request_bytes, args.legacy_bodies, args.rate_limit, args.db) == (
        4_096_000,
        False,
        None,
        None,
    )
    assert (args.quiet, args.json) == (False, False)
    args = build_parser().parse_args(
        [
            "--host=0.0.0.0",
            "--port=9000",
            "--write-key=a",
            "--write-key=b",
            "--disabled-write-key=c",
            "--max-request-bytes=1000",
            "--legacy-bodies",
            "--rate-limit=1000/60",
            "--db=x.db",
            "--json",
        ]
    )
    assert args.write_keys == ["a", "b"] and args.disabled_write_keys == ["c"]
    assert (args.port, args.max_request_bytes, args.rate_limit) == (9000, 1000, (1000, 60.0))
    assert args.legacy_bodies and args.json and args.db == "x.db"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--quiet", "--json"])


def test_parse_rate_limit() -> None:
    """EVENTS/SECONDS, both positive."""
    assert parse_rate_limit("1000/60") == (1000, 60.0)
    assert parse_rate_limit("5/0.5") == (5, 0.5)
    for bad in ("1000", "a/b", "0/60", "10/-1", "/60"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_rate_limit(bad)


@POSIX_SIGNALS
def test_process_serves_prints_events_and_stops_on_sigterm(children: List[Child]) -> None:
    """``--port 0`` prints the real URL, the write keys and the page to open; each stored
    event and each refused request is one readable line; SIGTERM stops it cleanly with
    status 0."""
    child = Child("--write-key", "cli-key", "--disabled-write-key", "off-key")
    children.append(child)
    banner = child.line()
    assert banner.startswith("rudder-analytics dev-server listening on http://127.0.0.1:")
    assert "write keys: cli-key" in banner and "disabled: off-key" in banner
    url = banner.split("listening on ", 1)[1].split()[0]
    assert child.line() == f"open {url}/ in a browser to watch events arrive"

    assert requests.get(url + "/health", timeout=20).status_code == 200
    body = {
        "batch": [
            {"type": "track", "userId": "u-cli", "event": "Signed Up"},
            {"type": "page", "anonymousId": "anon-cli", "name": "Pricing"},
        ]
    }
    answer = post(url, body, key="cli-key")
    assert (answer.status_code, answer.text) == (200, "ok")
    assert post(url, body, key="off-key").status_code == 404
    first, second = child.line(), child.line()
    assert "track" in first and "user=u-cli" in first and first.endswith("Signed Up")
    assert "page" in second and "anon=anon-cli" in second and second.endswith("Pricing")
    rejected = child.line()
    assert "REJECTED 404" in rejected and "POST /v1/batch" in rejected
    assert "source is disabled" in rejected and rejected.endswith("key=off-key")

    err = child.stop(signal.SIGTERM)
    assert child.proc.returncode == 0, err
    assert "stopped (2 events stored)" in err
    assert "Traceback" not in err
    assert child.rest() == []


@POSIX_SIGNALS
def test_json_lines_and_sigint(children: List[Child]) -> None:
    """``--json`` prints a JSON start line and one JSON object per event; Ctrl-C (SIGINT)
    stops it cleanly too."""
    child = Child("--json")
    children.append(child)
    banner = json.loads(child.line())
    assert banner["write_keys"] == ["test-write-key"]
    url = banner["listening"]
    assert banner["page"] == url + "/"
    body = {"batch": [{"type": "identify", "userId": "j1", "messageId": "m-json"}]}
    assert post(url, body).status_code == 200
    event = json.loads(child.line())
    assert (event["type"], event["userId"], event["messageId"]) == ("identify", "j1", "m-json")
    assert "rudderId" in event and "receivedAt" in event

    err = child.stop(signal.SIGINT)
    assert child.proc.returncode == 0, err
    assert "KeyboardInterrupt" not in err


@POSIX_SIGNALS
def test_quiet_prints_only_the_start_line(children: List[Child], tmp_path: Path) -> None:
    """``--quiet`` prints no event lines; ``--db`` keeps the events in a SQLite file."""
    db = tmp_path / "events.db"
    child = Child("--quiet", "--db", str(db), "--legacy-bodies")
    children.append(child)
    url = child.line().split("listening on ", 1)[1].split()[0]
    assert child.line().startswith("open ")
    answer = post(url, {"batch": [{"type": "track", "userId": "q"}] * 3})
    assert (answer.status_code, answer.text) == (200, "OK")
    err = child.stop()
    assert child.proc.returncode == 0, err
    assert child.rest() == []

    import sqlite3

    with sqlite3.connect(str(db)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone() == (3,)


@POSIX_SIGNALS
def test_non_loopback_host_warns(children: List[Child]) -> None:
    """Binding a non-loopback address works but prints a warning."""
    child = Child("--host", "0.0.0.0", "--quiet")
    children.append(child)
    banner = child.line()
    assert "listening on http://0.0.0.0:" in banner
    err = child.stop()
    assert child.proc.returncode == 0
    assert "not a loopback address" in err


def test_busy_port_fails_with_status_1() -> None:
    """A port already in use is a clear error and exit status 1, not a traceback."""
    from rudder_analytics.devserver import DevServer
    from rudder_analytics.devserver.cli import main

    with DevServer() as taken:
        assert main(["--port", str(taken.port), "--quiet"]) == 1


def test_main_command_does_not_load_the_server() -> None:
    """``import rudder_analytics.cli`` (every CLI start) takes its argparse types from
    ``rudder_analytics._argtypes`` and loads none of the dev server."""
    code = (
        "import sys, rudder_analytics.cli\n"
        "print(sorted(m for m in sys.modules if m.startswith('rudder_analytics.devserver')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=str(ROOT)
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_argparse_types_are_the_shared_ones() -> None:
    """The dev server's options use the same validators as the main command."""
    from rudder_analytics import _argtypes
    from rudder_analytics.devserver import cli

    assert cli.parse_rate_limit is _argtypes.parse_rate_limit
    assert cli.positive_int is _argtypes.positive_int
    assert cli.non_negative_int is _argtypes.non_negative_int
    with pytest.raises(argparse.ArgumentTypeError):
        _argtypes.positive_int("0")
