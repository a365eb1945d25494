"""The journal: the caller appends to a list; one thread does every file operation.

The caller's thread only appends the encoded bytes to a deque (no lock, no I/O).
Every ``COMMIT_INTERVAL`` the journal thread takes what is pending, writes it as
one group commit to the active segment, registers where each event lives, and
handles what the workers settled (acknowledgements), what the queue could not
hold (spills: on disk only), reading back into the queue (spills, and journals
adopted from dead processes), eviction past ``persist_max_bytes`` and deletion
of fully settled segments. A failing disk makes the journal fall back to memory,
say so once, and try again a second later; it never raises to the caller.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from bisect import bisect_right
from collections import deque
from typing import Callable, Optional

from .._report.lines import emit
from .._sync.buffer import EventBuffer
from ..stats import DropReason, Stats
from .files import SegmentFiles
from .format import encode_frame, frame_slices, sizes_of
from .fs import FileSystem
from .places import Places
from .readback import drain, read_back
from .recovery import adopt_dead, load_segment
from .segments import FrameRef, Segment
from .store import JournalDir, release

__all__ = ["COMMIT_INTERVAL", "Journal", "on_commit"]

logger: logging.Logger = logging.getLogger("rudder_analytics")

COMMIT_INTERVAL = 0.005
"""Seconds between two group commits while events arrive."""
IDLE_WAIT = 0.1
RETRY_AFTER_ERROR = 1.0
REFILL_PER_COMMIT = 5000
PENDING_MAX = 100_000
"""Events waiting for a commit beyond the queue size before spills are refused."""
ACK_LOCK_WAIT = 1.0
"""Seconds a worker waits for the journal thread's cycle before leaving its
acknowledgement to that thread."""
START_PAUSE = 0.001
"""Seconds the thread sleeps first: Thread.start() waits for it to run, and without the
pause the recovery scan would keep the GIL from the constructor for a switch interval."""
on_commit: Optional[Callable[[int], None]] = None
"""Test seam: called on the journal thread with how many appended events are
committed (written, and synced under ``persist_fsync="always"``), in append order."""



def _take_pending(pending: list[bytes]) -> list[bytes]:
    """What is in ``pending`` now, removed from its front: two C calls. Appends that
    other threads make meanwhile land after what is taken, and stay."""
    count = len(pending)
    taken = pending[:count]
    del pending[:count]
    return taken


class Journal:
    """One process's journal (see the module docstring); start with :meth:`start`."""

    fs: FileSystem
    path: str
    healthy: bool
    idle: bool
    persisted: int
    recovered: int
    not_persisted: int
    committed: int

    def __init__(
        self, root: str, write_key: str, url: str, buffer: EventBuffer, stats: Stats,
        max_bytes: int, fsync: str, queue_size: int,
        start_workers: Callable[[], object] = lambda: None,
        fs: Optional[FileSystem] = None,
        owner_gone: Callable[[], bool] = lambda: False,
    ) -> None:
        self.fs = fs or FileSystem()
        self._root = root
        self._key = write_key
        self._url = url
        self._buffer = buffer
        self._stats = stats
        self._fsync = fsync
        self._queue_size = queue_size
        self._pending_max = queue_size + PENDING_MAX
        self._start_workers = start_workers
        self._owner_gone = owner_gone
        """True once the client was collected and its workers delivered and exited."""
        self._released = False
        self._lock = threading.Lock()
        """Held by the journal thread for a whole cycle, and by a worker acknowledging
        a batch: both change the frames and segments."""
        self._dir = JournalDir(root, write_key, url)
        self.path = self._dir.path
        self._pending: list[bytes] = []
        """Appended by callers (list.append, atomic under the GIL); only the journal
        thread takes from its front (see :func:`_take_pending`)."""
        self._spills: deque[bytes] = deque()
        self._acks: deque[list[bytes]] = deque()
        self._places = Places()
        self._files = SegmentFiles(self.path, self.fs, fsync, max_bytes, stats)
        self._next_seq = 1
        self._retry_at = 0.0
        self.healthy = True
        """False while writes fail (disk full, I/O error): events stay in memory only."""
        self.persisted = 0
        self.recovered = 0
        self.not_persisted = 0
        self.committed = 0
        self.pending_append: Callable[[bytes], None] = self._pending.append
        """Caller's thread: journal one event at the next group commit (then :meth:`wake`
        the thread if it is :attr:`idle`): one C call on the hot path, no Python frame."""
        self.idle = False  # the thread waits for events: whoever appends must wake() it
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rudder-analytics-journal",
                                        daemon=True)
        self._thread.start()

    # --- called from other threads (cheap, no I/O) ----------------------------------------

    def wake(self) -> None:
        """Wake the idle journal thread (an event was appended)."""
        self.idle = False
        self._wake.set()

    def spill(self, data: bytes) -> bool:
        """The queue refused ``data`` (appended just before): keep it on disk only.

        False when the journal cannot take it (failing disk, too much pending);
        ``data`` is then forgotten and the caller counts it as ``queue_full``.
        """
        if self.healthy and not self._stop.is_set() and len(self._pending) < self._pending_max:
            self._spills.append(data)
            return True
        self._acks.append([data])
        return False

    def settled(self, batch: list[bytes]) -> None:
        """Worker thread: a batch was delivered or dropped; acknowledge it now.

        One small write per batch, on the worker, so that a crash duplicates at most
        the batches in flight. Events not written yet (the worker was quicker than
        the commit) are left to the journal thread, which acknowledges them right
        after writing them."""
        if not self._lock.acquire(timeout=ACK_LOCK_WAIT):  # a cycle stuck on a slow disk
            self._acks.append(batch)
            return
        try:
            if self._released:
                return
            missing = self._acknowledge([batch], written=False)
        finally:
            self._lock.release()
        if missing:
            self._acks.append(missing)

    # --- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        time.sleep(START_PAUSE)
        try:
            self._files.adopted = adopt_dead(self._root, self.path, self._key, self._url,
                                             self.fs)
        except Exception:  # damage never blocks: journal on without recovery
            logger.exception("rudder_analytics journal: recovery scan failed")
        while True:
            stopping = self._stop.is_set()
            try:
                with self._lock:
                    busy = self._cycle(refill=not stopping)
            except Exception:
                logger.exception("rudder_analytics journal: unexpected error")
                busy = False
            if stopping:
                break
            if busy or self._pending:
                self._wake.wait(COMMIT_INTERVAL)
            elif self._owner_gone():  # collected without shutdown(), its queue delivered
                self._stop.set()
                continue  # one last cycle, then release the journal
            else:
                self._files.release_reserved()  # idle: disk use back to what is written
                self.idle = True
                if self._pending:  # appended after the cycle, before the flag was up
                    self.idle = False
                    continue
                self._wake.wait(IDLE_WAIT)
            self._wake.clear()
        self._release()

    def _cycle(self, refill: bool) -> bool:
        acks = drain(self._acks)
        spills = drain(self._spills)
        pending = _take_pending(self._pending)
        written: list[tuple[int, FrameRef]] = []
        if pending:
            written = self._write(pending)
            if self._fsync == "always":
                self._files.sync(now=True)
            if on_commit is not None:
                on_commit(self.committed)
        if spills:
            self._spill(spills, pending, written)
        if acks:
            self._acknowledge(acks, written=True)
        self._files.sync()
        busy = bool(pending or acks)
        if refill:
            busy = self._refill() or busy
        self._files.evict()
        self._files.delete_settled()
        return busy

    def _write(self, pending: list[bytes]) -> list[tuple[int, FrameRef]]:
        """Write ``pending`` as frames; returns (start in ``pending``, frame) of each."""
        written: list[tuple[int, FrameRef]] = []
        if not self.healthy and time.monotonic() < self._retry_at:
            self._lost(pending)
            return written
        sizes = sizes_of(pending)
        slices = frame_slices(sizes)
        for start, end in slices:
            whole = len(slices) == 1
            chunk = pending if whole else pending[start:end]
            first = self._next_seq
            parts = encode_frame(first, chunk, sizes if whole else sizes[start:end])
            try:
                segment = self._files.active()
                frame = segment.append(parts, first, chunk)  # type: ignore[arg-type]
            except OSError as exc:
                self._failed(exc, pending[start:])
                return written
            self._next_seq = first + len(chunk)
            self._places.added(frame)
            written.append((start, frame))
            self.persisted += len(chunk)
            self.committed += len(chunk)
        self._files.dirty = True
        if not self.healthy:
            self.healthy = True
            emit("journal: writing again (events are persisted)")
        return written

    def _failed(self, exc: OSError, pending: list[bytes]) -> None:
        """A write failed: undo its partial bytes, keep the events in memory only."""
        self._files.undo_partial()
        self._retry_at = time.monotonic() + RETRY_AFTER_ERROR
        if self.healthy:
            self.healthy = False
            what = "disk full" if exc.errno == errno.ENOSPC else str(exc)
            emit(f"journal: cannot write to {self.path} ({what}); events are "
                 "kept in memory only until it can")
        self._lost(pending)

    def _lost(self, pending: list[bytes]) -> None:
        """Not persisted: they are still queued in memory (spills among them are dropped)."""
        self._places.unwritten(pending)
        self.not_persisted += len(pending)
        self.committed += len(pending)

    def _spill(self, spills: list[bytes], pending: list[bytes],
               written: list[tuple[int, FrameRef]]) -> None:
        """Events the queue refused: on disk only now, read back later (one Python
        step per event of this commit, while the queue is full only)."""
        places: dict[int, tuple[FrameRef, int]] = {}
        if written:
            wanted = set(map(id, spills))
            starts = [start for start, _ in written]
            for position, data in enumerate(pending):
                if id(data) in wanted:
                    start, frame = written[bisect_right(starts, position) - 1]
                    places[id(data)] = (frame, position - start)
        lost = 0
        for data in spills:
            where = places.get(id(data)) or self._places.newest(data)
            if where is None:
                lost += 1  # its write failed: it is nowhere now
                continue
            frame, index = where
            frame.settle([index])
            frame.segment.mark_unread(frame.first + index)
        self._places.trim()
        if lost:
            self._stats.add_dropped(DropReason.QUEUE_FULL, lost, enqueued=False,
                                    cause="the journal could not write them")

    def _acknowledge(self, acks: list[list[bytes]], written: bool) -> list[bytes]:
        """Settled batches: append their events' ranges to their segments' ack files;
        returns the events not written yet (see :meth:`Places.settle`)."""
        by_segment: dict[Segment, list[tuple[int, int]]] = {}
        counts: dict[Segment, int] = {}
        missing: list[bytes] = []
        for batch in acks:
            groups, later = self._places.settle(batch, written)
            missing.extend(later)
            for frame, indexes in groups:
                frame.settle(indexes)
                segment = frame.segment
                counts[segment] = counts.get(segment, 0) + len(indexes)
                first = frame.first
                by_segment.setdefault(segment, []).append(
                    (first + indexes[0], first + indexes[-1]))
        self._places.trim()
        for segment, runs in by_segment.items():
            if segment.deleted:
                continue
            try:
                segment.acknowledge(runs, counts[segment])
                self._files.dirty = True
            except OSError:
                pass  # the events stay; after a crash they are sent again (same messageId)
        return missing

    # --- reading back, eviction, deletion ------------------------------------------------

    def _refill(self) -> bool:
        """Read records that are on disk only back into the queue while it has room."""
        budget = REFILL_PER_COMMIT
        for segment in self._files.all():
            if budget <= 0 or len(self._buffer) >= self._queue_size // 2:
                break
            if not segment.loaded:
                load_segment(segment, self._stats)
            if segment.deleted or not segment.unread:
                continue
            count, full, damaged = read_back(segment, budget, self._buffer, self._places)
            if damaged:
                self._stats.add_dropped(DropReason.CORRUPT, damaged, enqueued=False,
                                        cause=f"damaged records in {segment.path}")
            budget -= count
            self.recovered += count if self._files.is_adopted(segment) else 0
            if full:
                break
        if budget < REFILL_PER_COMMIT:
            self._start_workers()
        return budget < REFILL_PER_COMMIT

    # --- ending -------------------------------------------------------------------------

    def close(self, deadline: float) -> None:
        """Write and settle what is pending, then release the journal by ``deadline``.

        What is still undelivered stays on disk for the next process (it adopts it).
        """
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.05, deadline - time.monotonic()))
            if thread.is_alive():
                return  # the thread releases the journal when it ends
        self._release()

    def _release(self) -> None:
        """Close the files and unlock the journal, once (the thread or close())."""
        with self._lock:
            if self._released:
                return
            self._released = True
            empty = self._files.close()
            release(self.path, self._dir.lock_fd, remove=empty)
            self._dir.lock_fd = None

    def forget_after_fork(self) -> None:
        """In a forked child: drop every inherited descriptor without unlocking or
        touching the parent's files (the child builds its own journal)."""
        self._files.forget_after_fork()
        self._dir.forget_after_fork()
        self._places.clear()
