"""The journal's costs (issue #12): prints one table.

Rows: track() caller cost with and without ``persist_dir`` in the same run
(interleaved rounds, medians), CPU per event of the whole process, the group-commit
interval and an event's time-to-commit at p50/p99 while the caller loops flat out,
and recovery: how fast a restarted client reads a backlog back and delivers it.

The first rows deliver to ``benchmarks/sink.py`` in a process of its own, pinned to
the other core (this process is pinned to cpu 0, as the SDK benchmark's drivers are),
so that the data plane's work is not counted as the SDK's. The recovery row needs
an outage, so it uses a DevServer in this process.

    python benchmarks/journal_bench.py [--events 50000] [--rounds 5] [--backlog 200000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from rudder_analytics import Client
from rudder_analytics.devserver import DevServer
from rudder_analytics.journal import writer

KEY = "bench"
SINK = Path(__file__).resolve().parent / "sink.py"


@contextlib.contextmanager
def _sink() -> Iterator[str]:
    """The benchmark sink in a child process on cpu 1; yields its URL."""
    proc = subprocess.Popen([sys.executable, str(SINK), "--port", "0", "--cpu", "1"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = json.loads(proc.stdout.readline())["port"]
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


def _round(url: str, events: int, persist: str | None) -> tuple[float, float]:
    """(µs per track call, CPU µs per event including delivery) for one client."""
    options = {"persist_dir": persist} if persist else {}
    client = Client(KEY, url, atexit=False, max_queue_size=events + 1, **options)
    client.track("u", "warm")
    cpu0, t0 = time.process_time(), time.perf_counter()
    for i in range(events):
        client.track("u", "Order Completed", {"order": i, "total": 12.5})
    caller = time.perf_counter() - t0
    client.flush(60)
    cpu = time.process_time() - cpu0
    client.shutdown()
    return caller / events * 1e6, cpu / events * 1e6


def _commit_latency(url: str, events: int) -> tuple[list[float], list[float]]:
    """Commit intervals and sampled time-to-commit (ms) under a flat-out caller loop."""
    commits: list[tuple[int, float]] = []
    writer.on_commit = lambda n: commits.append((n, time.perf_counter()))
    sent: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory() as persist:
        client = Client(KEY, url, atexit=False, max_queue_size=events + 1, persist_dir=persist)
        for i in range(events):
            if i % 50 == 0:
                sent.append((i + 1, time.perf_counter()))
            client.track("u", "e", {"i": i})
        done = threading.Event()
        writer.on_commit = lambda n: (commits.append((n, time.perf_counter())),
                                      n >= events and done.set())
        done.wait(10)
        client.shutdown()
    writer.on_commit = None
    intervals = [(b[1] - a[1]) * 1e3 for a, b in zip(commits, commits[1:])]
    ages, j = [], 0
    for count, at in sent:
        while j < len(commits) and commits[j][0] < count:
            j += 1
        if j < len(commits):
            ages.append((commits[j][1] - at) * 1e3)
    return intervals, ages


CONSTRUCTIONS = 9


def _construct(url: str, persist: str | None = None, **options: object) -> float:
    """Seconds to construct a client with a journal, the median of CONSTRUCTIONS (in an
    empty persist_dir unless ``persist``)."""
    times = []
    with tempfile.TemporaryDirectory() as empty:
        for _ in range(CONSTRUCTIONS):
            t0 = time.perf_counter()
            client = Client(KEY, url, atexit=False, persist_dir=persist or empty, **options)
            times.append(time.perf_counter() - t0)
            client.shutdown(timeout=0.05)
            time.sleep(0.05)  # the journal thread ends its read-back: the next one starts alone
    return statistics.median(times)


def _recovery(url: str, server: DevServer,
              backlog: int) -> tuple[float, float, float, float]:
    """(events/s read back into the queue, events/s delivered, construction seconds with
    the backlog, and with none) after a restart."""
    with tempfile.TemporaryDirectory() as persist:
        server.fail_fraction(1.0)
        client = Client(KEY, url, atexit=False, persist_dir=persist, max_retries=100_000,
                        retry_deadline=3600, retry_base_delay=0.05, retry_max_delay=0.1,
                        max_queue_size=1000)
        for i in range(backlog):
            client.track("u", "e", {"i": i})
        done = threading.Event()
        writer.on_commit = lambda n: n >= backlog and done.set()
        done.wait(60)
        writer.on_commit = None
        client.shutdown(timeout=0.2)
        construct = _construct(url, persist, max_retries=100_000, retry_deadline=3600)
        server.clear_faults()
        server.reset()
        t0 = time.perf_counter()
        started = Client(KEY, url, atexit=False, persist_dir=persist)
        while started.stats()["recovered"] < backlog * 0.99 and time.perf_counter() - t0 < 120:
            time.sleep(0.01)
        read = time.perf_counter() - t0
        server.wait_for_events(int(backlog * 0.99), timeout=120)
        delivered = time.perf_counter() - t0
        started.shutdown()
    return backlog / read, backlog / delivered, construct, _construct(url)


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _table(args: argparse.Namespace, memory: list[tuple[float, float]],
           journal: list[tuple[float, float]], intervals: list[float], ages: list[float],
           recovery: tuple[float, float, float, float]) -> list[str]:
    m_call = statistics.median(c for c, _ in memory)
    j_call = statistics.median(c for c, _ in journal)
    m_cpu = statistics.median(c for _, c in memory)
    j_cpu = statistics.median(c for _, c in journal)
    ratios = [j[0] / m[0] for m, j in zip(memory, journal)]
    return [
        "| row | memory only | journal (persist_dir) | target |",
        "|---|---|---|---|",
        f"| track() caller cost, µs/call (median of {args.rounds}) | {m_call:.2f} | "
        f"{j_call:.2f} ({j_call / m_call:.2f}x; rounds {min(ratios):.2f}-{max(ratios):.2f}x)"
        " | ≤ 1.15x |",
        f"| process CPU per event, µs (delivery included) | {m_cpu:.2f} | {j_cpu:.2f} "
        f"(+{j_cpu - m_cpu:.2f}) | |",
        f"| group-commit interval p50 / p99, ms (flat-out caller) | - | "
        f"{_p(intervals, 0.5):.1f} / {_p(intervals, 0.99):.1f} | |",
        f"| event time-to-commit p50 / p99, ms (flat-out caller) | - | "
        f"{_p(ages, 0.5):.1f} / {_p(ages, 0.99):.1f} | p99 ≤ 55 ms |",
        f"| recovery after restart, events/s read back / delivered | - | "
        f"{recovery[0]:,.0f} / {recovery[1]:,.0f} | |",
        f"| client construction, ms (median of {CONSTRUCTIONS}): no backlog / "
        f"{args.backlog:,}-event backlog | - | "
        f"{recovery[3] * 1e3:.1f} / {recovery[2] * 1e3:.1f} | the same |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backlog", type=int, default=200_000)
    parser.add_argument("--results", help="also write the table to this markdown file")
    args = parser.parse_args()
    pinned = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1
    if pinned:
        os.sched_setaffinity(0, {0})
    load = os.getloadavg()
    with _sink() as url:
        memory, journal = [], []
        for _ in range(args.rounds):  # interleaved, so both see the same machine load
            memory.append(_round(url, args.events, None))
            with tempfile.TemporaryDirectory() as persist:
                journal.append(_round(url, args.events, persist))
        intervals, ages = _commit_latency(url, args.events)
    with DevServer(write_keys=[KEY]) as server:
        recovery = _recovery(server.url, server, args.backlog)
    lines = _table(args, memory, journal, intervals, ages, recovery)
    notes = [
        f"- {args.events:,} events per round, memory-only and journal rounds interleaved; "
        f"this process {'pinned to cpu 0, the sink to cpu 1' if pinned else 'not pinned'}; "
        f"load average {' '.join(f'{x:.2f}' for x in load)} at the start, "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end.",
        f"- Python {platform.python_version()}, {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} cpus; persist_fsync=\"interval\" (the default).",
    ]
    print("\n".join([*lines, "", *notes]))
    if args.results:
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        command = "python benchmarks/journal_bench.py " + " ".join(sys.argv[1:])
        Path(args.results).write_text(
            f"# Journal benchmark\n\n`{command}` — {stamp}\n\n" + "\n".join(lines)
            + "\n\n" + "\n".join(notes) + "\n")


if __name__ == "__main__":
    main()
