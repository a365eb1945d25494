"""A script that tracks events and flushes before it exits (cron jobs, batch jobs, CLIs).

Background delivery means a call returns before its event is sent. A long-running
server does not care; a script that exits right after its last call should
``flush()`` (or ``shutdown()``) so it knows the events were delivered. The SDK also
delivers at interpreter exit (within ``shutdown_timeout``), but only an explicit
flush gives you a result to act on: here, the exit status.

Run it against the local data plane::

    rudder-analytics dev-server --port 8080 &
    RUDDER_WRITE_KEY=test-write-key RUDDER_DATA_PLANE_URL=http://127.0.0.1:8080 \\
        python examples/flush_script.py
"""

from __future__ import annotations

import sys

import rudder_analytics

REPORTS = [
    ("u-1001", "weekly-usage", 42),
    ("u-1002", "weekly-usage", 7),
    ("u-1003", "invoice", 1),
]


def main() -> int:
    """Track one event per generated report, then flush; exit 1 if anything was lost."""
    # No settings needed here: the default client reads RUDDER_WRITE_KEY and
    # RUDDER_DATA_PLANE_URL from the environment on the first call.
    for user_id, report, pages in REPORTS:
        rudder_analytics.track(
            user_id=user_id,
            event="Report Generated",
            properties={"report": report, "pages": pages},
        )
    rudder_analytics.identify(user_id="u-1001", traits={"reports_enabled": True})

    delivered = rudder_analytics.flush(timeout=30)  # True once every event was delivered
    stats = rudder_analytics.stats()
    rudder_analytics.shutdown()
    if stats is not None:
        print(f"delivered {stats['delivered']} events, dropped {stats['dropped_total']}")
    return 0 if delivered else 1


if __name__ == "__main__":
    sys.exit(main())
