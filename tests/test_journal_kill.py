"""Guarantee 2 of the journal (issue #12): kill -9 loses nothing that was committed.

Real processes, real SIGKILL: a zygote process imports the SDK once and forks one
child per round (so 50+ rounds fit in a few seconds); each child tracks events
flat out into a client with ``persist_dir`` that delivers to a local DevServer,
and prints, from the journal's commit seam, how many of its events are committed.
The test kills it with SIGKILL at a random moment. A final client with the same
``persist_dir`` must deliver every committed event, with its original messageId.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import IO, Callable

from rudder_analytics import Client
from rudder_analytics.devserver import DevServer

ROUNDS = 50
UPLOAD_SIZE = 50

ZYGOTE = r"""
import os, sys
import rudder_analytics
from rudder_analytics.journal import writer

url, persist = sys.argv[1], sys.argv[2]

def child(run):
    def committed(count):
        os.write(1, f"C {run} {count}\n".encode())
    writer.on_commit = committed
    client = rudder_analytics.Client("key", url, persist_dir=persist, max_queue_size=500,
                                     upload_size=UPLOAD, upload_interval=0.02, atexit=False)
    n = 0
    while True:
        ok, _ = client.track("u", "e", message_id=f"r{run}-{n}")
        if not ok:
            os.write(1, f"F {run} {n}\n".encode())
        n += 1

for line in sys.stdin:
    run = int(line)
    pid = os.fork()
    if pid == 0:
        try:
            child(run)
        finally:
            os._exit(1)
    os.write(1, f"P {run} {pid}\n".encode())
    os.waitpid(pid, 0)
    os.write(1, f"R {run}\n".encode())
""".replace("UPLOAD", str(UPLOAD_SIZE))


class Lines:
    """The zygote's output, parsed on a thread; waits are on a Condition."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.cond = threading.Condition()
        self.pids: dict[int, int] = {}
        self.committed: dict[int, int] = {}
        self.reaped: set[int] = set()
        self.refused = 0
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            kind, run, *rest = raw.decode().split()
            with self.cond:
                if kind == "P":
                    self.pids[int(run)] = int(rest[0])
                elif kind == "C":
                    self.committed[int(run)] = max(self.committed.get(int(run), 0), int(rest[0]))
                elif kind == "R":
                    self.reaped.add(int(run))
                elif kind == "F":
                    self.refused += 1
                self.cond.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)


def test_sigkill_at_random_moments_loses_no_committed_event(tmp_path: Path) -> None:
    """50 children killed with SIGKILL mid-flight; every committed event is delivered
    afterwards with its own messageId; duplicates stay within one in-flight batch per
    kill (thread x upload_size)."""
    rng = random.Random(12)
    persist = str(tmp_path / "journal")
    os.mkdir(persist)
    with DevServer(write_keys=["key"]) as server:
        zygote = subprocess.Popen([sys.executable, "-c", ZYGOTE, server.url, persist],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert zygote.stdin is not None and zygote.stdout is not None
        lines = Lines(zygote.stdout)
        try:
            for run in range(ROUNDS):
                zygote.stdin.write(f"{run}\n".encode())
                zygote.stdin.flush()
                assert lines.wait(lambda run=run: run in lines.pids)  # type: ignore[misc]
                time.sleep(rng.uniform(0.0, 0.12))  # the random moment of the kill
                os.kill(lines.pids[run], signal.SIGKILL)
                assert lines.wait(lambda run=run: run in lines.reaped)  # type: ignore[misc]
        finally:
            zygote.stdin.close()
            zygote.wait(10)
        expected = {f"r{run}-{n}" for run, count in lines.committed.items()
                    for n in range(count)}
        assert len(expected) > 1000  # the children did commit events before dying
        with Client("key", server.url, persist_dir=persist, upload_size=UPLOAD_SIZE) as final:
            server.wait_for_events(len(expected), timeout=20)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                received = {e["messageId"] for e in server.events()}
                if expected <= received:
                    break
                server.wait_for_events(server.count() + 1, timeout=0.5)
            final.flush(10)
        ids = Counter(e["messageId"] for e in server.events())
        missing = expected - set(ids)
        assert not missing, f"{len(missing)} committed events lost, e.g. {sorted(missing)[:5]}"
        duplicates = sum(n - 1 for n in ids.values() if n > 1)
        # a worker writes each batch's acknowledgement as soon as it settles: a kill
        # duplicates at most the batch in flight (thread=1), same messageId
        assert duplicates <= ROUNDS * UPLOAD_SIZE, duplicates
        assert lines.refused == 0
    leftover = [p for p in Path(persist).rglob("seg-*.log")]
    assert len(leftover) <= 1  # delivered means deleted
