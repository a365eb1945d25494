"""One adapter per SDK: make a client for a benchmark mode and expose a uniform ``track``.

Modes:

* ``delivery`` -- healthy sink, the SDK's defaults except a queue large enough for the run.
* ``burst`` -- healthy sink, the SDK's defaults untouched (its own queue size).
* ``down`` -- data plane down (a closed port), a queue large enough for the run and retries
  long enough that nothing drains while the memory is measured.

Each SDK is imported only inside its own factory: each runs in its own virtual environment.
"""

from __future__ import annotations

import inspect
import threading
from importlib import metadata
from typing import Any, Callable

from payload import EVENT

WRITE_KEY = "bench-write-key"
LONG_RETRIES = 1_000_000  # with each SDK's exponential backoff: nothing drains in the run


class Adapter:
    """A client under test. ``track(user_id, properties)`` returns whether it was accepted."""

    def __init__(
        self,
        name: str,
        version: str,
        client: Any,
        track: Callable[[str, dict[str, Any]], bool],
        flush: Callable[[float], Any],
        queue_depth: Callable[[], int | None] = lambda: None,
        stats: Callable[[], dict[str, Any] | None] = lambda: None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.client = client
        self.track = track
        self._flush = flush
        self.queue_depth = queue_depth
        self.stats = stats
        self.settings = settings or {}

    def flush(self, timeout: float) -> bool:
        """Run the SDK's flush in a daemon thread and wait at most ``timeout`` seconds
        (rudder's and segment's ``flush()`` have no timeout of their own)."""
        thread = threading.Thread(target=self._flush, args=(timeout,), daemon=True)
        thread.start()
        thread.join(timeout)
        return not thread.is_alive()

    def flush_async(self, timeout: float) -> threading.Thread:
        """Start the SDK's flush in a daemon thread and return it."""
        thread = threading.Thread(target=self._flush, args=(timeout,), daemon=True)
        thread.start()
        return thread


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def _accepted_kwargs(func: Callable[..., Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """Keep only the keyword arguments ``func`` accepts (the API of ours may still move)."""
    params = inspect.signature(func).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(wanted)
    return {k: v for k, v in wanted.items() if k in params}


def _queue_settings(mode: str, n: int) -> dict[str, Any]:
    if mode in ("burst", "sustained-default", "sustained-block"):
        return {}  # the SDK's defaults
    return {"max_queue_size": max(2 * n, 20_000)}


def make_ours(url: str, mode: str, n: int) -> Adapter:
    """This repository's ``rudder_analytics``."""
    import rudder_analytics

    wanted = _queue_settings(mode, n)
    if wanted:
        wanted["max_queue_bytes"] = 1 << 30  # ours also bounds the queue in bytes
    if mode == "sustained-block":
        wanted["on_full"] = "block"
    if mode == "down":
        wanted.update(max_retries=LONG_RETRIES, retry_deadline=3600.0)
    kwargs = _accepted_kwargs(rudder_analytics.Client, wanted)
    client = rudder_analytics.Client(WRITE_KEY, url, **kwargs)
    ctrack = client.track

    def track(uid: str, props: dict[str, Any]) -> bool:
        return bool(ctrack(user_id=uid, event=EVENT, properties=props)[0])

    def stats() -> dict[str, Any] | None:
        return dict(client.stats())

    def depth() -> int | None:
        return int(client.stats().get("queue_depth", -1))

    try:
        import orjson  # noqa: F401

        json_lib = "orjson"
    except ImportError:
        json_lib = "stdlib json"
    return Adapter(
        "ours",
        _version("rudder-analytics"),
        client,
        track,
        lambda timeout: client.flush(timeout=timeout),
        depth,
        stats,
        {**kwargs, "json": json_lib},
    )


def _segment_shaped(name: str, dist: str, client_cls: Any, url: str, mode: str,
                    n: int) -> Adapter:
    """rudder-sdk-python and segment-analytics-python share Segment's client API."""
    kwargs = _queue_settings(mode, n)
    if mode == "down":
        kwargs["max_retries"] = LONG_RETRIES
    client = client_cls(WRITE_KEY, host=url, **kwargs)
    ctrack = client.track

    def track(uid: str, props: dict[str, Any]) -> bool:
        return bool(ctrack(user_id=uid, event=EVENT, properties=props)[0])

    return Adapter(
        name,
        _version(dist),
        client,
        track,
        lambda timeout: client.flush(),
        client.queue.qsize,
        settings=kwargs,
    )


def make_rudder(url: str, mode: str, n: int) -> Adapter:
    """rudder-sdk-python 2.x (imports as ``rudderstack.analytics``)."""
    from rudderstack.analytics import Client

    return _segment_shaped("rudder", "rudder-sdk-python", Client, url, mode, n)


def make_segment(url: str, mode: str, n: int) -> Adapter:
    """segment-analytics-python 2.x (imports as ``segment.analytics``)."""
    from segment.analytics import Client

    return _segment_shaped("segment", "segment-analytics-python", Client, url, mode, n)


def make_posthog(url: str, mode: str, n: int) -> Adapter:
    """posthog (``posthog.Posthog``); ``capture`` returns the event uuid, None when dropped."""
    from posthog import Posthog

    kwargs = _queue_settings(mode, n)
    if mode == "down":
        kwargs["max_retries"] = LONG_RETRIES
    client = Posthog(WRITE_KEY, host=url, **kwargs)
    capture = client.capture

    def track(uid: str, props: dict[str, Any]) -> bool:
        return capture(EVENT, distinct_id=uid, properties=props) is not None

    return Adapter(
        "posthog",
        _version("posthog"),
        client,
        track,
        lambda timeout: client.flush(timeout_seconds=timeout),
        client.queue.qsize,
        settings=kwargs,
    )


def make_null(url: str, mode: str, n: int) -> Adapter:
    """No SDK at all: the harness's own cost per call (loop, payload, timing)."""

    def track(uid: str, props: dict[str, Any]) -> bool:
        return True

    return Adapter("null", "-", None, track, lambda timeout: None)


FACTORIES: dict[str, Callable[[str, str, int], Adapter]] = {
    "ours": make_ours,
    "rudder": make_rudder,
    "segment": make_segment,
    "posthog": make_posthog,
    "null": make_null,
}
