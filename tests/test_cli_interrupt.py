"""Ctrl-C and long waits, in real subprocesses against a local data plane that hangs or a
port that refuses: exit 130 within 2 s with one summary; waits are explained after 2 s."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from rudder_analytics.devserver import DevServer

WRITE_KEY = "test-write-key"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.fixture
def hanging() -> Iterator[DevServer]:
    """A data plane that reads every request and never answers (until it closes)."""
    with DevServer(write_keys=(WRITE_KEY,)) as server:
        server.hang_next(1000, seconds=60)
        yield server


def _start(*argv: str, stdin: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rudder_analytics", *argv], stdin=stdin,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait_for_line(stream: IO[str], text: str) -> list[str]:
    """Read lines until one contains ``text`` (the readiness line); all lines read."""
    seen = []
    for line in stream:
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"{text!r} never printed; got {seen!r}")


def _interrupt(proc: subprocess.Popen[str]) -> tuple[str, str, float]:
    """SIGINT, then (stdout, rest of stderr, seconds until the process exited)."""
    proc.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    out, err = proc.communicate(timeout=30)
    return out, err, time.monotonic() - signalled


def test_ctrl_c_stops_an_import_while_the_data_plane_hangs(hanging: DevServer,
                                                            tmp_path: Path) -> None:
    """Ctrl-C during requests that get no answer: exit 130 within 2 s, one summary, the
    batches never started counted as not sent (failed 0), and the wait was explained."""
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps({"type": "track", "userId": f"u{i}", "event": "E"})
                            + "\n" for i in range(500)), encoding="utf-8")
    proc = _start("import", str(path), "--write-key", WRITE_KEY, "--data-plane-url",
                  hanging.url, "--threads", "2", "--batch-size", "10", "-q")
    assert proc.stderr is not None
    before = _wait_for_line(proc.stderr, "import: waiting for an answer from 127.0.0.1:")
    out, err, seconds = _interrupt(proc)
    assert proc.returncode == 130, (out, err)
    assert seconds < 2.0
    summaries = [line for line in out.splitlines() if line.startswith("import: sent")]
    assert len(summaries) == 1, out
    [summary] = summaries
    assert "sent 0, failed 0, skipped 0" in summary
    assert "; interrupted, " in summary and " read but not sent" in summary
    assert "20 of them in requests still unanswered" in summary  # 2 threads x 10
    assert "Traceback" not in "".join(before) + err


def test_ctrl_c_twice_still_prints_one_summary(hanging: DevServer) -> None:
    """A second Ctrl-C while the import winds down changes nothing: one summary, 130."""
    lines = "".join(json.dumps({"type": "track", "userId": f"u{i}", "event": "E"}) + "\n"
                    for i in range(100))
    proc = _start("import", "-", "--write-key", WRITE_KEY, "--data-plane-url", hanging.url,
                  "--threads", "1", "--batch-size", "10", "-q", stdin=subprocess.PIPE)
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write(lines)
    proc.stdin.flush()  # stdin stays open: the reader may also be waiting for input
    _wait_for_line(proc.stderr, "import: waiting for an answer from")
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    assert out.count("import: sent") == 1 and "interrupted" in out
    assert "Traceback" not in err


def test_ctrl_c_stops_an_event_command_while_the_data_plane_hangs(hanging: DevServer) -> None:
    """track waiting on a hanging data plane: the wait is explained; Ctrl-C exits 130 at once."""
    proc = _start("track", "--write-key", WRITE_KEY, "--data-plane-url", hanging.url,
                  "--user-id", "u", "--event", "E")
    assert proc.stderr is not None
    _wait_for_line(proc.stderr, "track: waiting for an answer from 127.0.0.1:")
    out, err, seconds = _interrupt(proc)
    assert proc.returncode == 130, (out, err)
    assert seconds < 2.0
    assert "interrupted" in err and "Traceback" not in err


def _refused_port() -> int:
    """A loopback port with nothing listening (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_event_command_says_it_is_retrying_a_refused_connection() -> None:
    """Against a refusing port, track prints 'retrying: <the error>' once 2 s pass, once."""
    port = _refused_port()
    result = subprocess.run(
        [sys.executable, "-m", "rudder_analytics", "track", "--write-key", WRITE_KEY,
         "--data-plane-url", f"http://127.0.0.1:{port}", "--user-id", "u", "--event", "E",
         "--max-retries", "4", "--deadline", "4"],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    retrying = [line for line in result.stderr.splitlines()
                if line.startswith("track: retrying: ")]
    assert len(retrying) == 1, result.stderr  # not repeated on every poll
    assert str(port) in retrying[0]
    assert "rudder_analytics: " not in result.stderr  # the SDK's own lines are not doubled
    assert WRITE_KEY not in result.stderr + result.stdout
