"""How one group commit is cut into frames (journal/writer.py): by events and bytes."""

from __future__ import annotations

from array import array

from rudder_analytics.journal import writer


def test_one_frame_for_an_ordinary_commit() -> None:
    """A commit within both bounds is one frame."""
    assert writer._frames(array("I", [300] * 2000)) == [(0, 2000)]


def test_split_by_events_and_by_bytes() -> None:
    """Past FRAME_EVENTS, or past FRAME_BYTES, the commit is cut into consecutive
    frames covering every event once; one event larger than FRAME_BYTES gets a frame
    of its own."""
    many = writer._frames(array("I", [10] * (writer.FRAME_EVENTS * 2 + 5)))
    assert many == [(0, writer.FRAME_EVENTS), (writer.FRAME_EVENTS, 2 * writer.FRAME_EVENTS),
                    (2 * writer.FRAME_EVENTS, 2 * writer.FRAME_EVENTS + 5)]
    half = writer.FRAME_BYTES // 2
    big = writer._frames(array("I", [half, half, half, writer.FRAME_BYTES * 2, 5]))
    assert big == [(0, 2), (2, 3), (3, 4), (4, 5)]
