"""asyncio path: event-loop health while aflush() delivers, and the bounds of the async API.

Run: ``python benchmarks/async_bench.py [--events 20000]``. Prints one table (and, with
``--json``, one JSON line). The data plane is ``benchmarks/sink.py`` in a child process;
a hanging data plane is a loopback socket that accepts and never answers.

What is measured (the targets of issue #14):

- timer lateness: a 1 ms ``asyncio.sleep`` ticker on the loop while ``aflush()`` waits for
  the worker threads to deliver N queued events (target: p99 <= 5 ms, max <= 20 ms). The
  events are queued while the sink is stopped (SIGSTOP), so the whole N is delivered
  during ``aflush()``;
- ``aflush()`` with the loop's default executor saturated (must complete);
- one client across three successive ``asyncio.run()`` calls (must deliver each time);
- ``ashutdown(t)`` against a hanging data plane (target: returns within t + 1 s);
- the hot path: ``track()`` on a loop and off it, and what the await-refusing result
  type adds per call.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import timeit
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rudder_analytics import Client  # noqa: E402
from rudder_analytics._async.result import CallResult  # noqa: E402

WRITE_KEY = "bench-key"
PROPS = {"revenue": 9.95, "currency": "EUR", "sku": "A-1"}


def start_sink() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "sink.py"), "--port", "0",
                             "--cpu", "-1"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = json.loads(proc.stdout.readline())["port"]
    return proc, f"http://127.0.0.1:{port}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timer_lateness(url: str, sink: subprocess.Popen[str], events: int) -> dict[str, Any]:
    client = Client(WRITE_KEY, url, upload_interval=0.5, atexit=False, timeout=30.0,
                    max_queue_size=max(100_000, events))
    os.kill(sink.pid, signal.SIGSTOP)  # the first request waits; everything else queues
    try:
        for i in range(events):
            client.track(user_id=f"u{i % 50}", event="Order Completed", properties=PROPS)
    finally:
        os.kill(sink.pid, signal.SIGCONT)
    queued = client.stats()["queue_depth"]

    async def main() -> tuple[list[float], float, bool]:
        loop = asyncio.get_running_loop()
        late: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            while not done.is_set():
                start = loop.time()
                await asyncio.sleep(0.001)
                late.append(loop.time() - start - 0.001)

        tick = asyncio.ensure_future(ticker())
        await asyncio.sleep(0.01)
        started = time.perf_counter()
        ok = await client.aflush(timeout=60)
        elapsed = time.perf_counter() - started
        done.set()
        await tick
        return late, elapsed, ok

    late, elapsed, ok = asyncio.run(main())
    delivered = client.stats()["delivered"]
    client.shutdown(timeout=5)
    return {"queued_at_aflush": queued, "delivered": delivered, "aflush_ok": ok,
            "aflush_s": elapsed, "late": late}


def pooled(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Several timer rounds as one: lateness percentiles over every tick of every round."""
    late = [x for r in rounds for x in r.pop("late")]
    first = rounds[0]
    return {**first, "rounds": len(rounds), "ticks": len(late),
            "aflush_ok": all(r["aflush_ok"] for r in rounds),
            "aflush_s": max(r["aflush_s"] for r in rounds),
            "delivered": min(r["delivered"] for r in rounds),
            "queued_at_aflush": min(r["queued_at_aflush"] for r in rounds),
            "p50_ms": percentile(late, 0.5) * 1e3, "p99_ms": percentile(late, 0.99) * 1e3,
            "max_ms": max(late) * 1e3}


def saturated_executor(url: str) -> dict[str, Any]:
    client = Client(WRITE_KEY, url, upload_interval=5.0, atexit=False)
    release = threading.Event()

    async def main() -> tuple[bool, float]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=4))
        blockers = [loop.run_in_executor(None, release.wait) for _ in range(8)]
        for _ in range(5000):
            client.track(user_id="u", event="Order Completed", properties=PROPS)
        started = time.perf_counter()
        ok = await client.aflush(timeout=30)
        elapsed = time.perf_counter() - started
        release.set()
        await asyncio.gather(*blockers)
        return ok, elapsed

    ok, elapsed = asyncio.run(main())
    client.shutdown(timeout=5)
    return {"aflush_ok": ok, "aflush_s": elapsed}


def three_runs(url: str) -> dict[str, Any]:
    client = Client(WRITE_KEY, url, upload_interval=5.0, atexit=False)

    async def one() -> bool:
        for _ in range(1000):
            client.track(user_id="u", event="Order Completed", properties=PROPS)
        flushed = await client.aflush(timeout=30)
        async with client.batch() as batch:
            batch.track(user_id="u", event="Order Completed", properties=PROPS)
        return flushed and bool(batch.result and batch.result.ok)

    results = [asyncio.run(one()) for _ in range(3)]
    client.shutdown(timeout=5)
    return {"runs_ok": results}


def hanging_shutdown(budget: float) -> dict[str, Any]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # accepts (the kernel does), never answers
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    client = Client(WRITE_KEY, url, timeout=60.0, atexit=False, upload_interval=0.01)
    for _ in range(100):
        client.track(user_id="u", event="Order Completed", properties=PROPS)
    time.sleep(0.2)  # the worker is now inside a request that will not be answered

    async def main() -> tuple[bool, float]:
        started = time.perf_counter()
        ok = await client.ashutdown(timeout=budget)
        return ok, time.perf_counter() - started

    ok, elapsed = asyncio.run(main())
    listener.close()
    return {"budget_s": budget, "returned_s": elapsed, "ok": ok}


def hot_path(url: str) -> dict[str, Any]:
    client = Client(WRITE_KEY, url, atexit=False, max_queue_size=2_000_000)
    n = 20_000

    def calls() -> None:
        for _ in range(n):
            client.track(user_id="u", event="Order Completed", properties=PROPS)

    off_loop = min(timeit.repeat(calls, number=1, repeat=3)) / n

    async def on_loop() -> float:
        return min(timeit.repeat(calls, number=1, repeat=3)) / n

    on = asyncio.run(on_loop())
    client.shutdown(timeout=10)
    pair = (True, PROPS)
    new = tuple.__new__
    plain = min(timeit.repeat(lambda: (pair[0], pair[1]), number=1_000_000, repeat=5)) / 1e6
    wrapped = min(timeit.repeat(lambda: new(CallResult, (pair[0], pair[1])), number=1_000_000,
                                repeat=5)) / 1e6
    return {"track_off_loop_us": off_loop * 1e6, "track_on_loop_us": on * 1e6,
            "result_type_extra_ns": (wrapped - plain) * 1e9}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5, help="timer rounds, pooled")
    parser.add_argument("--shutdown-budget", type=float, default=1.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sink, url = start_sink()
    try:
        results = {
            "timer": pooled([timer_lateness(url, sink, args.events) for _ in range(args.rounds)]),
            "saturated": saturated_executor(url),
            "three_runs": three_runs(url),
            "hang": hanging_shutdown(args.shutdown_budget),
            "hot": hot_path(url),
        }
    finally:
        sink.kill()
        sink.wait()
    t, s, h, hot = results["timer"], results["saturated"], results["hang"], results["hot"]
    rows = [
        ("1 ms timer lateness p99 during aflush", f"{t['p99_ms']:.2f} ms", "<= 5 ms"),
        ("1 ms timer lateness max during aflush", f"{t['max_ms']:.2f} ms", "<= 20 ms"),
        ("  (p50; ticks; rounds; events queued at aflush)",
         f"{t['p50_ms']:.2f} ms; {t['ticks']}; {t['rounds']}; >= {t['queued_at_aflush']}", ""),
        ("aflush of the queue (slowest round)", f"{t['aflush_s']:.2f} s, ok={t['aflush_ok']}, "
         f"delivered {t['delivered']}", "ok"),
        ("aflush, default executor saturated", f"{s['aflush_s']:.2f} s, ok={s['aflush_ok']}",
         "completes"),
        ("three successive asyncio.run()", str(results["three_runs"]["runs_ok"]), "all True"),
        (f"ashutdown({h['budget_s']:g}) on a hanging data plane",
         f"{h['returned_s']:.2f} s, ok={h['ok']}", f"<= {h['budget_s'] + 1:g} s"),
        ("track() off a loop / on a loop",
         f"{hot['track_off_loop_us']:.2f} / {hot['track_on_loop_us']:.2f} us", "equal"),
        ("await-refusing result type, extra per call", f"{hot['result_type_extra_ns']:.0f} ns",
         "negligible"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'result':<40}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<40}  {target}")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
