"""Shared helpers of the reliability suite: producers, fault spreading, id accounting, scripts.

Everything here talks real HTTP to a :class:`~rudder_analytics.devserver.DevServer` on
loopback. Waits are on conditions with deadlines (``wait_for_events``,
``wait_for_requests``, ``Thread.join(timeout)``), never bare sleeps.
"""

from __future__ import annotations

import collections
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Callable, Optional

from rudder_analytics import Client
from rudder_analytics.devserver import DevServer, RequestRecord

WRITE_KEY = "test-write-key"

FAST: dict[str, Any] = {
    "upload_interval": 0.05,
    "retry_base_delay": 0.01,
    "retry_max_delay": 0.05,
    "timeout": 1.0,
    "shutdown_timeout": 5.0,
    "atexit": False,
}
"""Client options that keep the suite quick: short waits, short backoff, short timeout."""

REPO = Path(__file__).resolve().parent.parent


def make_client(url: str, **options: Any) -> Client:
    """A client for ``url`` with the fast options (overridable)."""
    merged = {**FAST, **options}
    write_key = merged.pop("write_key", WRITE_KEY)
    return Client(write_key, url, **merged)


def produce(
    client: Client,
    threads: int = 4,
    per_thread: int = 500,
    tag: str = "run",
    timeout: float = 60.0,
) -> list[str]:
    """Track ``threads * per_thread`` events from ``threads`` threads started together.

    Every call must be accepted (``(True, message)``); returns the message ids. Each
    event carries ``properties = {"tag", "thread", "seq"}`` so copies can be compared.
    """
    ids: list[list[str]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout)
            out = ids[index]
            for seq in range(per_thread):
                ok, message = client.track(
                    user_id=f"user-{index}",
                    event="Reliability Event",
                    properties={"tag": tag, "thread": index, "seq": seq, "pad": "x" * 64},
                )
                if not ok:
                    raise AssertionError(f"event {index}/{seq} was refused: {client.stats()}")
                out.append(message["messageId"])
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + timeout
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    assert not any(w.is_alive() for w in workers), "producer threads did not finish in time"
    if errors:
        raise errors[0]
    return [mid for chunk in ids for mid in chunk]


class FaultSpreader:
    """Injects one fault every ``every`` ingestion requests, up to ``count`` times.

    Event-driven: a thread waits (with a deadline) for the server's request counter to
    reach the next multiple of ``every``, then calls ``inject()``. This spreads faults over
    a run instead of putting them all on the first requests.
    """

    def __init__(
        self, server: DevServer, inject: Callable[[], None], count: int, every: int
    ) -> None:
        self._server = server
        self._inject = inject
        self._count = count
        self._every = every
        self._stop = threading.Event()
        self.injected = 0
        self._thread = threading.Thread(target=self._run, daemon=True, name="fault-spreader")

    def __enter__(self) -> FaultSpreader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def _run(self) -> None:
        for k in range(1, self._count + 1):
            while not self._server.wait_for_requests(k * self._every, timeout=0.2):
                if self._stop.is_set():
                    return
            self._inject()
            self.injected += 1


def stored_ids(*servers: DevServer) -> collections.Counter[str]:
    """Message id -> how many times it is stored, over all ``servers``."""
    counts: collections.Counter[str] = collections.Counter()
    for server in servers:
        counts.update(e["messageId"] for e in server.events())
    return counts


def request_ids(record: RequestRecord) -> list[str]:
    """Message ids in a logged request's body (empty if the body was not read)."""
    if record.body is None:
        return []
    try:
        data = json.loads(record.body)
    except ValueError:
        return []
    return [m.get("messageId") for m in data.get("batch", []) if isinstance(m, dict)]


def unanswered_stored_ids(*servers: DevServer) -> set[str]:
    """Ids in requests that stored events but whose answer never reached the client."""
    out: set[str] = set()
    for server in servers:
        for record in server.requests():
            if record.events and not record.answered:
                out.update(request_ids(record))
    return out


def assert_delivered_once(
    sent: Iterable[str], *servers: DevServer, lost_answers_allowed: bool = False
) -> collections.Counter[str]:
    """Every sent id is stored; a duplicate only where an answer was lost after storing.

    Returns the stored counter. Duplicates are checked to be copies of the same event
    (same properties), i.e. a re-send with the same message id.
    """
    sent_list = list(sent)
    assert len(set(sent_list)) == len(sent_list), "the SDK issued a message id twice"
    counts = stored_ids(*servers)
    missing = [mid for mid in sent_list if counts[mid] == 0]
    assert not missing, f"{len(missing)} of {len(sent_list)} events never stored"
    extra = set(counts) - set(sent_list)
    assert not extra, f"{len(extra)} stored events were never sent by this run"
    duplicated = {mid for mid, n in counts.items() if n > 1}
    if duplicated:
        assert lost_answers_allowed, f"{len(duplicated)} events stored twice without a lost answer"
        lost = unanswered_stored_ids(*servers)
        assert duplicated <= lost, "an event was stored twice but its answer was not lost"
        for server in servers:
            for mid in duplicated:
                copies = [e["properties"] for e in server.events(message_id=mid)]
                assert all(c == copies[0] for c in copies), "duplicates differ"
    return counts


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes (for SDK-side counters)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def run_script(
    code: str,
    *args: str,
    timeout: float = 60.0,
    env: Optional[dict[str, str]] = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (this venv), with ``args`` as ``sys.argv[1:]``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RUDDER_")}
    full_env.update({"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=str(REPO),
    )


def last_json_line(output: str) -> Any:
    """The last line of a script's stdout that parses as JSON (its report)."""
    for line in reversed(output.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no JSON report in output:\n{output[-2000:]}")


def refused_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"
