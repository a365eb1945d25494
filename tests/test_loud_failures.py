"""Failures are loud and specific, to someone who configured nothing: one line per cause on
stderr (or through logging when it is configured), totals never hidden, flush() honest,
and a wrong URL learnt within seconds. Real processes and a real local data plane.
"""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import textwrap
import time

import pytest

from rudder_analytics import Client, ConfigurationError
from rudder_analytics.config import Config
from rudder_analytics.devserver import DevServer
from tests.helpers_reliability import (
    REPO,
    last_json_line,
    make_client,
    refused_url,
    run_script,
)


def _sdk_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("rudder_analytics: ")]


WRONG_KEY = """
import sys
import rudder_analytics
rudder_analytics.write_key = "not-the-key"
rudder_analytics.data_plane_url = sys.argv[1]
for i in range(1000):
    rudder_analytics.track(user_id="u", event="E", properties={"i": i})
print(rudder_analytics.flush())
"""


def test_a_wrong_write_key_is_one_line_on_stderr(dataplane: DevServer) -> None:
    """No logging configured, a wrong write key: one stderr line naming the 401 and the
    URL with the count, never one per event; flush() says False."""
    result = run_script(WRONG_KEY, dataplane.url, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    lines = _sdk_lines(result.stderr)
    assert lines, result.stderr
    assert len(lines) <= 3, lines  # a line per cause, not per event or per batch
    assert any("401" in line and dataplane.url in line for line in lines), lines
    counted = sum(int(m.group(1).replace(",", ""))
                  for m in (re.search(r"([\d,]+) event\(s\) dropped", line) for line in lines)
                  if m)
    assert counted == 1000, lines


REFUSED_PORT = """
import sys
import rudder_analytics
rudder_analytics.write_key = "k"
rudder_analytics.data_plane_url = sys.argv[1]
rudder_analytics.track(user_id="u", event="E")
print("tracked", flush=True)
rudder_analytics.flush(timeout=60)
"""


def test_the_first_failure_is_said_when_it_happens() -> None:
    """A refused port: the line naming it appears while the SDK is still retrying, long
    before the last retry (the process is still running when it is read)."""
    url = refused_url()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUDDER_")}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(REFUSED_PORT), url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=str(REPO))
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # blocks until the first line; the test timeout bounds it
        assert proc.poll() is None  # still retrying
        assert line.startswith("rudder_analytics: ")
        assert "connection refused" in line and url.split("//")[1] in line, line
    finally:
        proc.kill()
        proc.wait(10)


BACKFILL = """
import json, sys
from rudder_analytics import Client
client = Client("test-write-key", sys.argv[1], max_queue_size=100, shutdown_timeout=0.5,
                timeout=5.0)
for i in range(20_000):
    client.track("u", "Backfill", {"i": i})
first = client.flush(timeout=0.5)
client.shutdown(timeout=0.5)
print(json.dumps({"flush": first, "stats": client.stats()}))
"""


def test_queue_full_totals_are_never_hidden(dataplane: DevServer) -> None:
    """A backfill that overflows the queue: the stderr lines add up to every queue_full
    drop (not "1 queue_full" for thousands), and flush() returned False."""
    dataplane.hang_next(100, seconds=2)
    result = run_script(BACKFILL, dataplane.url, timeout=60)
    assert result.returncode == 0, result.stderr
    report = last_json_line(result.stdout)
    assert report["flush"] is False
    dropped = report["stats"]["dropped"]["queue_full"]
    assert dropped > 10_000
    said = sum(int(m.group(1).replace(",", ""))
               for m in (re.search(r"queue full: ([\d,]+) event", line)
                         for line in _sdk_lines(result.stderr)) if m)
    assert said == dropped, result.stderr


def test_flush_is_false_after_any_drop_then_true_again(dataplane: DevServer) -> None:
    """flush() is True only if nothing tracked since the previous flush was dropped,
    queue_full included; the next flush after a clean stretch is True again."""
    dataplane.hang_next(1, seconds=1)
    client = make_client(dataplane.url, max_queue_size=5, upload_size=1, timeout=5.0)
    try:
        results = [client.track("u", "E", {"i": i})[0] for i in range(50)]
        assert not all(results)
        assert client.flush(timeout=10) is False
        for i in range(4):  # fewer than the queue holds
            assert client.track("u", "Clean", {"i": i})[0]
        assert client.flush(timeout=10) is True
    finally:
        client.shutdown(timeout=5)


def test_flush_without_a_timeout_is_bounded() -> None:
    """flush() with no timeout waits at most flush_timeout (30 s by default), not the
    600 s retry deadline."""
    assert Config.flush_timeout == 30.0
    client = make_client(refused_url(), flush_timeout=1.0, retry_base_delay=0.2)
    try:
        client.track("u", "E")
        started = time.monotonic()
        assert client.flush() is False
        assert time.monotonic() - started < 1.0 + 1.0
    finally:
        client.shutdown(timeout=1)


PLACEHOLDER = """
import rudder_analytics
rudder_analytics.write_key = "WRITE_KEY"
rudder_analytics.data_plane_url = "https://your-data-plane.example.com"
rudder_analytics.track(user_id="42", event="Order Completed", properties={"revenue": 9.95})
rudder_analytics.flush()
"""


def test_the_placeholder_example_ends_quickly_and_says_why() -> None:
    """The README's first example run as is, placeholder host and all: it ends within
    30 s and stderr says the host is unknown (DNS fails locally; nothing leaves)."""
    started = time.monotonic()
    result = run_script(PLACEHOLDER, timeout=60)
    assert time.monotonic() - started < 30
    lines = _sdk_lines(result.stderr)
    assert any("your-data-plane.example.com" in line for line in lines), result.stderr


def test_a_url_ending_in_v1_batch_is_refused_with_the_fix() -> None:
    """data_plane_url ending in /v1/batch is a ConfigurationError naming the base URL."""
    with pytest.raises(ConfigurationError, match="give the base URL"):
        Client("k", "https://dp.example.com/v1/batch")
    with pytest.raises(ConfigurationError, match=r"'https://dp\.example\.com'"):
        Client("k", "https://dp.example.com/v1/batch/")


def test_with_logging_configured_lines_go_to_the_logger_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With a handler on the logger, loss lines go through logging and not to stderr."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    sdk_logger = logging.getLogger("rudder_analytics")
    sdk_logger.addHandler(handler)
    try:
        client = make_client(refused_url(), max_retries=0)
        client.track("u", "E")
        assert client.flush(timeout=5) is False
        client.shutdown(timeout=1)
    finally:
        sdk_logger.removeHandler(handler)
    assert "connection refused" in stream.getvalue()
    assert "rudder_analytics: " not in capsys.readouterr().err


def test_no_line_when_nothing_is_lost(dataplane: DevServer) -> None:
    """A healthy run prints nothing on stderr."""
    result = run_script(BACKFILL.replace("max_queue_size=100", "max_queue_size=100_000"),
                        dataplane.url, timeout=60)
    assert result.returncode == 0, result.stderr
    assert _sdk_lines(result.stderr) == [], result.stderr


def test_a_call_that_raised_does_not_make_flush_false(dataplane: DevServer) -> None:
    """A call that raised ValidationError was never accepted and its caller knows: the
    next flush() is still True (only silent drops make it False)."""
    from rudder_analytics import ValidationError

    client = make_client(dataplane.url)
    try:
        with pytest.raises(ValidationError):
            client.track(event="No Id")
        assert client.track("u", "Fine")[0]
        assert client.flush(timeout=10) is True
        assert client.stats()["dropped"]["invalid"] == 1
    finally:
        client.shutdown(timeout=5)
