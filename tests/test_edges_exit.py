"""Exit and interruption at the edges: one shared exit deadline, Ctrl-C during shutdown(),
collected clients that could not deliver. Each scenario runs in a fresh interpreter with
real signals; waits are on a readiness line or a deadline, never a bare sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from rudder_analytics.devserver import DevServer
from tests.helpers_reliability import REPO, last_json_line, run_script

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


FIVE_CLIENTS_DOWN = """
import json, sys, time
from rudder_analytics import Client
clients = [Client("k", sys.argv[1], shutdown_timeout=2.0, timeout=30.0) for _ in range(5)]
for client in clients:
    for i in range(100):
        client.track("u", "E", {"i": i})
print(json.dumps({"main_done": time.monotonic()}), flush=True)
"""


def test_exit_of_five_clients_shares_one_deadline(blackhole: str) -> None:
    """Five clients facing a data plane that never answers: the whole exit takes at most
    the largest shutdown_timeout plus one second, not five times it."""
    result = run_script(FIVE_CLIENTS_DOWN, blackhole, timeout=60)
    exited = time.monotonic()  # CLOCK_MONOTONIC is system-wide: comparable across processes
    assert result.returncode == 0, result.stderr
    main_done = last_json_line(result.stdout)["main_done"]
    assert exited - main_done <= 2.0 + 1.0, exited - main_done  # largest timeout + 1 s
    assert result.stderr.count("not delivered at exit") == 5


INTERRUPTED_SHUTDOWN = """
import sys
from rudder_analytics import Client
client = Client("test-write-key", sys.argv[1], upload_size=100, timeout=10.0,
                shutdown_timeout=10.0)
for i in range(1000):
    client.track("u", "Interrupted", {"i": i})
try:
    print("shutting down", flush=True)
    client.shutdown(30)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    raise SystemExit(0)
"""


def _run_until(code: str, *args: str, line: str, then: signal.Signals,
               timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run ``code``; when it prints ``line``, send it ``then``; wait for its exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUDDER_")}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=str(REPO))
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        for out in proc.stdout:
            seen.append(out)
            if out.strip() == line:
                proc.send_signal(then)
                break
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(seen) + stdout, stderr)


def test_ctrl_c_during_shutdown_leaves_the_queue_to_the_exit_hook(dataplane: DevServer) -> None:
    """Ctrl-C while shutdown(30) waits on a slow data plane: the exit hook still delivers
    what was queued (it used to be lost: the client had already left the exit hook)."""
    dataplane.hang_next(1, seconds=2)
    result = _run_until(INTERRUPTED_SHUTDOWN, dataplane.url, line="shutting down",
                        then=signal.SIGINT)
    assert "interrupted" in result.stdout, result.stderr
    assert result.returncode == 0, result.stderr
    assert dataplane.wait_for_events(1000, timeout=10)
    assert dataplane.count(event="Interrupted") >= 1000


COLLECTED_CLIENT_DOWN = """
import gc, sys
from rudder_analytics import Client
client = Client("k", sys.argv[1], shutdown_timeout=0.5, timeout=5.0)
for i in range(30):
    client.track("u", "E", {"i": i})
del client
gc.collect()
"""


def test_collected_client_that_cannot_deliver_says_so_on_stderr(blackhole: str) -> None:
    """A client garbage-collected without shutdown() whose events cannot be delivered at
    exit: one line on stderr with the count, as for live clients (no logging set up)."""
    result = run_script(COLLECTED_CLIENT_DOWN, blackhole, timeout=30)
    assert result.returncode == 0, result.stderr
    assert ("rudder_analytics: 30 event(s) of a client that was garbage-collected without "
            "shutdown() were not delivered at exit") in result.stderr


CALLBACK_SHUTDOWN_AT_EXIT = """
import json, sys
from rudder_analytics import Client
holder = {}
client = Client("test-write-key", sys.argv[1], shutdown_timeout=3.0,
                on_error=lambda *args: holder["c"].flush())
holder["c"] = client
for i in range(500):
    client.track("u", "AtExit", {"i": i})
print(json.dumps({"queued": client.stats()["queue_depth"]}), flush=True)
"""


def test_exit_hook_delivers_with_a_reentrant_callback(dataplane: DevServer) -> None:
    """A client whose on_error calls flush() is still delivered by the exit hook."""
    dataplane.fail_next(1, status=503)
    result = run_script(CALLBACK_SHUTDOWN_AT_EXIT, dataplane.url, timeout=30)
    assert result.returncode == 0, result.stderr
    assert dataplane.count(event="AtExit") == 500, result.stderr
