"""Benchmark driver: runs one phase against one SDK and prints ``RESULT {json}`` on stdout.

Run by ``benchmarks/sdk_bench.py`` in the SDK's own virtual environment, e.g.::

    benchmarks/.venvs/rudder/bin/python benchmarks/drivers/driver.py \
        --sdk rudder --phase delivery --port 41234 --events 100000 --cpu 0

Phases (each in a fresh process so one cannot skew the next):

* ``delivery`` -- caller cost of each ``track()`` while the worker delivers, end-to-end
  events/s (first call until the sink counted all events), process CPU per 1,000 events.
* ``burst`` -- events dropped when ``--events`` calls arrive at once, SDK defaults.
* ``memory`` -- data plane down: peak RSS and RSS growth per queued event.
* ``sustained`` -- a backfill loop: each of ``--events`` calls comes after ``json.loads`` of a
  ~600-byte line, with the SDK's default settings (``--queue block``: ours with
  ``on_full="block"``; ``--queue unbounded``: a queue larger than the run). Events/s delivered
  while it runs (first call until the sink counted the last event) and events dropped.

The process exits with ``os._exit`` right after printing, so SDK retry loops and atexit
flushes never delay it.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import os
import resource
import socket
import sys
import time
import traceback
from array import array
from typing import Any

from adapters import FACTORIES, Adapter
from payload import backfill_line, make_properties, user_id
from pinning import pin_to_cpu, renice

WARMUP = 1_000  # a multiple of every SDK's batch size (100), so no partial batch is left




def sink_get(port: int, path: str, timeout: float = 10.0) -> dict[str, Any]:
    """GET a control path on the sink; return its JSON answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path.encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("sink closed the connection")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("sink closed the connection")
            body += chunk
    return dict(json.loads(body[:length]))


def sink_wait(port: int, n: int, timeout: float) -> dict[str, Any]:
    """Block until the sink has counted ``n`` events or ``timeout`` seconds pass."""
    return sink_get(port, f"/_wait?n={n}&timeout={timeout}", timeout=timeout + 10.0)


def percentile(sorted_values: list[int], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def rss_bytes() -> int:
    """Current resident set size (VmRSS) in bytes."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes() -> int:
    """Peak resident set size of this process in bytes (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def warm_up(adapter: Adapter, port: int, timeout: float) -> dict[str, Any]:
    """Send WARMUP events and wait until the sink has them (imports, connection, JIT-ish
    caches all warm), then reset the sink's counters."""
    sink_get(port, "/_reset")
    for i in range(WARMUP):
        adapter.track(user_id(i), make_properties(i))
    adapter.flush_async(timeout)
    snap = sink_wait(port, WARMUP, timeout)
    time.sleep(0.05)
    sink_get(port, "/_reset")
    return {"warmup_events": snap["events"], "warmup_timed_out": snap.get("timed_out", False)}


def phase_delivery(adapter: Adapter, port: int, n: int, timeout: float) -> dict[str, Any]:
    """Caller cost, end-to-end rate and CPU for ``n`` calls with a healthy sink."""
    out: dict[str, Any] = {}
    real = adapter.name != "null"
    if real:
        out.update(warm_up(adapter, port, timeout))
    lat = array("q", bytes(8 * n))
    props = make_properties
    uid = user_id
    track = adapter.track
    clock = time.perf_counter_ns
    rejected = 0
    before = sink_get(port, "/_count")
    cpu0 = time.process_time()
    t_first = time.monotonic_ns()
    for i in range(n):
        p = props(i)
        u = uid(i)
        t0 = clock()
        ok = track(u, p)
        lat[i] = clock() - t0
        if not ok:
            rejected += 1
    t_loop = time.monotonic_ns()
    if real:
        flusher = adapter.flush_async(timeout)
        snap = sink_wait(port, n - rejected, timeout)
        cpu1 = time.process_time()
        t_end = snap["last_ns"] if snap["events"] else time.monotonic_ns()
        e2e_s = (t_end - t_first) / 1e9
        out.update(
            delivered=snap["events"],
            delivery_timed_out=bool(snap.get("timed_out")),
            flush_returned=not flusher.is_alive(),
            e2e_s=e2e_s,
            e2e_events_per_s=snap["events"] / e2e_s if e2e_s > 0 else math.nan,
            sink_busy=(snap["cpu_s"] - before["cpu_s"]) / e2e_s if e2e_s > 0 else math.nan,
            sink_requests=snap["requests"],
            sink_mismatches=snap["mismatches"],
            sink_verified=snap["verified"],
            sink_bytes_wire=snap["bytes_wire"],
            sink_paths=snap["paths"],
        )
    else:
        cpu1 = time.process_time()
    values = sorted(lat)
    out.update(
        events=n,
        rejected=rejected,
        loop_s=(t_loop - t_first) / 1e9,
        caller_mean_us=sum(values) / n / 1000.0,
        caller_p50_us=percentile(values, 0.50) / 1000.0,
        caller_p99_us=percentile(values, 0.99) / 1000.0,
        caller_p999_us=percentile(values, 0.999) / 1000.0,
        caller_max_us=values[-1] / 1000.0,
        cpu_s=cpu1 - cpu0,
        cpu_ms_per_1000=(cpu1 - cpu0) * 1000.0 / n * 1000.0,
        sdk_stats=adapter.stats(),
    )
    return out


def phase_burst(adapter: Adapter, port: int, n: int, timeout: float) -> dict[str, Any]:
    """Drops when ``n`` calls arrive back to back with the SDK's default settings."""
    sink_get(port, "/_reset")
    props = make_properties
    uid = user_id
    track = adapter.track
    accepted = 0
    t0 = time.perf_counter()
    for i in range(n):
        if track(uid(i), props(i)):
            accepted += 1
    burst_s = time.perf_counter() - t0
    out: dict[str, Any] = {"events": n, "accepted": accepted, "burst_s": burst_s}
    if adapter.name == "null":
        out.update(delivered=n, dropped=0)
        return out
    flusher = adapter.flush_async(timeout)
    snap = sink_wait(port, accepted, timeout)
    flusher.join(min(5.0, timeout))
    # Settle: anything still arriving (e.g. an SDK that under-reports its drops) is counted.
    deadline = time.monotonic() + 5.0
    last = snap["events"]
    while time.monotonic() < deadline:
        time.sleep(0.25)
        cur = sink_get(port, "/_count")["events"]
        if cur == last:
            break
        last = cur
    out.update(
        delivered=last,
        dropped=n - last,
        rejected_at_call=n - accepted,
        delivery_timed_out=bool(snap.get("timed_out")),
        sdk_stats=adapter.stats(),
    )
    return out


def phase_memory(adapter: Adapter, n: int) -> dict[str, Any]:
    """RSS growth per queued event with the data plane down (nothing drains)."""
    props = make_properties
    uid = user_id
    track = adapter.track
    for i in range(200):  # start the worker and let it hit the closed port
        track(uid(i), props(i))
    time.sleep(0.3)
    gc.collect()
    rss0 = rss_bytes()
    depth0 = adapter.queue_depth()
    accepted = 0
    t0 = time.perf_counter()
    for i in range(n):
        if track(uid(i), props(i)):
            accepted += 1
    calls_s = time.perf_counter() - t0
    gc.collect()
    rss1 = rss_bytes()
    depth1 = adapter.queue_depth()
    return {
        "events": n,
        "accepted": accepted,
        "calls_s": calls_s,
        "rss_before": rss0,
        "rss_after": rss1,
        "peak_rss": peak_rss_bytes(),
        "bytes_per_event": (rss1 - rss0) / accepted if accepted else math.nan,
        "queue_depth_before": depth0,
        "queue_depth_after": depth1,
        "sdk_stats": adapter.stats(),
    }


def phase_sustained(adapter: Adapter, port: int, n: int, timeout: float) -> dict[str, Any]:
    """A producer loop doing a little work per event (``json.loads`` of a ~600-byte line,
    then the call), as a backfill script does; delivered events/s and drops."""
    sink_get(port, "/_reset")
    lines = [backfill_line(i) for i in range(1024)]
    loads = json.loads
    track = adapter.track
    accepted = 0
    cpu0 = time.process_time()
    t_first = time.monotonic_ns()
    for i in range(n):
        record = loads(lines[i & 1023])
        if track(record["user_id"], record["properties"]):
            accepted += 1
    loop_s = (time.monotonic_ns() - t_first) / 1e9
    flusher = adapter.flush_async(timeout)
    snap = sink_wait(port, accepted, timeout)
    flusher.join(min(5.0, timeout))
    cpu1 = time.process_time()
    last = sink_get(port, "/_count")
    delivered = last["events"]
    t_end = last["last_ns"] if delivered else time.monotonic_ns()
    total_s = (t_end - t_first) / 1e9
    return {
        "events": n,
        "accepted": accepted,
        "delivered": delivered,
        "dropped": n - delivered,
        "dropped_pct": 100.0 * (n - delivered) / n,
        "loop_s": loop_s,
        "total_s": total_s,
        "sustained_events_per_s": delivered / total_s if total_s > 0 else math.nan,
        "cpu_ms_per_1000": (cpu1 - cpu0) * 1e6 / n,
        "delivery_timed_out": bool(snap.get("timed_out")),
        "line_bytes": len(lines[0]),
        "sdk_stats": adapter.stats(),
    }


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the adapter for the phase and run it."""
    pinned = pin_to_cpu(args.cpu) + renice(args.nice)
    if args.cpus:  # the sustained phase "on both cores": any of these
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
        pinned = f"cpus {args.cpus}" + renice(0)
    # A handler on the root logger: SDK warnings ("queue is full", retries) are not printed
    # by logging's last-resort handler, as in an application that configured logging.
    logging.getLogger().addHandler(logging.NullHandler())
    mode = {"delivery": "delivery", "burst": "burst", "memory": "down",
            "sustained": f"sustained-{args.queue}"}[args.phase]
    port = closed_port() if mode == "down" else args.port
    url = f"http://127.0.0.1:{port}"
    adapter = FACTORIES[args.sdk](url, mode, args.events)
    result: dict[str, Any] = {
        "sdk": adapter.name,
        "version": adapter.version,
        "phase": args.phase,
        "settings": adapter.settings,
        "pinned": pinned,
        "python": sys.version.split()[0],
    }
    if args.phase == "delivery":
        result.update(phase_delivery(adapter, args.port, args.events, args.timeout))
    elif args.phase == "burst":
        result.update(phase_burst(adapter, args.port, args.events, args.timeout))
    elif args.phase == "sustained":
        result.update(phase_sustained(adapter, args.port, args.events, args.timeout))
    else:
        result.update(phase_memory(adapter, args.events))
    return result


def main() -> None:
    """Parse arguments, run, print ``RESULT {json}``, exit at once."""
    parser = argparse.ArgumentParser(description="one benchmark phase for one SDK")
    parser.add_argument("--sdk", required=True, choices=sorted(FACTORIES))
    parser.add_argument("--phase", required=True,
                        choices=["delivery", "burst", "memory", "sustained"])
    parser.add_argument("--queue", default="default", choices=["default", "block", "unbounded"],
                        help="sustained: default settings, on_full='block', or a huge queue")
    parser.add_argument("--cpus", default="", help="sustained: run on these cpus (e.g. 0,1)")
    parser.add_argument("--port", type=int, default=0, help="the sink's port")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--nice", type=int, default=0, help="nice increment (e.g. -10)")
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=120.0, help="bound on every wait")
    args = parser.parse_args()
    code = 0
    try:
        result = run(args)
        sys.stdout.write("RESULT " + json.dumps(result, default=str) + "\n")
    except Exception:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
