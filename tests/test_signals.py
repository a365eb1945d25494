"""SIGTERM (option ``handle_sigterm``): real subprocesses, real signals, the real servers.

Every program here builds its client with one large batch and a long upload interval
(tests/apps/common.py), so an event reaches the local data plane only if the end of the
process delivers it. Each test waits for a readiness line on the child's output, sends
SIGTERM, and waits (with a deadline) for the child to end.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Optional

import pytest
import requests

from rudder_analytics.devserver import DevServer
from tests.helpers_reliability import REPO

WRITE_KEY = "test-write-key"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.fixture
def server() -> Iterator[DevServer]:
    """A local data plane for one test."""
    with DevServer(write_keys=(WRITE_KEY,)) as srv:
        yield srv


class Child:
    """A subprocess whose output (stdout and stderr together) is read line by line."""

    def __init__(self, args: list[str], url: str, handle_sigterm: bool) -> None:
        env = dict(os.environ, RUDDER_WRITE_KEY=WRITE_KEY, RUDDER_DATA_PLANE_URL=url,
                   RUDDER_TEST_HANDLE_SIGTERM="1" if handle_sigterm else "0",
                   PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[Optional[str]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 15.0) -> list[str]:
        """Wait until ``count`` lines matching ``pattern`` were printed; return them."""
        deadline = time.monotonic() + timeout
        found: list[str] = []
        while len(found) < count:
            try:
                line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.kill()
                pytest.fail(f"no line matching {pattern!r} ({len(found)}/{count}):\n"
                            + "".join(self.lines[-40:]))
            self.lines.append(line)
            if re.search(pattern, line):
                found.append(line)
        return found

    def terminate_and_wait(self, timeout: float = 15.0, pid: Optional[int] = None) -> int:
        """SIGTERM the child (or ``pid``); its exit status once it has ended (fails after
        ``timeout``)."""
        os.kill(self.process.pid if pid is None else pid, signal.SIGTERM)
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail("the child did not end after SIGTERM:\n" + "".join(self.output()[-40:]))
        self._reader.join(5.0)
        return status

    def output(self) -> list[str]:
        """Every line printed so far."""
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return self.lines
            if line is not None:
                self.lines.append(line)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5.0)


def seqs(server: DevServer) -> list[int]:
    """The ``seq`` property of every stored event, sorted."""
    return sorted(event["properties"]["seq"] for event in server.events())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- a plain script ---------------------------------------------------------------------

SCRIPT = [sys.executable, "-m", "tests.apps.sigterm_script"]


def test_script_delivers_all_queued_events_and_exits_with_sigterm_status(
        server: DevServer) -> None:
    """handle_sigterm=True: 5,000 queued events all arrive, and the status is -SIGTERM."""
    child = Child([*SCRIPT, "held", "5000"], server.url, handle_sigterm=True)
    child.wait_for(r"^ready 5000")
    assert child.terminate_and_wait() == -signal.SIGTERM
    assert server.wait_for_events(5000, timeout=10)
    assert seqs(server) == list(range(5000))


def test_without_handle_sigterm_queued_events_are_lost(server: DevServer) -> None:
    """The default (handle_sigterm=False) is unchanged: SIGTERM ends the script, events lost."""
    child = Child([*SCRIPT, "held", "5000"], server.url, handle_sigterm=False)
    child.wait_for(r"^ready 5000")
    assert child.terminate_and_wait() == -signal.SIGTERM
    assert server.count() < 5000  # Python's default action skips atexit


def test_sigterm_while_the_main_thread_is_inside_the_sdk_does_not_deadlock(
        server: DevServer) -> None:
    """SIGTERM landing inside track() (locks held): no hang, every event tracked arrives.

    Where the signal lands is chance, so a few rounds (each well under a second)."""
    for _ in range(4):
        server.reset()
        child = Child([*SCRIPT, "loop"], server.url, handle_sigterm=True)
        child.wait_for(r"^progress 500$")
        assert child.terminate_and_wait() == -signal.SIGTERM
        printed = [int(m.group(1)) for line in child.output()
                   if (m := re.match(r"^progress (\d+)$", line))]
        stored = seqs(server)
        assert stored == list(range(len(stored)))  # nothing missing, nothing twice
        assert len(stored) >= max(printed)


def _pid_namespaces_usable() -> bool:
    if shutil.which("unshare") is None:
        return False
    result = subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=10)
    return result.returncode == 0


UNSHARE = ["unshare", "--pid", "--fork", "--user", "--map-root-user"]


def test_as_pid_1_of_a_container_it_delivers_and_exits_143(server: DevServer) -> None:
    """As PID 1 (a container's process) the kernel ignores a default SIGTERM, so re-raising
    it would leave the process running until SIGKILL: it delivers, then exits with 143."""
    if sys.platform != "linux" or not _pid_namespaces_usable():
        pytest.skip("needs unshare with user and PID namespaces")
    child = Child([*UNSHARE, *SCRIPT, "held", "500"], server.url, handle_sigterm=True)
    child.wait_for(r"^ready 500")
    unshare = child.process.pid
    with open(f"/proc/{unshare}/task/{unshare}/children") as children:
        pid_1 = int(children.read().split()[0])  # the script, PID 1 in its namespace
    assert child.terminate_and_wait(pid=pid_1) == 128 + signal.SIGTERM
    assert seqs(server) == list(range(500))


MODULE_API = textwrap.dedent("""
    import threading
    import rudder_analytics
    from tests.apps.common import HELD

    rudder_analytics.handle_sigterm = True
    for name, value in HELD.items():
        setattr(rudder_analytics, name, value)
    for seq in range(300):
        rudder_analytics.track("u", "Module", {"seq": seq})
    print("ready", flush=True)
    threading.Event().wait(30)
""")


def test_the_module_setting_turns_it_on(server: DevServer) -> None:
    """``rudder_analytics.handle_sigterm = True``: the default client's events survive SIGTERM."""
    child = Child([sys.executable, "-c", MODULE_API], server.url, handle_sigterm=False)
    child.wait_for(r"^ready")
    assert child.terminate_and_wait() == -signal.SIGTERM
    assert seqs(server) == list(range(300))


SERVER_LIKE = textwrap.dedent("""
    import signal, threading
    from tests.apps.common import held_client

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())  # the server's handler
    client = held_client()  # installed on top of the server's handler
    for seq in range(1000):
        client.track("u", "Before", {"seq": seq})
    print("ready", flush=True)
    assert stop.wait(30)
    for seq in range(1000, 1100):  # the graceful shutdown: requests still track events
        assert client.track("u", "During", {"seq": seq})[0]
    # uvicorn's way to end: restore the handler it replaced, raise SIGTERM again
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.raise_signal(signal.SIGTERM)
    print("held back until the events are delivered", flush=True)
""")


def test_a_server_that_restores_sig_dfl_and_re_raises_still_delivers(
        server: DevServer) -> None:
    """On top of a server's handler: it is called, its shutdown's events and all others arrive,
    and its re-raised SIGTERM still ends the process with -SIGTERM (after delivery)."""
    child = Child([sys.executable, "-c", SERVER_LIKE], server.url, handle_sigterm=True)
    child.wait_for(r"^ready")
    assert child.terminate_and_wait() == -signal.SIGTERM
    assert seqs(server) == list(range(1100))


USER_EXITS = textwrap.dedent("""
    import signal, sys, threading
    from tests.apps.common import held_client

    def on_term(signum, frame):
        print("user handler", signum, flush=True)
        sys.exit(3)

    signal.signal(signal.SIGTERM, on_term)
    client = held_client()
    for seq in range(500):
        client.track("u", "Queued", {"seq": seq})
    print("ready", flush=True)
    threading.Event().wait(30)
""")


def test_the_handler_it_replaced_is_called(server: DevServer) -> None:
    """A handler installed before the client is called; its sys.exit(3) stands; events arrive."""
    child = Child([sys.executable, "-c", USER_EXITS], server.url, handle_sigterm=True)
    child.wait_for(r"^ready")
    assert child.terminate_and_wait() == 3
    assert any(line.startswith(f"user handler {int(signal.SIGTERM)}") for line in child.output())
    assert seqs(server) == list(range(500))


INSTALL_RULES = textwrap.dedent("""
    import json, logging, signal, sys, threading
    from rudder_analytics import Client

    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    url = sys.argv[1]
    report = {}

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    Client("k", url, handle_sigterm=True).shutdown(0.1)
    report["ignored_stays_ignored"] = signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    built = []
    t = threading.Thread(target=lambda: built.append(Client("k", url, handle_sigterm=True)))
    t.start(); t.join(10)
    report["other_thread_installs_nothing"] = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

    Client("k", url, handle_sigterm=False)
    report["option_off_installs_nothing"] = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

    Client("k", url, handle_sigterm=True)
    report["main_thread_installs"] = signal.getsignal(signal.SIGTERM).__module__
    def mine(signum, frame):
        pass
    signal.signal(signal.SIGTERM, mine)
    Client("k", url, handle_sigterm=True)
    report["later_handler_kept"] = signal.getsignal(signal.SIGTERM) is mine
    print(json.dumps(report))
""")


def test_where_the_handler_is_installed_and_where_not(server: DevServer) -> None:
    """Not over SIG_IGN, not from another thread (INFO says so), not when off; once from the
    main thread; a handler the application installs later is never replaced."""
    result = subprocess.run([sys.executable, "-c", INSTALL_RULES, server.url], cwd=REPO,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    report = json.loads(next(line for line in result.stdout.splitlines() if line[:1] == "{"))
    assert report == {
        "ignored_stays_ignored": True,
        "other_thread_installs_nothing": True,
        "option_off_installs_nothing": True,
        "main_thread_installs": "rudder_analytics._process.signals",
        "later_handler_kept": True,
    }
    assert "can only be installed from the main thread" in result.stdout


# --- real servers -----------------------------------------------------------------------


def _serve_then_terminate(child: Child, port: int, requests_count: int) -> tuple[int, set[int]]:
    """Send requests (one event each), all accepted; SIGTERM the master; its status, pids."""
    pids: set[int] = set()
    for seq in range(requests_count):
        answer = requests.get(f"http://127.0.0.1:{port}/track/{seq}", timeout=10).json()
        assert answer["ok"] is True
        pids.add(answer["pid"])
    return child.terminate_and_wait(), pids


def _uvicorn(server: DevServer, workers: int, handle_sigterm: bool) -> tuple[Child, int]:
    port = free_port()
    child = Child([sys.executable, "-m", "uvicorn", "--workers", str(workers), "--port",
                   str(port), "tests.apps.fastapi_app:app"], server.url, handle_sigterm)
    child.wait_for(r"Application startup complete", count=workers)
    if workers == 1:  # it listens only after the startup
        child.wait_for(r"Uvicorn running on")
    return child, port


@pytest.mark.parametrize("workers", [1, 2])
def test_uvicorn_delivers_every_accepted_event(server: DevServer, workers: int) -> None:
    """uvicorn (one process, and --workers 2) with a FastAPI app without a lifespan hook:
    SIGTERM to uvicorn, and every event its requests tracked arrives."""
    child, port = _uvicorn(server, workers, handle_sigterm=True)
    status, _ = _serve_then_terminate(child, port, 60)
    assert status in (0, -signal.SIGTERM)
    assert server.wait_for_events(60, timeout=10)
    assert seqs(server) == list(range(60))


def test_uvicorn_request_in_flight_at_sigterm_is_answered_and_its_event_arrives(
        server: DevServer) -> None:
    """uvicorn --workers 2: a request still running when SIGTERM arrives finishes during
    uvicorn's graceful shutdown; the event it tracks then is accepted and delivered."""
    child, port = _uvicorn(server, 2, handle_sigterm=True)
    answers: list[dict[str, object]] = []
    request = threading.Thread(target=lambda: answers.append(
        requests.get(f"http://127.0.0.1:{port}/slow/7", timeout=10).json()))
    request.start()
    child.wait_for(r"^in-flight 7")
    status = child.terminate_and_wait()
    request.join(10)
    assert status == 0
    assert answers and answers[0]["ok"] is True
    assert server.wait_for_events(1, timeout=10)
    assert seqs(server) == [7]


def test_uvicorn_workers_lose_events_without_handle_sigterm(server: DevServer) -> None:
    """The problem the option solves: uvicorn's workers re-raise SIGTERM after their
    graceful shutdown, which skips atexit, so their queued events are lost."""
    child, port = _uvicorn(server, 2, handle_sigterm=False)
    status, _ = _serve_then_terminate(child, port, 60)
    assert status == 0
    assert server.count() < 60


@pytest.mark.parametrize(("worker_class", "app"), [
    ("sync", "tests.apps.flask_app:app"),
    ("uvicorn.workers.UvicornWorker", "tests.apps.fastapi_app:app"),
])
def test_gunicorn_workers_deliver_every_accepted_event(
        server: DevServer, worker_class: str, app: str) -> None:
    """gunicorn with two workers (sync with Flask; uvicorn's worker class with FastAPI, which
    re-raises SIGTERM like uvicorn): SIGTERM to the master, every tracked event arrives."""
    port = free_port()
    child = Child([sys.executable, "-m", "gunicorn", "-w", "2", "-k", worker_class,
                   "-b", f"127.0.0.1:{port}", "--graceful-timeout", "10", app], server.url,
                  handle_sigterm=True)
    child.wait_for(r"^app-ready", count=2)
    status, _ = _serve_then_terminate(child, port, 60)
    assert status == 0
    assert server.wait_for_events(60, timeout=10)
    assert seqs(server) == list(range(60))
