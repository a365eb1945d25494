"""A plain script: queue events, say ``ready`` on stdout, then wait to be SIGTERMed.

``python sigterm_script.py held COUNT``: tracks COUNT events that stay queued, prints
``ready COUNT``, then waits (at most 30 s). ``python sigterm_script.py loop``: tracks
without end from the main thread (ordinary batching), printing ``progress N`` every
500 events, so that SIGTERM is likely to arrive while the main thread is inside the SDK.
"""

from __future__ import annotations

import sys
import threading

from tests.apps.common import held_client


def main() -> None:
    mode = sys.argv[1]
    if mode == "held":
        count = int(sys.argv[2])
        client = held_client()
        for seq in range(count):
            ok, _ = client.track("script-user", "Queued", {"seq": seq})
            assert ok
        print("ready", count, flush=True)
        threading.Event().wait(30)
        print("not signalled", flush=True)
        return
    client = held_client(upload_size=100, upload_bytes=500_000, upload_interval=0.05)
    for seq in range(1_000_000):
        ok, _ = client.track("loop-user", "Looped", {"seq": seq})
        assert ok
        if seq % 500 == 499:
            print("progress", seq + 1, flush=True)


if __name__ == "__main__":
    main()
