"""A FastAPI app without a lifespan hook that tracks one event per request (for uvicorn).

The client is built at import, on the main thread of each worker.
"""

from __future__ import annotations

import asyncio
import os

from fastapi import FastAPI

from tests.apps.common import held_client

client = held_client()
app = FastAPI()


@app.get("/track/{seq}")
async def track(seq: int) -> dict[str, object]:
    """Track one event; say whether it was accepted and which worker took it."""
    ok, _ = client.track("web-user", "Request", {"seq": seq})
    return {"ok": ok, "pid": os.getpid()}


@app.get("/slow/{seq}")
async def slow(seq: int) -> dict[str, object]:
    """Say ``in-flight`` on stdout, take a moment (SIGTERM comes meanwhile), then track."""
    print("in-flight", seq, flush=True)
    await asyncio.sleep(0.5)
    ok, _ = client.track("web-user", "Slow Request", {"seq": seq})
    return {"ok": ok, "pid": os.getpid()}


print("app-ready", os.getpid(), flush=True)
