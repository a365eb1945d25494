"""A local stand-in for the RudderStack data plane (rudder-server's gateway).

Standard library only. It answers the ingestion routes the way rudder-server v1.83 does
(status codes, bodies and headers; see ``docs/dataplane-protocol.md``, "Protocol spec for
a faithful stand-in server", rules 1-13 and 15), stores accepted events in SQLite and can
misbehave on purpose for tests.

From Python::

    from rudder_analytics.devserver import DevServer

    with DevServer(write_keys=("test-write-key",)) as server:
        ...  # point the SDK at server.url
        assert server.wait_for_events(3)
        server.events(type="track", user_id="u1")
        server.fail_next(2, status=503, retry_after=1)

From a shell: ``rudder-analytics dev-server`` or ``python -m rudder_analytics.devserver``
(``--help`` lists the options).

Routes (as rudder-server)
-------------------------
* ``POST /v1/batch``, ``/v1/{track,identify,page,screen,group,alias,merge,audiencelist}``
  with HTTP Basic auth (username = write key, password ignored).
* ``GET /health`` and ``GET /``: the liveness JSON (``GET /`` with ``Accept: text/html``,
  i.e. from a browser: the live page of arriving events and rejected requests).
* Anything else: ``404 page not found``; a wrong method: 405 with an empty body.
* ``/v1/import``, webhooks, beacon and pixel routes are not implemented (404).

Inspection and control API (NOT part of rudder-server; for tests)
-----------------------------------------------------------------
Under ``/_dev/``, which cannot clash with a rudder-server route. JSON in and out. These
calls are not recorded in the request log and faults never apply to them.

* ``GET /_dev/events?type=&user_id=&anonymous_id=&message_id=&event=&write_key=&limit=``:
  stored events (as enriched by the server), oldest first.
* ``GET /_dev/jobs?...``: the same as gateway job records
  ``{"batch": [event], "requestIP", "writeKey", "receivedAt"}``.
* ``GET /_dev/count?...``: ``{"count": N}``.
* ``GET /_dev/wait?n=N&timeout=S``: waits until at least N events are stored;
  ``{"ok": bool, "count": N}``.
* ``GET /_dev/requests?limit=``: the request log (method, path, query, headers, status,
  answered, body as text, raw_size, received_at, fault, events, client).
* ``POST /_dev/reset``: clears events, the request log, the rejections, the fault plan
  and the rate limit.
* ``GET /_dev/faults``: the current plan. ``DELETE /_dev/faults``: clears it.
* ``POST /_dev/faults``: one step or a list of steps, applied in order, e.g.
  ``[{"action": "fail_next", "n": 3, "status": 503, "retry_after": 2},
  {"action": "drop_next", "n": 1}]``. Actions and their fields:
  ``fail_next`` (n, status, retry_after, body), ``fail_fraction`` (p, status,
  retry_after, seed), ``latency`` (seconds), ``drop_next`` (n), ``store_then_drop_next``
  (n), ``hang_next`` (n, seconds), ``clear``.
* ``GET /_dev/rejections?limit=``: requests answered with an error or not answered.
* ``GET /_dev/live``: Server-Sent Events, one message per stored event or rejected
  request (the live page's feed). ``GET /_dev/web/``: the page and its files.
* ``GET /_dev/config``: write keys and limits. ``GET /_dev/``: this list.

Faults apply to ingestion POSTs (``/v1/...``) only, in the order they were queued:
``fail`` answers the status without storing, ``drop`` closes the connection without
reading or answering (the client sees a reset), ``store_then_drop`` stores the events and
then closes without answering (the answer is lost), ``hang`` reads the request and then
waits (until the time is up or the server stops) and closes without storing.
"""

from __future__ import annotations

from .faults import Fault
from .protocol import DEFAULT_MAX_REQUEST_BYTES, rudder_id
from .server import DEFAULT_WRITE_KEY, DevServer, Headers, RequestRecord

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "DEFAULT_WRITE_KEY",
    "DevServer",
    "Fault",
    "Headers",
    "RequestRecord",
    "rudder_id",
]
