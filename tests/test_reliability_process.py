"""Process life: interpreter exit, fork, multiprocessing, the gunicorn --preload pattern,
and memory during a long outage. Each scenario runs in a fresh interpreter.

The scripts print one JSON report on their last line; the test checks it against what the
local data plane (in this process, real HTTP over loopback) stored.
"""

from __future__ import annotations

import collections
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from rudder_analytics.devserver import DevServer
from tests.helpers_reliability import REPO, last_json_line, refused_url, run_script

WRITE_KEY = "test-write-key"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork and /proc are POSIX")


@pytest.fixture
def server() -> Iterator[DevServer]:
    """A local data plane for one test."""
    with DevServer(write_keys=(WRITE_KEY,)) as srv:
        yield srv


# --- interpreter exit ----------------------------------------------------------------------

EXIT_WITHOUT_FLUSH = """
import json, sys, threading
from rudder_analytics import Client

client = Client("test-write-key", sys.argv[1], upload_interval=30.0, upload_size=1000)
ids = [[] for _ in range(4)]

def produce(index):
    for seq in range(500):
        ok, message = client.track(f"exit-{index}", "Exit Event", {"seq": seq})
        assert ok
        ids[index].append(message["messageId"])

threads = [threading.Thread(target=produce, args=(i,)) for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"ids": [m for chunk in ids for m in chunk]}))
# no flush(), no shutdown(): the exit hook must deliver
"""


def test_normal_exit_without_flush_delivers_every_queued_event(server: DevServer) -> None:
    """Exiting without flush() delivers all 2,000 queued events (the exit hook does it)."""
    result = run_script(EXIT_WITHOUT_FLUSH, server.url, timeout=60)
    assert result.returncode == 0, result.stderr
    ids = last_json_line(result.stdout)["ids"]
    assert len(ids) == len(set(ids)) == 2000
    stored = collections.Counter(e["messageId"] for e in server.events())
    assert set(stored) == set(ids) and max(stored.values()) == 1
    # upload_interval is 30 s and batches hold 1,000: only the exit hook could send them
    assert "not delivered" not in result.stderr


DROPPED_CLIENT = """
import gc, json, sys
from rudder_analytics import Client

def handler():
    # a client built in a function and never shut down: the last reference goes here
    client = Client("test-write-key", sys.argv[1], upload_interval=30.0, upload_size=1000)
    return [client.track("dropped", "Dropped Client Event", {"i": i})[1]["messageId"]
            for i in range(300)]

ids = handler()
gc.collect()
print(json.dumps({"ids": ids}))
"""


def test_client_dropped_without_shutdown_still_delivers_at_exit(server: DevServer) -> None:
    """A client whose last reference is gone (never shut down) still delivers at exit."""
    result = run_script(DROPPED_CLIENT, server.url, timeout=60)
    assert result.returncode == 0, result.stderr
    ids = last_json_line(result.stdout)["ids"]
    assert {e["messageId"] for e in server.events()} == set(ids)
    assert server.count() == 300


TRACK_DURING_EXIT = """
import atexit, sys
from rudder_analytics import Client

client = Client("test-write-key", sys.argv[1], upload_interval=30.0)

def last_words():
    # runs at exit before the SDK's own hook (atexit is LIFO); the client's first events,
    # so its worker thread starts (or, on 3.12+, cannot start) during interpreter shutdown
    for i in range(20):
        assert client.track("at-exit", "Last Words", {"i": i})[0]

atexit.register(last_words)
"""


def test_events_tracked_in_an_atexit_handler_are_delivered(server: DevServer) -> None:
    """The first events of a client, tracked from a later atexit handler, still arrive."""
    result = run_script(TRACK_DURING_EXIT, server.url, timeout=60)
    assert result.returncode == 0, result.stderr
    assert server.count(user_id="at-exit") == 20
    assert "not delivered" not in result.stderr


EXIT_WITH_DATA_PLANE_DOWN = """
import json, logging, sys, time
from rudder_analytics import Client

if sys.argv[3] == "logging":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
client = Client("test-write-key", sys.argv[1], shutdown_timeout=float(sys.argv[2]),
                upload_interval=0.05, retry_base_delay=0.05, retry_max_delay=0.2)
for seq in range(1500):
    assert client.track("down", "Undeliverable", {"seq": seq})[0]
print(json.dumps({"main_done": time.monotonic()}))
"""


@pytest.mark.parametrize("outage", ["refused", "blackhole", "retry-after-60"])
@pytest.mark.parametrize("logs", ["plain", "logging"])
def test_exit_with_data_plane_down_is_bounded_and_reports_the_loss(
    request: pytest.FixtureRequest, blackhole: str, outage: str, logs: str
) -> None:
    """Data plane down (refusing, silent, or asking to retry in 60 s): exit takes at most
    shutdown_timeout + 1 s and reports that the 1,500 queued events were not delivered."""
    shutdown_timeout = 2.0
    if outage == "refused":
        url = refused_url()
    elif outage == "blackhole":
        url = blackhole
    else:
        server: DevServer = request.getfixturevalue("server")
        server.fail_fraction(1.0, status=429, retry_after=60)
        url = server.url
    result = run_script(EXIT_WITH_DATA_PLANE_DOWN, url, str(shutdown_timeout), logs, timeout=30)
    exited = time.monotonic()  # CLOCK_MONOTONIC is system-wide: comparable across processes
    assert result.returncode == 0, result.stderr
    main_done = last_json_line(result.stdout)["main_done"]
    assert exited - main_done <= shutdown_timeout + 1.0, exited - main_done
    if logs == "plain":  # no logging configured: one line on stderr
        assert "rudder_analytics: 1,500 event(s) not delivered at exit" in result.stderr
    else:  # logging configured: a WARNING through it instead
        assert "WARNING:rudder_analytics:" in result.stderr
        assert "1,500 event(s) not delivered" in result.stderr


# --- fork --------------------------------------------------------------------------------

FORK_STRESS = """
import json, os, signal, sys, threading, time
from rudder_analytics import Client

url, forks = sys.argv[1], int(sys.argv[2])
client = Client("test-write-key", url, upload_interval=0.05, upload_size=50,
                retry_base_delay=0.01, retry_max_delay=0.05, timeout=5.0)
stop = threading.Event()
parent_ids = [[] for _ in range(8)]
started = threading.Barrier(9)

def produce(index):
    started.wait()
    seq = 0
    while not stop.is_set():
        for _ in range(3):  # bursts keep the buffer and stats locks busy at fork time
            ok, message = client.track(f"parent-{index}", "Parent Event", {"seq": seq})
            if ok:
                parent_ids[index].append(message["messageId"])
            seq += 1
        stop.wait(0.01)  # pacing only: keeps the run at a few thousand events

threads = [threading.Thread(target=produce, args=(i,), daemon=True) for i in range(8)]
for t in threads:
    t.start()
started.wait()

children = {}
for k in range(forks):
    pid = os.fork()
    if pid == 0:  # the child: its own events, flushed, then a hard exit
        try:
            sent = [client.track(f"child-{k}", "Child Event", {"k": k, "i": i})[0]
                    for i in range(20)]
            ok = all(sent) and client.flush(timeout=20)
            os._exit(0 if ok else 3)
        except BaseException:
            os._exit(4)
    children[pid] = k
    stop.wait(0.02)  # forks spread over the producers' run

codes, hung = {}, []
deadline = time.monotonic() + 60
while children and time.monotonic() < deadline:
    for pid in list(children):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            codes[children.pop(pid)] = os.waitstatus_to_exitcode(status)
    if children:
        time.sleep(0.05)
for pid, k in children.items():  # still running after 60 s: deadlocked
    hung.append(k)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)

stop.set()
for t in threads:
    t.join(10)
flushed = client.flush(timeout=30)
client.shutdown(timeout=5)
print(json.dumps({"codes": codes, "hung": hung, "flushed": flushed,
                  "parent_ids": [m for chunk in parent_ids for m in chunk],
                  "stats": client.stats()}))
"""


@pytest.mark.slow
def test_fork_while_eight_threads_enqueue_fifty_times(server: DevServer) -> None:
    """50 forks during 8-thread enqueueing: no child hangs, each child's events arrive,
    and no parent event is sent twice (or by a child)."""
    forks = 50
    result = run_script(FORK_STRESS, server.url, str(forks), timeout=150)
    assert result.returncode == 0, result.stderr[-3000:]
    report = last_json_line(result.stdout)
    assert report["hung"] == [], f"children deadlocked: {report['hung']}"
    assert report["codes"] == {str(k): 0 for k in range(forks)}
    assert report["flushed"] is True, report["stats"]
    events = server.events()
    ids = collections.Counter(e["messageId"] for e in events)
    assert max(ids.values()) == 1, "an event was stored twice"
    parent = report["parent_ids"]
    assert len(parent) > 1000
    assert {e["messageId"] for e in events if e["userId"].startswith("parent-")} == set(parent)
    for k in range(forks):
        assert server.count(user_id=f"child-{k}") == 20, f"child {k} lost events"
    assert len(events) == len(parent) + 20 * forks


MULTIPROCESSING = """
import json, multiprocessing, sys
from rudder_analytics import Client

URL = sys.argv[1]
ctx = multiprocessing.get_context("fork")
OPTIONS = dict(upload_interval=0.05, retry_base_delay=0.01, retry_max_delay=0.05, timeout=5.0)

def own_client_task(k):
    # a client created in the child itself (the parent had none when it forked)
    own = Client("test-write-key", URL, **OPTIONS)
    for i in range(25):
        assert own.track(f"mp-own-{k}", "Own Client Event", {"i": i})[0]

own = [ctx.Process(target=own_client_task, args=(k,)) for k in range(2)]
for p in own:
    p.start()
for p in own:
    p.join(30)

client = Client("test-write-key", URL, **OPTIONS)
assert client.track("mp-parent", "Parent Event")[0]  # workers run in the parent at fork

def pool_task(k):
    for i in range(25):
        assert client.track(f"mp-pool-{k}", "Pool Event", {"i": i})[0]
    return True  # no flush: the worker's normal exit (pool.close + join) must deliver

def process_task(k):
    for i in range(25):
        assert client.track(f"mp-proc-{k}", "Process Event", {"i": i})[0]
    # no flush: multiprocessing ends the child with os._exit after its exit finalizers

pool = ctx.Pool(3)
results = pool.map(pool_task, range(12))
pool.close()
pool.join()
procs = [ctx.Process(target=process_task, args=(k,)) for k in range(4)]
for p in procs:
    p.start()
for p in procs:
    p.join(30)
codes = [p.exitcode for p in own + procs]
ok = client.flush(timeout=20)
print(json.dumps({"results": results, "codes": codes, "flushed": ok}))
"""


def test_multiprocessing_fork_children_deliver_their_events(server: DevServer) -> None:
    """multiprocessing (fork): Pool tasks and Process targets deliver without flush(),
    with the parent's client or one built in the child."""
    result = run_script(MULTIPROCESSING, server.url, timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    report = last_json_line(result.stdout)
    assert report["results"] == [True] * 12 and report["codes"] == [0] * 6
    assert report["flushed"] is True
    ids = collections.Counter(e["messageId"] for e in server.events())
    assert max(ids.values()) == 1
    for k in range(12):
        assert server.count(user_id=f"mp-pool-{k}") == 25, f"pool task {k} lost events"
    for k in range(4):
        assert server.count(user_id=f"mp-proc-{k}") == 25, f"process {k} lost events"
    for k in range(2):
        assert server.count(user_id=f"mp-own-{k}") == 25, f"own-client process {k} lost events"
    assert server.count(user_id="mp-parent") == 1


GUNICORN_PRELOAD = """
import json, os, sys
from rudder_analytics import Client

# --preload: the application module, and the client in it, load in the master.
client = Client("test-write-key", sys.argv[1], upload_interval=0.05,
                retry_base_delay=0.01, retry_max_delay=0.05, timeout=5.0)
master_ids = [client.track("master", "Master Event", {"i": i})[1]["messageId"]
              for i in range(300)]  # some still queued when the workers fork

workers = {}
for w in range(4):
    pid = os.fork()
    if pid == 0:
        # A worker serves requests, then leaves the way gunicorn's workers do:
        # sys.exit() from the arbiter's spawn_worker, so atexit hooks run.
        for i in range(150):
            client.track(f"worker-{w}", "Request Event", {"i": i})
        sys.exit(0)
    workers[pid] = w

codes = {}
for pid, w in workers.items():
    _, status = os.waitpid(pid, 0)
    codes[w] = os.waitstatus_to_exitcode(status)
print(json.dumps({"codes": codes, "master_ids": master_ids}))
# the master exits normally too: its exit hook delivers what it still has
"""


def test_gunicorn_preload_pattern_client_created_before_workers_fork(server: DevServer) -> None:
    """Client built in the master before forking: each worker sends its own events once."""
    result = run_script(GUNICORN_PRELOAD, server.url, timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    report = last_json_line(result.stdout)
    assert report["codes"] == {str(w): 0 for w in range(4)}
    ids = collections.Counter(e["messageId"] for e in server.events())
    assert max(ids.values()) == 1, "an event was stored twice"
    assert {e["messageId"] for e in server.events(user_id="master")} == set(report["master_ids"])
    for w in range(4):
        assert server.count(user_id=f"worker-{w}") == 150, f"worker {w} lost events"


# --- memory --------------------------------------------------------------------------------

MEMORY_DURING_OUTAGE = """
import json, sys
from rudder_analytics import Client

def rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024

url, bound, offered = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
client = Client("test-write-key", url, max_queue_bytes=bound, max_queue_size=10**7,
                upload_interval=0.05, retry_base_delay=0.05, retry_max_delay=0.2,
                max_retries=10**6, shutdown_timeout=1.0, atexit=False)
pad = "x" * 400
for i in range(200):  # warm up: workers started, allocator and caches primed
    client.track("warm", "Warm Up", {"i": i, "pad": pad})
base = peak = rss()
for i in range(offered):
    client.track("outage", "Outage Event", {"i": i, "pad": pad})
    if i % 500 == 0:
        peak = max(peak, rss())
peak = max(peak, rss())
during = client.stats()
client.shutdown(timeout=1.0)
print(json.dumps({"base": base, "peak": peak, "during": during, "after": client.stats(),
                  "offered": offered + 200}))
"""


@pytest.mark.slow
def test_memory_stays_bounded_during_a_long_outage() -> None:
    """Offering 8x the queue's byte bound during an outage: RSS grows by at most the bound
    plus 12 MiB, and every dropped event is counted by reason."""
    bound = 8 * 1024 * 1024
    offered = 150_000  # ~500 bytes each: ~75 MB offered against an 8 MiB queue
    result = run_script(MEMORY_DURING_OUTAGE, refused_url(), str(bound), str(offered),
                        timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    report = last_json_line(result.stdout)
    growth = report["peak"] - report["base"]
    assert growth <= bound + 12 * 1024 * 1024, f"RSS grew by {growth / 2**20:.1f} MiB"
    during, after = report["during"], report["after"]
    assert during["queue_bytes"] <= bound
    assert during["dropped"]["queue_full"] > offered // 2
    assert during["enqueued"] + during["dropped"]["queue_full"] == report["offered"]
    # Nothing was delivered; every event is accounted for under one reason or another.
    assert after["delivered"] == 0
    assert after["dropped_total"] == report["offered"]
    assert after["dropped"]["queue_full"] + after["dropped"]["shutdown"] + \
        after["dropped"]["retries_exhausted"] == report["offered"]


GUNICORN_APP = """
import json, os
from rudder_analytics import Client

# Built at import: with --preload that is in the master, before the workers fork.
client = Client("test-write-key", os.environ["RELIABILITY_DATA_PLANE"], upload_interval=0.05,
                retry_base_delay=0.01, retry_max_delay=0.05, timeout=5.0)
client.track("gunicorn-master", "Master Event")

def app(environ, start_response):
    ok, message = client.track("gunicorn-worker", "Request Event", {"pid": os.getpid()})
    body = json.dumps({"ok": ok, "id": message["messageId"], "pid": os.getpid()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
"""


@pytest.mark.slow
def test_real_gunicorn_preload_workers_deliver_their_events(
    server: DevServer, tmp_path: Path
) -> None:
    """Real gunicorn --preload, 3 sync workers (skipped without gunicorn): every request's
    event is stored exactly once, and the master's own event once."""
    pytest.importorskip("gunicorn")
    (tmp_path / "reliability_app.py").write_text(GUNICORN_APP)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    env = {**os.environ, "RELIABILITY_DATA_PLANE": server.url,
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--preload", "-w", "3", "-b", f"127.0.0.1:{port}",
         "--graceful-timeout", "20", "reliability_app:app"],
        cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        session = requests.Session()
        deadline = time.monotonic() + 30
        while True:  # wait until it serves
            try:
                session.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and proc.poll() is None, "gunicorn did not start"
                time.sleep(0.1)
        answers = [requests.get(f"http://127.0.0.1:{port}/", timeout=10).json()
                   for _ in range(90)]
    finally:
        proc.send_signal(signal.SIGTERM)  # graceful: workers exit normally, exit hooks run
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output.decode(errors="replace")[-3000:]
    assert all(a["ok"] for a in answers)
    ids = collections.Counter(e["messageId"] for e in server.events())
    assert max(ids.values()) == 1, "an event was stored twice"
    stored = {e["messageId"] for e in server.events(user_id="gunicorn-worker")}
    assert {a["id"] for a in answers} <= stored
    assert server.count(user_id="gunicorn-master") == 1
