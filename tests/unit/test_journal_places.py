"""How the journal finds settled events in its frames (journal/places.py): pure
bookkeeping on in-memory frames, no files."""

from __future__ import annotations

from typing import Optional

from rudder_analytics.journal.fs import FileSystem
from rudder_analytics.journal.places import Places
from rudder_analytics.journal.segments import FrameRef, Segment


def _events(prefix: str, n: int) -> list[bytes]:
    return [f'"id":"{prefix}-{i}"}}'.encode() for i in range(n)]


def _frames(places: Places, segment: Segment, *chunks: list[bytes]) -> list[FrameRef]:
    frames, first = [], 1
    for chunk in chunks:
        frame = FrameRef(segment, first, len(chunk), 0, 0, list[Optional[bytes]](chunk))
        places.added(frame)
        frames.append(frame)
        first += len(chunk)
    return frames


def _runs(groups: list[tuple[FrameRef, range]]) -> list[tuple[int, int, int]]:
    """(frame's first seq, first index, last index) of each group."""
    return [(frame.first, r[0], r[-1]) for frame, r in groups]


def test_consecutive_batches_are_runs_across_frames() -> None:
    """Batches taken in queue order are found as whole runs, spanning frames."""
    places, segment = Places(), Segment("/nonexistent/seg-1.log", FileSystem())
    a, b = _events("a", 6), _events("b", 4)
    _frames(places, segment, a, b)
    groups, missing = places.settle(a[:4], written=False)
    assert _runs(groups) == [(1, 0, 3)] and missing == []
    groups, missing = places.settle(a[4:] + b[:3], written=False)
    assert _runs(groups) == [(1, 4, 5), (7, 0, 2)] and missing == []


def test_out_of_order_batches_are_found() -> None:
    """A later batch settled first (several workers) is found by search; the earlier
    one after it too."""
    places, segment = Places(), Segment("/nonexistent/seg-1.log", FileSystem())
    a = _events("a", 10)
    (frame,) = _frames(places, segment, a)
    groups, _ = places.settle(a[5:], written=False)
    assert _runs(groups) == [(1, 5, 9)]
    frame.settle(groups[0][1])
    groups, _ = places.settle(a[:5], written=False)
    assert _runs(groups) == [(1, 0, 4)]


def test_events_not_written_yet_are_returned_in_order() -> None:
    """A worker that outran the commit gets back the first unwritten event and all
    after it; the journal thread (written=True) skips what it does not hold."""
    places, segment = Places(), Segment("/nonexistent/seg-1.log", FileSystem())
    a, later = _events("a", 3), _events("later", 2)
    _frames(places, segment, a)
    groups, missing = places.settle(a + later, written=False)
    assert _runs(groups) == [(1, 0, 2)] and missing == later
    groups, missing = places.settle(later, written=True)
    assert groups == [] and missing == []


def test_interleaved_events_split_the_run() -> None:
    """A spilled event (its slot emptied) inside a run: the batch is matched as the
    runs around it."""
    places, segment = Places(), Segment("/nonexistent/seg-1.log", FileSystem())
    a = _events("a", 6)
    (frame,) = _frames(places, segment, a)
    frame.settle([2])  # spilled: on disk only, not in the queue
    groups, missing = places.settle(a[:2] + a[3:], written=False)
    assert _runs(groups) == [(1, 0, 1), (1, 3, 5)] and missing == []


def test_read_back_and_unwritten_events() -> None:
    """Events read back from disk are found by id; events whose write failed are
    settled without a frame."""
    places, segment = Places(), Segment("/nonexistent/seg-1.log", FileSystem())
    old = FrameRef(segment, 100, 2, 0, 0, None)
    back = _events("back", 2)
    for index, message in enumerate(back):
        old.hold(index, message)
        places.read_back(message, old, index)
    failed = _events("failed", 2)
    places.unwritten(failed)
    groups, missing = places.settle(back + failed, written=False)
    assert _runs(groups) == [(100, 0, 0), (100, 1, 1)] and missing == []


def test_trim_forgets_frames_with_nothing_in_memory() -> None:
    """Fully settled frames at the head are dropped; a frame still holding an event
    keeps itself and every later one."""
    places, segment = Places(), Segment("/nonexistent/seg-1.log", FileSystem())
    a, b = _events("a", 2), _events("b", 2)
    first, second = _frames(places, segment, a, b)
    first.settle(range(2))
    second.settle([0])
    places.trim()
    groups, _ = places.settle(b[1:], written=True)
    assert _runs(groups) == [(3, 1, 1)]
    assert first.messages is None and second.live == 1
