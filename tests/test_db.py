"""sessions_api/db.py: hand-written statements give what the ORM gives."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db.models import signals

from sessions_api import db
from sessions_api.ingest import services
from sessions_api.models import DocumentVersion, Session, ToolCallRecord

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def a_session() -> Session:
    body = (
        b'{"id": "db-1", "model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"},'
        b' {"role": "assistant", "content": "hello", "tool_calls": [{"id": "c1",'
        b' "type": "function", "function": {"name": "look", "arguments": "{}"}}]}]}'
    )
    outcome = services.ingest_document(body=body, now=T0)
    return Session.objects.get(id=outcome.id)


def field_values(row: Session) -> dict[str, object]:
    return {f.attname: getattr(row, f.attname) for f in Session._meta.concrete_fields}


@pytest.mark.django_db
def test_select_rows_reads_every_column_as_the_orm_does():
    stored = a_session()
    (row,) = db.select_rows(Session, ("format", "external_id"), (stored.format, "db-1"))
    assert field_values(row) == field_values(stored)
    assert isinstance(row.model_names, list) and row.warnings  # JSON, converted
    assert db.select_rows(Session, ("format", "external_id"), (stored.format, "other")) == []


@pytest.mark.django_db
def test_update_row_writes_only_the_named_columns():
    stored = a_session()
    assert db.update_row(Session, stored.pk, ["title", "expired_at"], ["renamed", T0]) == 1
    row = Session.objects.get(pk=stored.pk)
    assert (row.title, row.expired_at) == ("renamed", T0)
    assert field_values(row) | {"title": stored.title, "expired_at": None} == field_values(stored)


@pytest.mark.django_db
def test_delete_by_ids_deletes_what_the_orm_cascade_deletes():
    stored = a_session()
    assert ToolCallRecord.objects.filter(session_id=stored.id).exists()
    deleted = db.delete_by_ids(Session, [stored.id])
    assert deleted[Session._meta.label] == 1
    assert deleted[ToolCallRecord._meta.label] == 1
    assert deleted[DocumentVersion._meta.label] == 1
    assert not Session.objects.filter(id=stored.id).exists()
    assert not ToolCallRecord.objects.filter(session_id=stored.id).exists()
    assert not DocumentVersion.objects.filter(session_id=stored.id).exists()


@pytest.mark.django_db
def test_delete_by_ids_sends_delete_signals_connected_after_its_first_use():
    db.delete_by_ids(Session, [a_session().id])  # the plain statements, now remembered
    Session.objects.all().delete()
    stored = a_session()
    seen: list[object] = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance.pk)

    signals.pre_delete.connect(receiver, sender=ToolCallRecord)
    try:
        db.delete_by_ids(Session, [stored.id])
    finally:
        signals.pre_delete.disconnect(receiver, sender=ToolCallRecord)
    assert len(seen) == 1  # the collector ran, and sent it for the one tool call
    assert not Session.objects.filter(id=stored.id).exists()
