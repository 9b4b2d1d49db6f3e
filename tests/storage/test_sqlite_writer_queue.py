"""SQLite writers queue for the write lock (config/sqlite): each transaction holds this
process's queue and, on a database file, an flock beside it, from BEGIN until it commits, rolls
back or its connection closes; nested blocks take nothing."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest
from django.db import connection, connections, transaction

from config.sqlite.base import DatabaseWrapper, WriterQueue, writer_queue
from sessions_api.models import Session


def _queue() -> WriterQueue:
    return writer_queue(
        str(connection.settings_dict["NAME"]), in_memory=connection.is_in_memory_db()
    )


def _taken_by_another_thread(queue: WriterQueue) -> bool:
    """Whether another thread finds the queue taken (it gives up at once instead of waiting)."""
    free: list[bool] = []

    def attempt() -> None:
        got = queue.acquire(timeout=0)
        free.append(got)
        if got:
            queue.release()

    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join()
    return not free[0]


def _flock_free(path: Path) -> bool:
    """Whether another open of the lock file (as another process holds it) can lock it now."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops the lock
    return True


@pytest.fixture
def on_sqlite():
    if connection.vendor != "sqlite":
        pytest.skip("the writer queue is SQLite's; this run uses " + connection.vendor)


def test_the_embedded_database_uses_the_queued_backend(on_sqlite):
    assert isinstance(connections["default"], DatabaseWrapper)


@pytest.mark.django_db(transaction=True)
def test_a_transaction_holds_the_queue_until_it_commits(on_sqlite):
    queue = _queue()
    assert not _taken_by_another_thread(queue)
    with transaction.atomic():
        assert _taken_by_another_thread(queue)
        with transaction.atomic():  # a savepoint: takes nothing more, waits for nothing
            Session.objects.count()
        assert _taken_by_another_thread(queue)
    assert not _taken_by_another_thread(queue)


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_releases_the_queue(on_sqlite):
    queue = _queue()
    with pytest.raises(RuntimeError), transaction.atomic():
        raise RuntimeError("fails inside the transaction")
    assert not _taken_by_another_thread(queue)


@pytest.mark.django_db(transaction=True)
def test_a_commit_hook_may_start_the_next_transaction(on_sqlite):
    ran: list[int] = []

    def after_commit() -> None:
        with transaction.atomic():  # would wait forever if the queue were still held
            ran.append(Session.objects.count())

    with transaction.atomic():
        transaction.on_commit(after_commit)
    assert ran == [0]
    assert not _taken_by_another_thread(_queue())


@pytest.fixture
def file_database(on_sqlite, tmp_path):
    """A connection of the queued backend to a database file (the test database is in memory,
    where closing is ignored and there is no file to put a lock beside)."""
    settings_dict = {**connections["default"].settings_dict, "NAME": str(tmp_path / "db.sqlite3")}
    wrapper = DatabaseWrapper(settings_dict, alias="writer_queue_test")
    yield wrapper
    wrapper.close()


@pytest.mark.django_db
def test_closing_the_connection_inside_a_transaction_releases_the_queue(file_database):
    file_database.ensure_connection()
    file_database._start_transaction_under_autocommit()
    queue = writer_queue(file_database.settings_dict["NAME"], in_memory=False)
    assert _taken_by_another_thread(queue)
    assert not _flock_free(Path(queue.lock_path))
    file_database.close()
    assert not _taken_by_another_thread(queue)
    assert _flock_free(Path(queue.lock_path))


def test_a_database_file_is_queued_across_processes_by_a_lock_beside_it(tmp_path):
    database = tmp_path / "observatory.sqlite3"
    queue = WriterQueue(f"{database}-writers.lock")
    assert queue.acquire(timeout=1)
    lock_file = tmp_path / "observatory.sqlite3-writers.lock"
    try:
        assert lock_file.exists()
        assert not _flock_free(lock_file)
    finally:
        queue.release()
    assert _flock_free(lock_file)
    assert not _taken_by_another_thread(queue)


@pytest.mark.django_db(transaction=True)
def test_a_writer_that_waits_longer_than_the_timeout_goes_on_to_sqlite(on_sqlite, monkeypatch):
    queue = _queue()
    holding, done = threading.Event(), threading.Event()

    def hold() -> None:
        assert queue.acquire(timeout=5)
        holding.set()
        done.wait(timeout=30)
        queue.release()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(timeout=30)
        connection.ensure_connection()
        # Read once the connection is open: the queue's wait, not SQLite's busy timeout.
        monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 0)
        with transaction.atomic():  # the queue is taken: BEGIN without it, SQLite decides
            assert Session.objects.count() == 0
        # It never held the queue, so its commit left the other thread's hold alone.
        assert _taken_by_another_thread(queue)
    finally:
        done.set()
        holder.join()
    assert not _taken_by_another_thread(queue)
