"""``rudder-analytics demo``: a local data plane, one event of every type sent from
several threads through a background Client, and what arrived (the main job).

``--keep-running`` leaves the local data plane up afterwards, until Ctrl-C, so its
web page (``watch events at http://127.0.0.1:PORT/``) can be looked at and more
events sent to it.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Tuple

from .common import EXIT_FAILED, EXIT_OK, error
from .waiting import WaitNotices, run_watched

__all__ = ["DEMO_WRITE_KEY", "run_demo"]

DEMO_WRITE_KEY = "demo-write-key"


def _demo_calls(client: Any) -> List[Tuple[str, Callable[[], Any]]]:
    """One call of every type, as a reader of the docs would write them."""
    return [
        ("identify", lambda: client.identify(
            user_id="demo-user-1", traits={"email": "ada@example.com", "plan": "pro"})),
        ("track", lambda: client.track(
            user_id="demo-user-1", event="Order Completed",
            properties={"order_id": "o-1001", "revenue": 9.95, "currency": "USD"})),
        ("page", lambda: client.page(
            user_id="demo-user-1", category="Docs", name="Pricing",
            properties={"url": "https://example.com/pricing"})),
        ("screen", lambda: client.screen(
            user_id="demo-user-1", name="Home", properties={"variant": "b"})),
        ("group", lambda: client.group(
            user_id="demo-user-1", group_id="acme", traits={"name": "Acme", "employees": 42})),
        ("alias", lambda: client.alias(previous_id="anon-7f3a", user_id="demo-user-1")),
    ]


def demo_line(event: Mapping[str, Any], format_event: Callable[[Any], str]) -> str:
    """The dev server's console line, plus the fields that tell the call types apart."""
    extras = []
    for key in ("groupId", "previousId"):
        if key in event:
            extras.append(f"{key}={event[key]}")
    for key in ("properties", "traits"):
        value = event.get(key)
        if value:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            extras.append(text if len(text) <= 60 else text[:59] + "\u2026")
    line = format_event(dict(event))
    return f"{line:<66} {' '.join(extras)}".rstrip() if extras else line


class _Calls:
    """The six calls, each from its own thread; what they returned."""

    def __init__(self, client: Any) -> None:
        self.sent: Dict[str, str] = {}
        self.errors: List[str] = []
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._call, args=pair, name=f"demo-{pair[0]}")
                        for pair in _demo_calls(client)]

    def _call(self, kind: str, fn: Callable[[], Any]) -> None:
        try:
            ok, message = fn()
        except Exception as exc:  # shown, and the demo fails
            with self._lock:
                self.errors.append(f"{kind}: {exc}")
            return
        with self._lock:
            if ok:
                self.sent[message["messageId"]] = kind
            else:
                self.errors.append(f"{kind}: not queued")

    def run(self, timeout: float) -> None:
        for thread in self.threads:
            thread.start()
        for thread in self.threads:
            thread.join(timeout)


def _show(server: Any, as_json: bool) -> List[Dict[str, Any]]:
    """Print what the data plane stored; return it."""
    from ..devserver.console import format_event

    stored: List[Dict[str, Any]] = server.events()
    print(f"\nthe data plane stored {len(stored)} events:")
    for event in stored:
        print(json.dumps(event, ensure_ascii=False) if as_json
              else f"  {demo_line(event, format_event)}")
    return stored


def _send_all(server: Any, args: argparse.Namespace) -> int:
    """The demo proper, against a started server; its exit status."""
    from ..client import Client

    client = Client(DEMO_WRITE_KEY, server.url, upload_interval=0.05, atexit=False,
                    retry_base_delay=0.05, retry_max_delay=0.5)
    calls = _Calls(client)
    calls.run(args.timeout)
    print(f"sent {len(calls.sent)} events from {len(calls.threads)} threads through a "
          "background Client; flushing...")
    notices = WaitNotices(client, lambda text: print(f"demo: {text}", file=sys.stderr))
    flushed = run_watched(lambda: client.flush(timeout=args.timeout), notices)
    server.wait_for_events(len(calls.sent), timeout=args.timeout)
    stored = _show(server, args.json)
    stats = client.stats()
    client.shutdown(timeout=args.timeout)
    print(f"\nclient stats: enqueued={stats['enqueued']}, delivered={stats['delivered']}, "
          f"dropped={stats['dropped_total']}, requests={stats['requests']}, "
          f"retries={stats['retries']}, bytes_sent={stats['bytes_sent']}")
    for text in calls.errors:
        error("demo", text)
    arrived = {event.get("messageId") for event in stored}
    missing = sorted(kind for mid, kind in calls.sent.items() if mid not in arrived)
    if flushed and not calls.errors and not missing and len(calls.sent) == len(calls.threads):
        print(f"all {len(calls.sent)} events arrived")
        return EXIT_OK
    if missing:
        error("demo", f"not stored: {', '.join(missing)}")
    return EXIT_FAILED


def _keep_running(server: Any) -> None:
    """Wait for Ctrl-C (the local data plane keeps answering meanwhile)."""
    forever = threading.Event()
    try:  # the prompt is inside: a Ctrl-C right after it is still this wait's
        print(f"the local data plane keeps running at {server.url} "
              f"(write key {DEMO_WRITE_KEY}); press Ctrl-C to stop", flush=True)
        while not forever.wait(1.0):
            pass
    except KeyboardInterrupt:
        print("stopped")


def run_demo(args: argparse.Namespace) -> int:
    """Local data plane + background Client + one event of each type from six threads."""
    from ..devserver import DevServer

    server = DevServer(write_keys=(DEMO_WRITE_KEY,))
    try:
        server.start()
    except OSError as exc:
        error("demo", f"cannot start the local data plane: {exc}")
        return EXIT_FAILED
    try:
        print(f"local data plane listening on {server.url} (write key {DEMO_WRITE_KEY})")
        print(f"watch events at {server.url}/", flush=True)
        status = _send_all(server, args)
        if args.keep_running:
            _keep_running(server)
        return status
    finally:
        server.close()
