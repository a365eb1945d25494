"""A Flask app that tracks sign-ups and orders.

One :class:`~rudder_analytics.Client` per process, built when the app is created.
Event calls only validate and enqueue (microseconds); a background thread delivers,
so request latency never depends on the data plane. The SDK delivers what is still
queued when the process exits.

Run it against the local data plane::

    rudder-analytics dev-server --port 8080 &
    export RUDDER_WRITE_KEY=test-write-key RUDDER_DATA_PLANE_URL=http://127.0.0.1:8080
    flask --app examples/flask_app.py run
    curl -X POST localhost:5000/signup -H 'Content-Type: application/json' \\
         -d '{"user_id": "u1", "email": "ada@example.com", "plan": "pro"}'

Under gunicorn, see the README ("Web servers") for ``--preload`` and workers.
"""

from __future__ import annotations

from typing import Any, Optional

from flask import Flask, jsonify, request

from rudder_analytics import Client


def create_app(analytics: Optional[Client] = None) -> Flask:
    """The app; ``analytics`` defaults to a Client configured from the environment."""
    app = Flask(__name__)
    client = analytics if analytics is not None else Client()
    app.extensions["rudder_analytics"] = client

    def context() -> dict[str, Any]:
        return {"ip": request.remote_addr, "userAgent": request.headers.get("User-Agent", "")}

    @app.post("/signup")
    def signup() -> Any:
        data = request.get_json(force=True)
        user_id = str(data["user_id"])
        client.identify(user_id=user_id, traits={"email": data["email"]}, context=context())
        client.track(user_id=user_id, event="Signed Up",
                     properties={"plan": data.get("plan", "free")}, context=context())
        return jsonify(ok=True), 201

    @app.post("/orders")
    def create_order() -> Any:
        data = request.get_json(force=True)
        client.track(user_id=str(data["user_id"]), event="Order Completed",
                     properties={"order_id": data["order_id"], "revenue": data["revenue"],
                                 "currency": data.get("currency", "USD")},
                     context=context())
        return jsonify(order_id=data["order_id"]), 201

    return app


if __name__ == "__main__":
    create_app().run(port=5000)
