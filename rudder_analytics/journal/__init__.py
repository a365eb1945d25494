"""The opt-in durable journal (``persist_dir``): see docs/guides/journal.md.

:func:`open_journal` builds a client's journal; :mod:`.inspect` reads journals
from outside (the ``rudder-analytics journal`` command); :mod:`.format` is the
documented, versioned on-disk format.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .._report.lines import emit
from .._sync.buffer import EventBuffer
from ..config import Config
from ..stats import Stats
from .fs import FileSystem
from .writer import Journal

if TYPE_CHECKING:
    from .._sync.worker import WorkerPool

__all__ = ["FileSystem", "Journal", "attach", "open_journal"]


def open_journal(
    persist_dir: str, write_key: str, url: str, buffer: EventBuffer, stats: Stats,
    max_bytes: int, fsync: str, queue_size: int, start_workers: Callable[[], object],
    fs: FileSystem | None = None, owner_gone: Callable[[], bool] = lambda: False,
) -> Journal:
    """Create this process's journal under ``persist_dir`` and start its thread."""
    journal = Journal(persist_dir, write_key, url, buffer, stats, max_bytes, fsync,
                      queue_size, start_workers, fs, owner_gone)
    journal.start()
    return journal


def attach(config: Config, buffer: EventBuffer, stats: Stats,
           pool: WorkerPool) -> Journal | None:
    """A client's journal, acknowledged by ``pool``; None (memory only, said once) if
    the directory cannot hold one now."""
    assert config.persist_dir is not None
    pool.observer = None  # after a fork: never the parent's journal
    try:
        journal = open_journal(config.persist_dir, config.write_key, config.data_plane_url,
                               buffer, stats, config.persist_max_bytes, config.persist_fsync,
                               config.max_queue_size, pool.ensure_started,
                               owner_gone=lambda: pool.stopping.is_set() and pool.done())
    except OSError as exc:
        emit(f"journal: cannot create a journal in {config.persist_dir} "
             f"({exc}); events are kept in memory only")
        return None
    pool.observer = journal.settled
    return journal
