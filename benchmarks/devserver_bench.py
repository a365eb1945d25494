"""How many events per second the local stand-in data plane absorbs, in batches of 100.

    python benchmarks/devserver_bench.py [--seconds 5] [--connections 1 4]

The server (``rudder_analytics.devserver.DevServer``, in-memory SQLite, console off) runs
in this process; the load comes from a separate client process posting one pre-built
batch of 100 events in a tight loop over keep-alive connections. When
``os.sched_setaffinity`` is available and there are two CPUs, the server process is
pinned to one CPU and the client process to another, so the figure is "one core of
server". Every event counted is one the server validated, enriched, stored in SQLite and
acknowledged with 200; the count comes from the server's store, not the client.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BATCH_SIZE = 100
WRITE_KEY = "bench-write-key"


def pin(cpu: Optional[int], pid: int = 0) -> str:
    """Pin process ``pid`` (0: this one) to ``cpu`` if the platform allows; say what happened."""
    if cpu is None:
        return "not pinned"
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity on this platform)"
    cpus = os.cpu_count() or 1
    if cpus < 2 or cpu >= cpus:
        return f"not pinned (cpu {cpu} not available; {cpus} CPU(s))"
    try:
        os.sched_setaffinity(pid, {cpu})
    except OSError as exc:
        return f"not pinned ({exc})"
    return f"pinned to cpu {cpu}"


def sample_body(n: int = BATCH_SIZE) -> bytes:
    """A realistic SDK batch body: track events with context, properties and timestamps."""
    batch: List[Dict[str, Any]] = []
    for i in range(n):
        batch.append(
            {
                "type": "track",
                "event": "Order Completed",
                "userId": f"user-{i % 17}",
                "anonymousId": str(uuid.uuid4()),
                "messageId": str(uuid.uuid4()),
                "originalTimestamp": "2026-08-19T12:00:00.000Z",
                "sentAt": "2026-08-19T12:00:01.000Z",
                "channel": "server",
                "context": {"library": {"name": "rudder-analytics-python", "version": "3.0.0"}},
                "properties": {
                    "order_id": f"o-{i}",
                    "revenue": 42.5,
                    "currency": "EUR",
                    "products": [{"sku": "sku-1", "quantity": 2, "price": 21.25}],
                },
                "integrations": {"All": True},
            }
        )
    return json.dumps({"batch": batch, "sentAt": "2026-08-19T12:00:01.000Z"}).encode()


def run_client(url: str, seconds: float, connections: int, gzipped: bool) -> None:
    """Client process: post the batch as fast as answers come back; print a JSON line."""
    parts = urlsplit(url)
    raw = sample_body()
    body = gzip.compress(raw) if gzipped else raw
    import base64

    headers = {
        "Content-Type": "application/json",
        "Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode(),
    }
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    counts: List[Tuple[int, int]] = []
    started = time.monotonic()
    deadline = started + seconds

    def loop() -> None:
        ok = bad = 0
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        while time.monotonic() < deadline:
            conn.request("POST", "/v1/batch", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                ok += 1
            else:
                bad += 1
        conn.close()
        counts.append((ok, bad))

    threads = [threading.Thread(target=loop) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "ok_requests": sum(c[0] for c in counts),
                "failed_requests": sum(c[1] for c in counts),
                "body_bytes": len(body),
                "raw_bytes": len(raw),
            }
        ),
        flush=True,
    )


def measure(
    seconds: float, connections: int, gzipped: bool, cpus: Tuple[Optional[int], Optional[int]]
) -> Dict[str, Any]:
    """Start a DevServer here, load it from a client process, return the figures."""
    from rudder_analytics.devserver import DevServer

    with DevServer(write_keys=(WRITE_KEY,)) as server:
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "--client",
            server.url,
            "--seconds",
            str(seconds),
            "--connections",
            str(connections),
        ]
        if not gzipped:
            command.append("--plain")
        cpu_before = time.process_time()
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        # The child inherits this process's affinity (the server's CPU), so it is moved to
        # its own CPU from here, by pid.
        client_pinned = pin(cpus[1], proc.pid)
        stdout, _ = proc.communicate(timeout=seconds + 60)
        cpu_used = time.process_time() - cpu_before
        if proc.returncode != 0:
            raise RuntimeError(f"client process failed with status {proc.returncode}")
        client = json.loads(stdout.strip().splitlines()[-1])
        # The load lasted the client's loop; the server was idle while the client started.
        elapsed = float(client["seconds"])
        stored = server.count()
    return {
        "connections": connections,
        "gzip": gzipped,
        "events": stored,
        "seconds": elapsed,
        "events_per_s": stored / elapsed,
        "requests_per_s": client["ok_requests"] / elapsed,
        "failed": client["failed_requests"],
        "server_cpu": cpu_used / elapsed,
        "events_per_cpu_s": stored / cpu_used if cpu_used > 0 else float("nan"),
        "body_bytes": client["body_bytes"],
        "raw_bytes": client["raw_bytes"],
        "client_pinned": client_pinned,
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="load duration per row")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--no-pin", action="store_true", help="do not pin either process")
    parser.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.client:
        run_client(args.client, args.seconds, args.connections[0], not args.plain)
        return 0

    cpus: Tuple[Optional[int], Optional[int]] = (
        (None, None) if args.no_pin else (args.server_cpu, args.client_cpu)
    )
    server_pinned = pin(cpus[0])
    if server_pinned.startswith("not"):
        cpus = (None, None)
    rows = []
    for gzipped in (True, False):
        for connections in args.connections:
            rows.append(measure(args.seconds, connections, gzipped, cpus))

    print(f"devserver throughput, batches of {BATCH_SIZE} events, {args.seconds:g} s per row")
    print(f"server process: {server_pinned}; client process: {rows[0]['client_pinned']}")
    print(f"body: {rows[0]['raw_bytes']:,} bytes JSON, {rows[0]['body_bytes']:,} bytes gzipped")
    print()
    header = (
        f"{'body':<6} {'conns':>5} {'events/s':>10} {'requests/s':>11} {'server CPU':>11}"
        f" {'events/CPU-s':>13} {'non-200':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{'gzip' if row['gzip'] else 'plain':<6} {row['connections']:>5} "
            f"{row['events_per_s']:>10,.0f} {row['requests_per_s']:>11,.0f} "
            f"{row['server_cpu']:>11.0%} {row['events_per_cpu_s']:>13,.0f} {row['failed']:>8}"
        )
    best = max(row["events_per_s"] for row in rows)
    worst = min(row["events_per_s"] for row in rows)
    capacity = min(row["events_per_cpu_s"] for row in rows)
    print()
    print(
        f"absorbed {worst:,.0f} - {best:,.0f} events/s (wall clock, client-limited rows included)"
    )
    print(
        f"capacity of one server core: >= {capacity:,.0f} events/s"
        " (events stored per CPU-second of the server process)"
    )
    print("target: >= 20,000 events/s in batches of 100 on one core")
    print()
    print("events/s: events stored (and answered 200) per second of load;")
    print("server CPU: share of one core the server process used; 100% = saturated.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
