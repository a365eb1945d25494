"""A Flask app that tracks sign-ups and orders with the ``RudderAnalytics`` extension.

The extension builds one :class:`~rudder_analytics.Client` per app (from ``app.config``
or the environment), gives each request the visitor's anonymous id (the JavaScript
SDK's ``rl_anonymous_id`` cookie, or a new id it sets) and their context (ip, user
agent, page), and shuts the client down, delivering what is queued, when the process
exits. Event calls only validate and enqueue: a request never waits for the data plane.

Run it against the local data plane::

    rudder-analytics dev-server --port 8080 &
    export RUDDER_WRITE_KEY=test-write-key RUDDER_DATA_PLANE_URL=http://127.0.0.1:8080
    flask --app examples/flask_app.py run
    curl -X POST localhost:5000/signup -H 'Content-Type: application/json' \\
         -d '{"user_id": "u1", "email": "ada@example.com", "plan": "pro"}'

Or under gunicorn (each worker delivers its queue when it exits)::

    gunicorn --workers 2 --chdir examples 'flask_app:create_app()'
"""

from __future__ import annotations

from typing import Any, Optional

from flask import Flask, g, jsonify, request

from rudder_analytics import Client
from rudder_analytics.integrations.flask import RudderAnalytics, identify, track


def create_app(analytics: Optional[Client] = None) -> Flask:
    """The app; ``analytics`` defaults to a Client configured from the environment."""
    app = Flask(__name__)
    RudderAnalytics(app, client=analytics)

    @app.post("/signup")
    def signup() -> Any:
        data = request.get_json(force=True)
        g.rudder_user_id = str(data["user_id"])  # the signed-in user, from now on
        identify({"email": data["email"]})      # ties the visitor's anonymous id to them
        track("Signed Up", {"plan": data.get("plan", "free")})
        return jsonify(ok=True), 201

    @app.post("/orders")
    def create_order() -> Any:
        data = request.get_json(force=True)
        track("Order Completed", {"order_id": data["order_id"], "revenue": data["revenue"],
                                  "currency": data.get("currency", "USD")},
              user_id=str(data["user_id"]))
        return jsonify(order_id=data["order_id"]), 201

    return app


if __name__ == "__main__":
    create_app().run(port=5000)
