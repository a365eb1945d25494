"""Guarantee 6 (issue #12): damage never blocks. Hypothesis damages a real journal
(truncations, flipped bytes, garbage files and directories in persist_dir); a new
client must start, never raise, deliver only events that were written, and count
checksum failures. Bounded in time so that it runs in CI."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rudder_analytics import Client
from rudder_analytics.devserver import DevServer
from rudder_analytics.journal.inspect import inspect_dir

KEY = "fuzz"
N = 60
_TEMPLATE: dict[str, str] = {}
RECOVERED: list[int] = []


def _template(server: DevServer) -> str:
    """A journal of N undelivered events, made once (outage, then a short shutdown)."""
    if "dir" not in _TEMPLATE:
        path = tempfile.mkdtemp(prefix="journal-template-")
        server.fail_fraction(1.0)
        client = Client(KEY, server.url, persist_dir=path, max_retries=100_000,
                        retry_deadline=3600.0, retry_base_delay=0.01, retry_max_delay=0.02,
                        upload_interval=0.02)
        for i in range(N):
            client.track("u", "e", {"i": i}, message_id=f"t-{i}")
        client.shutdown(timeout=0.3)
        server.clear_faults()
        _TEMPLATE["dir"] = path
    return _TEMPLATE["dir"]


damage = st.lists(
    st.one_of(
        st.tuples(st.just("truncate"), st.floats(0, 1)),
        st.tuples(st.just("flip"), st.floats(0, 1)),
        st.tuples(st.just("garbage"), st.binary(max_size=200)),
        st.tuples(st.just("garbage-journal"), st.binary(max_size=200)),
        st.tuples(st.just("meta"), st.binary(max_size=50)),
    ),
    max_size=4,
)


def _apply(root: Path, actions: list[tuple[str, object]]) -> None:
    journal = next(p for p in root.iterdir() if p.name.startswith("j-"))
    segments = sorted(journal.glob("seg-*.log"))
    for kind, value in actions:
        if kind in ("truncate", "flip") and segments:
            seg = segments[0]
            data = bytearray(seg.read_bytes())
            at = int(float(value) * (len(data) - 1))  # type: ignore[arg-type]
            if kind == "truncate":
                seg.write_bytes(bytes(data[:at]))
            elif data:
                data[at] ^= 0x5A
                seg.write_bytes(bytes(data))
        elif kind == "garbage":
            (root / "junk.bin").write_bytes(value)  # type: ignore[arg-type]
        elif kind == "garbage-journal":
            bad = root / "j-999999-bad"
            bad.mkdir(exist_ok=True)
            (bad / "meta.json").write_text(json.dumps({"format": 1, "key_sha256": "x"}))
            (bad / "seg-00000001.log").write_bytes(value)  # type: ignore[arg-type]
        elif kind == "meta":
            (journal / "meta.json").write_bytes(value)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server() -> object:
    """One data plane for every example: the journals record its URL."""
    with DevServer(write_keys=[KEY]) as dev:
        yield dev
    if "dir" in _TEMPLATE:
        shutil.rmtree(_TEMPLATE.pop("dir"), ignore_errors=True)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(actions=damage)
def test_damaged_journal_never_blocks(server: DevServer,
                                      actions: list[tuple[str, object]]) -> None:
    """Whatever the damage, the client starts, tracks and delivers; what it recovers
    is a subset of what was written, and nothing is delivered twice per record."""
    server.reset()
    template = _template(server)
    root = Path(tempfile.mkdtemp(prefix="journal-fuzz-"))
    try:
        shutil.copytree(template, root, dirs_exist_ok=True)
        _apply(root, actions)
        inspect_dir(str(root))  # inspection never raises either
        with Client(KEY, server.url, persist_dir=str(root), upload_interval=0.02) as client:
            ok, _ = client.track("u", "e", message_id="fresh")
            assert ok
            client.flush(5)
            server.wait_for_events(1 + client.stats()["recovered"], timeout=5)
            client.flush(5)
        ids = [e["messageId"] for e in server.events()]
        assert "fresh" in ids
        assert set(ids) <= {"fresh"} | {f"t-{i}" for i in range(N)}
        assert client.stats()["recovered"] <= N
        assert len(ids) == len(set(ids))
        RECOVERED.append(client.stats()["recovered"])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert os.path.isdir(template)


def test_fuzz_did_recover_something() -> None:
    """The fuzz above exercised recovery (undamaged examples deliver all N)."""
    assert RECOVERED and max(RECOVERED) == N
