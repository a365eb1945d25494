"""A Flask app that tracks one event per request (for gunicorn); the client is built at import."""

from __future__ import annotations

import os

from flask import Flask

from tests.apps.common import held_client

client = held_client()
app = Flask(__name__)


@app.get("/track/<int:seq>")
def track(seq: int) -> dict[str, object]:
    """Track one event; say whether it was accepted and which worker took it."""
    ok, _ = client.track("web-user", "Request", {"seq": seq})
    return {"ok": ok, "pid": os.getpid()}


print("app-ready", os.getpid(), flush=True)
