"""SQLite storage of accepted events, with a counter and a Condition for waiters.

One connection (``check_same_thread=False``) guarded by one lock; each request's events
go in with one ``executemany`` inside one transaction, so a request is stored whole or
not at all, like the gateway's jobsdb write. The in-memory counter lets tests block on
"at least n events" without polling the database.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .jsontext import load_payload
from .protocol import Row

__all__ = ["EventStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    type TEXT,
    user_id TEXT NOT NULL,
    anonymous_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    event TEXT,
    payload TEXT NOT NULL,
    write_key TEXT NOT NULL,
    request_ip TEXT NOT NULL,
    received_at TEXT NOT NULL
)
"""

_INSERT = (
    "INSERT INTO events (type, user_id, anonymous_id, message_id, event, payload,"
    " write_key, request_ip, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

_FILTER_COLUMNS = ("type", "user_id", "anonymous_id", "message_id", "event", "write_key")


class EventStore:
    """Events in SQLite (``:memory:`` unless a file path is given), in arrival order."""

    def __init__(self, path: Optional[str] = None) -> None:
        self.path = path
        self._cond = threading.Condition(threading.Lock())
        self._conn = sqlite3.connect(
            path or ":memory:", check_same_thread=False, isolation_level=None
        )
        if path:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)
        row = self._conn.execute("SELECT COUNT(*) FROM events").fetchone()
        self._count: int = int(row[0])
        self._closed = False

    def insert(self, rows: Sequence[Row]) -> None:
        """Store one request's events in one transaction and wake the waiters."""
        with self._cond:
            conn = self._conn
            conn.execute("BEGIN")
            try:
                conn.executemany(_INSERT, rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            self._count += len(rows)
            self._cond.notify_all()

    @staticmethod
    def _where(filters: Dict[str, Optional[str]]) -> Tuple[str, List[Any]]:
        clauses: List[str] = []
        values: List[Any] = []
        for column in _FILTER_COLUMNS:
            value = filters.get(column)
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", values

    def _select(self, columns: str, filters: Dict[str, Optional[str]]) -> List[Tuple[Any, ...]]:
        where, values = self._where(filters)
        with self._cond:
            cursor = self._conn.execute(f"SELECT {columns} FROM events{where} ORDER BY id", values)
            return list(cursor.fetchall())

    def events(self, **filters: Optional[str]) -> List[Dict[str, Any]]:
        """Stored events (as enriched by the gateway rules), oldest first."""
        rows = self._select("payload", filters)
        return [load_payload(row[0]) for row in rows]

    def jobs(self, **filters: Optional[str]) -> List[Dict[str, Any]]:
        """Stored records in the gateway's job shape (batch, requestIP, writeKey, receivedAt)."""
        rows = self._select("payload, request_ip, write_key, received_at", filters)
        return [
            {
                "batch": [load_payload(payload)],
                "requestIP": request_ip,
                "writeKey": write_key,
                "receivedAt": received_at,
            }
            for payload, request_ip, write_key, received_at in rows
        ]

    def count(self, **filters: Optional[str]) -> int:
        """Number of stored events matching the filters (no query when there are none)."""
        if all(filters.get(c) is None for c in _FILTER_COLUMNS):
            with self._cond:
                return self._count
        where, values = self._where(filters)
        with self._cond:
            row = self._conn.execute(f"SELECT COUNT(*) FROM events{where}", values).fetchone()
        return int(row[0])

    def wait_for(self, n: int, timeout: Optional[float]) -> bool:
        """Block until at least ``n`` events are stored; False if ``timeout`` passes first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._count >= n, timeout)

    def reset(self) -> None:
        """Delete every stored event."""
        with self._cond:
            self._conn.execute("DELETE FROM events")
            self._count = 0
            self._cond.notify_all()

    def close(self) -> None:
        """Close the database; later writes fail (and are answered 500)."""
        with self._cond:
            if not self._closed:
                self._closed = True
                self._conn.close()
