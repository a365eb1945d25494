"""``integrations.celery.install()``: prefork pool processes deliver before they exit.

A real ``celery worker --pool=prefork`` runs in a subprocess, with kombu's filesystem
broker and a file result backend (both work across processes, no server needed). Its
tasks track through the module-level client, configured so that nothing is sent before
exit (an hour's upload interval). The test waits for the results, checks that nothing
was delivered yet, stops the worker with SIGTERM (Celery's warm shutdown) and counts
what reached the DevServer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rudder_analytics.devserver import DevServer

celery = pytest.importorskip("celery")

WRITE_KEY = "test-write-key"
TASKS = 6

TASKS_MODULE = textwrap.dedent('''
    import os
    from celery import Celery
    import rudder_analytics
    from rudder_analytics.integrations import celery as rudder_celery

    from celeryconf import configure

    app = configure(Celery("tasks"))
    rudder_analytics.upload_interval = 3600   # nothing is sent before exit
    rudder_analytics.upload_size = 1000
    if os.environ.get("TEST_INSTALL") == "1":
        rudder_celery.install()

    @app.task(name="tasks.work")
    def work(n):
        rudder_analytics.track(user_id=f"u{n}", event="Task Done",
                               properties={"n": n, "pid": os.getpid()})
        return os.getpid()
''')

CONF_MODULE = textwrap.dedent('''
    import os

    def configure(app):
        base = os.environ["TEST_CELERY_DIR"]
        queue = os.path.join(base, "queue")
        os.makedirs(queue, exist_ok=True)
        os.makedirs(os.path.join(base, "results"), exist_ok=True)
        app.conf.update(
            broker_url="filesystem://",
            broker_transport_options={"data_folder_in": queue, "data_folder_out": queue,
                                      "store_processed": False, "polling_interval": 0.05,
                                      "control_folder": os.path.join(base, "control")},
            result_backend="file://" + os.path.join(base, "results"),
            worker_enable_remote_control=False,
            broker_connection_retry_on_startup=True,
        )
        return app
''')


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The tasks module and a producer app sharing its broker and result backend."""
    (tmp_path / "tasks.py").write_text(TASKS_MODULE)
    (tmp_path / "celeryconf.py").write_text(CONF_MODULE)
    monkeypatch.setenv("TEST_CELERY_DIR", str(tmp_path))
    monkeypatch.syspath_prepend(str(tmp_path))
    import celeryconf  # type: ignore[import-not-found]

    producer = celeryconf.configure(celery.Celery("producer"))
    yield producer
    sys.modules.pop("celeryconf", None)


@pytest.fixture
def server() -> Iterator[DevServer]:
    """A local data plane."""
    with DevServer(write_keys=(WRITE_KEY,)) as dev:
        yield dev


def _run_worker(project: Any, server: DevServer, tmp_path: Path, install: bool
                ) -> tuple[set[int], int, str]:
    """Run TASKS tasks on a prefork worker, then SIGTERM it; (task pids, worker pid, log)."""
    env = {**os.environ, "RUDDER_WRITE_KEY": WRITE_KEY, "RUDDER_DATA_PLANE_URL": server.url,
           "TEST_INSTALL": "1" if install else "0"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool=prefork",
         "--concurrency=2", "--without-mingle", "--without-gossip", "--without-heartbeat",
         "--loglevel=WARNING"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        results = [project.send_task("tasks.work", args=[n]) for n in range(TASKS)]
        pids = {result.get(timeout=60, interval=0.05) for result in results}
        assert server.count(event="Task Done") == 0  # all still queued in the children
        worker.send_signal(signal.SIGTERM)  # warm shutdown: the pool processes exit
        output, _ = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == 0, output
    return pids, worker.pid, output


def test_prefork_children_deliver_before_exit(project: Any, server: DevServer,
                                              tmp_path: Path) -> None:
    """With install(), every event tracked in prefork pool processes reaches the data plane."""
    pids, worker_pid, output = _run_worker(project, server, tmp_path, install=True)
    events = server.events(event="Task Done")
    assert sorted(e["properties"]["n"] for e in events) == list(range(TASKS)), output
    assert {e["properties"]["pid"] for e in events} == pids
    assert worker_pid not in pids  # tracked in the pool processes, not the main one


def test_without_install_children_lose_their_events(project: Any, server: DevServer,
                                                    tmp_path: Path) -> None:
    """The control: without install(), pool processes exit with os._exit and send nothing."""
    _run_worker(project, server, tmp_path, install=False)
    assert server.count(event="Task Done") == 0


def test_install_with_a_client_connects_once(server: DevServer) -> None:
    """install(client) twice connects one handler; Celery's shutdown signal delivers."""
    from celery.signals import worker_process_shutdown, worker_shutdown

    from rudder_analytics import Client
    from rudder_analytics.integrations import celery as rudder_celery

    client = Client(WRITE_KEY, server.url, upload_interval=3600, upload_size=1000,
                    atexit=False)
    before = len(worker_process_shutdown.receivers)
    try:
        rudder_celery.install(client, timeout=10)
        rudder_celery.install(client)
        assert len(worker_process_shutdown.receivers) == before + 1
        client.track(user_id="u1", event="Queued")
        assert server.count() == 0
        worker_shutdown.send(sender=None)  # the main process's end of a warm shutdown
        assert client.closed and server.count(event="Queued") == 1
    finally:
        rudder_celery.uninstall()
        client.shutdown(timeout=1)
    assert len(worker_process_shutdown.receivers) == before
