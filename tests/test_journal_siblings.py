"""Guarantee 3 (issue #12), with real processes: a journal whose owner was killed is
adopted by exactly one live client with the same write key and URL, never by one
with other credentials; its events are delivered once, with their messageIds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from rudder_analytics.devserver import DevServer

OWNER = r"""
import os, sys, threading
import rudder_analytics
from rudder_analytics.journal import writer
url, persist = sys.argv[1], sys.argv[2]
done = threading.Event()
writer.on_commit = lambda n: n >= 300 and done.set()
client = rudder_analytics.Client("key", url, persist_dir=persist, max_retries=100000,
                                 retry_deadline=3600, retry_base_delay=0.01,
                                 retry_max_delay=0.02, atexit=False)
for i in range(300):
    client.track("u", "e", message_id=f"dead-{i}")
done.wait(10)
print("committed", flush=True)
threading.Event().wait(60)
"""

SIBLING = r"""
import sys, time
import rudder_analytics
key, url, persist = sys.argv[1], sys.argv[2], sys.argv[3]
client = rudder_analytics.Client(key, url, persist_dir=persist, upload_interval=0.02)
client.track("u", "e", message_id=f"live-{key}-{sys.argv[4]}")
end = time.monotonic() + 2.5
while time.monotonic() < end:
    client.flush(1)
    time.sleep(0.05)
client.shutdown()
print(client.stats()["recovered"], flush=True)
"""


def test_dead_journal_adopted_by_exactly_one_sibling(tmp_path: Path) -> None:
    """Two siblings with the owner's credentials race for its journal: one adopts it
    all; a third with another key adopts nothing; each event arrives once."""
    persist = str(tmp_path)
    with DevServer(write_keys=["key", "other"]) as server:
        server.fail_fraction(1.0)
        owner = subprocess.Popen([sys.executable, "-c", OWNER, server.url, persist],
                                 stdout=subprocess.PIPE, text=True)
        assert owner.stdout is not None
        assert owner.stdout.readline().strip() == "committed"
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(10)
        server.clear_faults()
        runs = [("key", "1"), ("key", "2"), ("other", "3")]
        siblings = [subprocess.Popen([sys.executable, "-c", SIBLING, key, server.url, persist,
                                      tag], stdout=subprocess.PIPE, text=True)
                    for key, tag in runs]
        recovered = [int(p.communicate(timeout=30)[0].strip()) for p in siblings]
        ids = [e["messageId"] for e in server.events()]
    dead = [i for i in ids if i.startswith("dead-")]
    assert sorted(dead) == sorted(f"dead-{i}" for i in range(300))  # all, each once
    assert sorted(recovered[:2]) == [0, 300]
    assert recovered[2] == 0
    assert {"live-key-1", "live-key-2", "live-other-3"} <= set(ids)
    assert not list(tmp_path.rglob("seg-*.log"))
