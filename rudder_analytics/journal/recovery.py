"""Adopting journals whose owner died: lock, check credentials, load segments.

Damage never blocks: a journal of another format version, a segment that is not
ours, unreadable metadata: each is set aside (renamed) with one warning line and
the client goes on. Loading reads segments' acknowledgements and truncates torn
tails; the records themselves are read back into the queue later, a chunk at a
time, so a million-event backlog costs no start-up time and bounded memory.
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass, field

from .._report.lines import emit
from ..stats import DropReason, Stats
from .format import FORMAT_VERSION
from .fs import FileSystem
from .segments import Segment, segment_index
from .store import dead_journals, key_hash, release, set_aside

__all__ = ["Adopted", "adopt_dead", "load_segment"]

logger: logging.Logger = logging.getLogger("rudder_analytics")


@dataclass
class Adopted:
    """A dead process's journal that this client now owns (its lock is held)."""

    path: str
    lock_fd: int
    segments: list[Segment] = field(default_factory=list)


def adopt_dead(root: str, own: str, write_key: str, url: str,
               fs: FileSystem) -> list[Adopted]:
    """Every dead journal under ``root`` with our credentials, locked and loaded."""
    adopted: list[Adopted] = []
    digest = key_hash(write_key)
    for path, fd, meta in dead_journals(root, own):
        try:
            journal = _adopt_one(path, fd, meta, digest, url, fs)
        except OSError as exc:
            logger.warning("rudder_analytics journal: cannot adopt %s: %s", path, exc)
            journal = None
            _unlock(fd)
        if journal is not None:
            adopted.append(journal)
    return adopted


def _unlock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _adopt_one(path: str, fd: int, meta: object, digest: str, url: str,
               fs: FileSystem) -> Adopted | None:
    names = sorted(os.listdir(path))
    segment_names = [n for n in names if segment_index(n) is not None]
    if not isinstance(meta, dict):
        if not segment_names:  # an empty journal that died while being created
            release(path, fd, remove=True)
            return None
        _unlock(fd)
        emit(f"journal: {path} has no readable meta.json; set aside as "
             f"{set_aside(path, 'no-meta')}")
        return None
    if meta.get("format") != FORMAT_VERSION:
        _unlock(fd)
        emit(f"journal: {path} has format {meta.get('format')!r} "
             f"(this version reads {FORMAT_VERSION}); set aside as "
             f"{set_aside(path, 'unknown-format')}")
        return None
    if meta.get("key_sha256") != digest or meta.get("url") != url:
        _unlock(fd)  # another source's events: never ours to send
        return None
    journal = Adopted(path, fd)
    for name in segment_names:  # read later, one at a time, by the journal thread
        segment = Segment(os.path.join(path, name), fs)
        segment.defer_load(os.path.getsize(segment.path))
        journal.segments.append(segment)
    if not journal.segments:
        release(path, fd, remove=True)
        return None
    return journal


def load_segment(segment: Segment, stats: Stats) -> None:
    """Read an adopted segment's index when its turn comes; damage is counted, a file
    of another format is set aside, an empty one deleted."""
    live, corrupt = segment.load()
    if corrupt:
        stats.add_dropped(DropReason.CORRUPT, corrupt, enqueued=False,
                          cause=f"damaged records in {segment.path}")
    if live < 0:
        segment.deleted = True
        os.replace(segment.path, segment.path + ".unknown-format")
        emit(f"journal: {segment.path} is not a version-{FORMAT_VERSION} segment; set aside")
    elif live == 0:
        segment.delete()
