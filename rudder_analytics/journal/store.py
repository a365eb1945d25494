"""Journal directories under ``persist_dir``: create, lock, describe, find the dead.

Each process owns one directory, locked with ``flock`` for its life. A directory
whose lock can be taken has no living owner; it is adopted by the one client that
takes the lock, and only if its ``meta.json`` names the same write key (as a
SHA-256) and data plane URL.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterator
from typing import Any, Optional

from .format import FORMAT_VERSION

__all__ = ["JournalDir", "check_persist_dir", "dead_journals", "key_hash", "read_meta"]

PREFIX = "j-"
META = "meta.json"
LOCK = "lock"


def key_hash(write_key: str) -> str:
    """What a journal records of the write key: never the key itself."""
    return hashlib.sha256(write_key.encode("utf-8")).hexdigest()


def check_persist_dir(path: str) -> str:
    """Create ``path`` if needed and prove it writable; the reason as an OSError if not."""
    path = os.path.abspath(os.fspath(path))
    os.makedirs(path, exist_ok=True)
    probe = os.path.join(path, f".probe-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, b"x")
    finally:
        os.close(fd)
        os.remove(probe)
    return path


def read_meta(directory: str) -> Optional[dict[str, Any]]:
    """A journal's metadata, or None if missing or not a JSON object."""
    try:
        with open(os.path.join(directory, META), "rb") as file:
            meta = json.loads(file.read(64 * 1024))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def try_lock(directory: str) -> Optional[int]:
    """The lock file's descriptor, locked; None if a live process holds it."""
    try:
        fd = os.open(os.path.join(directory, LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        return None
    return fd


def owner_alive(directory: str) -> bool:
    """True if some process holds the journal's lock (it is not adoptable)."""
    fd = try_lock(directory)
    if fd is None:
        return os.path.exists(os.path.join(directory, LOCK))
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    return False


class JournalDir:
    """This process's own journal directory, created and locked."""

    path: str

    def __init__(self, root: str, write_key: str, url: str) -> None:
        name = f"{PREFIX}{os.getpid()}-{time.time_ns():x}-{secrets.token_hex(3)}"
        self.path = os.path.join(root, name)
        os.mkdir(self.path, 0o700)
        fd = try_lock(self.path)
        if fd is None:
            raise OSError(f"cannot lock {self.path}")
        self.lock_fd: Optional[int] = fd
        meta = {"format": FORMAT_VERSION, "pid": os.getpid(), "created": time.time(),
                "key_sha256": key_hash(write_key), "url": url}
        tmp = os.path.join(self.path, META + ".tmp")
        with open(tmp, "w", encoding="utf-8") as file:
            json.dump(meta, file)
        os.replace(tmp, os.path.join(self.path, META))

    def forget_after_fork(self) -> None:
        """In a forked child: close the inherited lock without unlocking (the parent's)."""
        if self.lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.lock_fd)
            self.lock_fd = None


def release(directory: str, lock_fd: Optional[int], remove: bool) -> None:
    """Unlock; with ``remove``, delete the directory's metadata and the directory."""
    if remove:
        for name in (META, LOCK):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(directory, name))
        with contextlib.suppress(OSError):
            os.rmdir(directory)
    if lock_fd is not None:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
        finally:
            os.close(lock_fd)


def set_aside(directory: str, why: str) -> str:
    """Rename a journal we cannot read out of the way (kept for a human, never blocking)."""
    target = os.path.join(os.path.dirname(directory),
                          "set-aside-" + os.path.basename(directory) + "-" + why)
    os.replace(directory, target)
    return target


def journal_dirs(root: str) -> Iterator[str]:
    """Every journal directory under ``root`` (other files are ignored)."""
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return
    for name in names:
        path = os.path.join(root, name)
        if name.startswith(PREFIX) and os.path.isdir(path):
            yield path


def dead_journals(root: str, own: str) -> Iterator[tuple[str, int, Optional[dict[str, Any]]]]:
    """``(directory, lock_fd, meta)`` for each journal without a living owner, locked."""
    for path in journal_dirs(root):
        if path == own:
            continue
        fd = try_lock(path)
        if fd is None:
            continue
        if not os.path.isdir(path):  # deleted by its adopter between listing and locking
            release(path, fd, False)
            continue
        yield path, fd, read_meta(path)
