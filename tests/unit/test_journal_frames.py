"""How one group commit is cut into frames (journal/format.py): by events and bytes."""

from __future__ import annotations

from array import array

from rudder_analytics.journal.format import FRAME_BYTES, FRAME_EVENTS, frame_slices


def test_one_frame_for_an_ordinary_commit() -> None:
    """A commit within both bounds is one frame."""
    assert frame_slices(array("I", [300] * 2000)) == [(0, 2000)]


def test_split_by_events_and_by_bytes() -> None:
    """Past FRAME_EVENTS, or past FRAME_BYTES, the commit is cut into consecutive
    frames covering every event once; one event larger than FRAME_BYTES gets a frame
    of its own."""
    many = frame_slices(array("I", [10] * (FRAME_EVENTS * 2 + 5)))
    assert many == [(0, FRAME_EVENTS), (FRAME_EVENTS, 2 * FRAME_EVENTS),
                    (2 * FRAME_EVENTS, 2 * FRAME_EVENTS + 5)]
    half = FRAME_BYTES // 2
    big = frame_slices(array("I", [half, half, half, FRAME_BYTES * 2, 5]))
    assert big == [(0, 2), (2, 3), (3, 4), (4, 5)]
