"""manage.py compact_bodies: bodies stored whole before compaction existed, converted."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from sessions_api.models import DocumentBody
from sessions_api.storage import get_document_store
from tests.support.job_sessions import ingest, picoflow_doc

pytestmark = pytest.mark.django_db


def _store_whole(session_id: str) -> dict[int, bytes]:
    """Rewrite a session's bodies as rows written before encodings existed."""
    store = get_document_store()
    bodies = {}
    for row in DocumentBody.objects.filter(session_id=session_id):
        bodies[row.version] = store.get(session_id=session_id, version=row.version)
    DocumentBody.objects.filter(session_id=session_id).delete()
    for version, body in bodies.items():
        DocumentBody.objects.create(session_id=session_id, version=version, body=body)
    return bodies


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("compact_bodies", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _sessions_with_versions() -> dict[str, dict[int, bytes]]:
    sessions = {}
    for name in ("alpha", "beta"):
        for turn in range(4):
            session = ingest(picoflow_doc(session_id=name, extra_message=f"turn {turn}"))
        sessions[str(session.id)] = _store_whole(str(session.id))
    return sessions


def test_dry_run_reports_the_saving_and_writes_nothing() -> None:
    sessions = _sessions_with_versions()

    report = _run("--dry-run")

    assert "2 session(s), 8 bodies: would rewrite 8" in report
    assert set(DocumentBody.objects.values_list("encoding", flat=True)) == {None}
    assert len(sessions) == 2


def test_conversion_keeps_every_version_byte_for_byte_and_a_second_run_skips_it() -> None:
    sessions = _sessions_with_versions()
    before = sum(len(body) for bodies in sessions.values() for body in bodies.values())

    report = _run()

    assert "2 session(s), 8 bodies: rewrote 8" in report
    assert None not in set(DocumentBody.objects.values_list("encoding", flat=True))
    store = get_document_store()
    for session_id, bodies in sessions.items():
        for version, body in bodies.items():
            assert store.get(session_id=session_id, version=version) == body
    stored = sum(len(bytes(row)) for row in DocumentBody.objects.values_list("body", flat=True))
    assert stored < before
    assert "rewrote 0" in _run()
