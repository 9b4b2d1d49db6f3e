"""Django's SQLite backend with its writers queued, in and across processes.

Every transaction here starts with BEGIN IMMEDIATE (``transaction_mode`` in config/settings.py),
which takes SQLite's single write lock. A writer that finds it taken waits in SQLite's busy
handler, which sleeps 1, 2, 5, 10 ... up to 100 ms between attempts: with the web server's
threads in two processes waiting for a lock held a few milliseconds at a time, the lock sits
idle between their polls and the slowest requests wait for the longest sleeps.

So each transaction first takes a queue that wakes the next writer as soon as the previous
one ends: a lock per database for the threads of this process, then an ``flock`` on a file
beside the database for the processes (the kernel drops it when a process dies). Both are
released when the transaction commits, rolls back or its connection closes. Nested ``atomic``
blocks are savepoints inside the outer transaction and take nothing. The busy handler stays
the backstop: for writers that bypass the queue (a statement in autocommit mode, another
program), and for a thread that waits on this process's lock longer than the connection's
``timeout``, which then goes on to BEGIN without it. The wait for another process has no limit
of its own: it ends when that process's transaction ends, or the process does.
"""

from __future__ import annotations

import fcntl
import os
import threading

from django.db.backends.sqlite3 import base as sqlite3_base

__all__ = ["DatabaseWrapper"]


class WriterQueue:
    """One database's writers in this process: a thread lock, then a file lock."""

    def __init__(self, lock_path: str | None) -> None:
        self.lock_path = lock_path
        self._threads = threading.Lock()
        self._fd: int | None = None

    def acquire(self, timeout: float) -> bool:
        """Wait for this database's writers ahead of us. False after ``timeout`` seconds of
        waiting behind this process's own threads (the caller goes on without the queue)."""
        if not self._threads.acquire(timeout=timeout):
            return False
        try:
            fd = self._file()
            if fd is not None:
                # Blocks until the writer in another process is done; only one thread per
                # process waits here, the others behind the thread lock.
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        return True

    def release(self) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _file(self) -> int | None:
        if self._fd is None and self.lock_path is not None:
            try:
                self._fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:
                self.lock_path = None  # not ours to create: queue this process's threads only
        return self._fd


_queues: dict[str, WriterQueue] = {}
_queues_lock = threading.Lock()


def _forget_queues() -> None:
    # A forked child shares the parent's open file (and so its flock) and may inherit a thread
    # lock held by a thread that does not exist in the child: it starts its own queues.
    global _queues_lock
    _queues.clear()
    _queues_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_queues)


def writer_queue(name: str, *, in_memory: bool) -> WriterQueue:
    with _queues_lock:
        queue = _queues.get(name)
        if queue is None:
            # An in-memory database lives in this process only: its threads are the writers.
            queue = _queues[name] = WriterQueue(None if in_memory else f"{name}-writers.lock")
        return queue


class DatabaseWrapper(sqlite3_base.DatabaseWrapper):
    _queue_held: WriterQueue | None = None

    def _start_transaction_under_autocommit(self) -> None:
        queue = writer_queue(str(self.settings_dict["NAME"]), in_memory=self.is_in_memory_db())
        timeout = float(self.settings_dict["OPTIONS"].get("timeout", 5))
        if queue.acquire(timeout):
            self._queue_held = queue
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._leave_queue()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._leave_queue()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._leave_queue()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self._leave_queue()

    def _leave_queue(self) -> None:
        queue, self._queue_held = self._queue_held, None
        if queue is not None:
            queue.release()
