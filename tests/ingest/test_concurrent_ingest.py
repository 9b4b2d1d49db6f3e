"""The same document posted many times at once is stored once.

Real threads, each with its own Django test Client and so its own database connection, race
on one (format, external id). The unique constraint plus the row lock in the ingest service
must turn every race into "already there": one session, one version, every answer 200/201 with
the same id, never a 500.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client

from sessions_api.models import DocumentBody, DocumentVersion, Session
from sessions_api.storage import get_document_store

THREADS = 16
POSTS = 64


@contextmanager
def shared_database(tmp_path: Path) -> Iterator[None]:
    """Let real threads share the test database the way processes share a deployed one.

    PostgreSQL: nothing to do. SQLite: pytest-django's test database is in memory with a
    shared cache, where a second writer fails at once with "database table is locked" (shared
    cache locks ignore the busy timeout) -- an artefact of the test setup, not of the deployed
    file database (WAL, BEGIN IMMEDIATE, a busy timeout: writers queue). So the in-memory
    database, with the test's API key in it, is copied to a file, every new connection (the
    threads') opens that file, and so does the main thread until the block ends.
    """
    original = connections["default"]
    if original.vendor != "sqlite" or not original.is_in_memory_db():
        yield
        return
    target = tmp_path / "race.sqlite3"
    original.ensure_connection()
    copy = sqlite3.connect(target)
    original.connection.backup(copy)
    # WAL before any thread connects, as a migrated deployment's file already is: otherwise the
    # threads' first connections race to switch the journal mode, which takes an exclusive lock
    # that the busy timeout does not wait for ("database is locked" while connecting).
    copy.execute("PRAGMA journal_mode=WAL")
    copy.close()
    shared_settings = connections.settings["default"]
    memory_name = shared_settings["NAME"]
    shared_settings["NAME"] = str(target)  # what new connections (the threads') are built from
    file_connection = connections.create_connection("default")
    connections["default"] = file_connection
    try:
        yield
    finally:
        file_connection.close()
        shared_settings["NAME"] = memory_name
        connections["default"] = original


def _post_many(
    key: str, body: bytes, count: int, start: threading.Barrier
) -> list[tuple[int, Any]]:
    client = Client()
    answers: list[tuple[int, Any]] = []
    try:
        start.wait(timeout=30)  # every thread posts its first document at the same moment
        for _ in range(count):
            response = client.post(
                "/api/v1/sessions",
                data=body,
                content_type="application/json",
                headers={"Authorization": f"Bearer {key}"},
            )
            try:
                payload: Any = response.json()
            except ValueError:
                payload = response.content[:300]
            answers.append((response.status_code, payload))
    finally:
        connection.close()
    return answers


def _race(key: str, *bodies: bytes) -> list[tuple[int, Any]]:
    """POSTS posts from THREADS threads; thread n sends bodies[n % len(bodies)]."""
    start = threading.Barrier(THREADS)
    per_thread = POSTS // THREADS
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [
            pool.submit(_post_many, key, bodies[n % len(bodies)], per_thread, start)
            for n in range(THREADS)
        ]
        return [answer for future in futures for answer in future.result(timeout=120)]


@pytest.mark.django_db(transaction=True)
def test_same_document_from_16_threads_is_stored_once(make_api_key, seed_document, tmp_path):
    key = make_api_key("ingest")
    with shared_database(tmp_path):
        answers = _race(key, seed_document)

        assert len(answers) == POSTS
        statuses = [status for status, _ in answers]
        assert all(status in (200, 201) for status in statuses), answers[:5]
        assert statuses.count(201) == 1, "exactly one request creates the session"
        ids = {payload["id"] for _, payload in answers}
        assert len(ids) == 1
        assert {payload["version"] for _, payload in answers} == {1}
        assert sum(payload["created"] for _, payload in answers) == 1
        assert sum(payload["changed"] for _, payload in answers) == 1

        assert Session.objects.count() == 1
        assert DocumentVersion.objects.count() == 1
        assert DocumentBody.objects.count() == 1
        assert str(Session.objects.get().id) == ids.pop()


@pytest.mark.django_db(transaction=True)
def test_two_bodies_racing_get_dense_versions(make_api_key, seed_document, tmp_path):
    """Two different bodies of one session racing: one session, no duplicate version number,
    every stored body one of the two, and each "changed" answer is exactly one version."""
    key = make_api_key("ingest")
    other = seed_document.replace(b'"Jane Smith"', b'"Jane Doe"', 1)
    assert other != seed_document
    with shared_database(tmp_path):
        answers = _race(key, seed_document, other)

        assert len(answers) == POSTS
        assert all(status in (200, 201) for status, _ in answers), answers[:5]
        assert [status for status, _ in answers].count(201) == 1
        assert len({payload["id"] for _, payload in answers}) == 1
        assert Session.objects.count() == 1
        numbers = list(DocumentVersion.objects.order_by("number").values_list("number", flat=True))
        assert numbers[0] == 1 and numbers == list(range(1, len(numbers) + 1))
        assert Session.objects.get().latest_version == len(numbers)
        assert DocumentBody.objects.count() == len(numbers)
        store = get_document_store()
        key = str(Session.objects.get().id)
        assert {store.get(session_id=key, version=n) for n in numbers} <= {seed_document, other}
        assert sum(payload["changed"] for _, payload in answers) == len(numbers)
