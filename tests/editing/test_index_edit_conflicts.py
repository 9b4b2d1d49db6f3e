"""Index-only edits (tags, notes, hold, an index expiry) add no document version, yet of several
editors saving from the same form exactly one wins: the index revision stales the others, which
get the conflict page (never a silent overwrite)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client

from sessions_api.editing import annotations, document
from sessions_api.editing.values import EditRequest
from sessions_api.errors import IndexConflict
from sessions_api.models import AuditEntry, Session
from tests.editing.conftest import EDITOR, make_user
from tests.ingest.test_concurrent_ingest import shared_database

pytestmark = pytest.mark.django_db


def _edit(session_id: str, now, *, index_revision: int | None) -> EditRequest:
    return EditRequest(
        session_id=session_id,
        actor=EDITOR,
        reason="triage",
        now=now,
        expected_version=1,
        expected_index_revision=index_revision,
    )


def test_a_stale_index_revision_is_refused_with_what_changed(chat_session, now):
    annotations.set_tags(edit=_edit(chat_session, now, index_revision=0), tags=["first"])
    with pytest.raises(IndexConflict) as refused:
        annotations.set_notes(edit=_edit(chat_session, now, index_revision=0), notes="mine")
    assert refused.value.current_index_revision == 1
    assert refused.value.changes[0]["path"] == "/session/tags"
    assert refused.value.changes[0]["value"] == ["first"]
    assert refused.value.changes[0]["value_text"] == "first"
    assert refused.value.changes[0]["old_text"] == "(none)"
    assert refused.value.changes[0]["actor"] == EDITOR.label
    row = Session.objects.get(id=chat_session)
    assert row.notes == "" and row.tags == ["first"] and row.index_revision == 1


def test_every_index_edit_moves_the_revision(chat_session, now):
    outcome = document.set_hold(edit=_edit(chat_session, now, index_revision=0), on_hold=True)
    assert outcome.index_revision == 1
    outcome = document.set_expiry(
        edit=_edit(chat_session, now, index_revision=1), expires_at=now + timedelta(days=1)
    )
    assert outcome.index_revision == 2
    unchanged = document.set_hold(edit=_edit(chat_session, now, index_revision=2), on_hold=True)
    assert not unchanged.changed and unchanged.index_revision == 2


def test_a_stale_tags_form_gets_the_conflict_page(editor_client, chat_session):
    url = f"/sessions/{chat_session}/edit/annotations/"
    form = {"notes": "", "reason": "r", "expected_version": "1", "expected_index_revision": "0"}
    assert editor_client.post(url, {**form, "tags": "newer"}).status_code == 302
    stale = editor_client.post(url, {**form, "tags": "older"})
    assert stale.status_code == 409
    html = stale.content.decode()
    assert "tags, notes, hold or expiry changed" in html
    assert 'name="expected_index_revision" value="1"' in html and "Apply again" in html
    assert Session.objects.get(id=chat_session).tags == ["newer"]


def test_the_editor_page_sends_the_index_revision(editor_client, chat_session):
    html = editor_client.get(f"/sessions/{chat_session}/edit/").content.decode()
    assert html.count('name="expected_index_revision" value="0"') == 3


def test_a_form_without_the_index_revision_saves_nothing(editor_client, chat_session):
    response = editor_client.post(
        f"/sessions/{chat_session}/edit/hold/",
        {"on_hold": "1", "reason": "r", "expected_version": "1"},
    )
    assert response.status_code == 302
    assert not Session.objects.get(id=chat_session).on_hold


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("field", ["tags", "notes", "hold"])
def test_eight_editors_from_the_same_form_exactly_one_wins(tmp_path, chat_session, field):
    users = [make_user(f"racer-{field}-{n}", "editor") for n in range(8)]
    with shared_database(tmp_path):
        clients = []
        for user in users:
            client = Client()
            client.force_login(user)
            clients.append(client)

        def save(n: int) -> int:
            values = {
                "tags": {"tags": f"t{n}", "notes": ""},
                "notes": {"tags": "", "notes": f"note {n}"},
                "hold": {"on_hold": "1"},
            }[field]
            path = "annotations" if field != "hold" else "hold"
            try:
                return (
                    clients[n]
                    .post(
                        f"/sessions/{chat_session}/edit/{path}/",
                        {
                            **values,
                            "reason": "race",
                            "expected_version": "1",
                            "expected_index_revision": "0",
                        },
                    )
                    .status_code
                )
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = sorted(pool.map(save, range(8)))
        row = Session.objects.get(id=chat_session)
        assert statuses == [302] + [409] * 7, statuses
        assert row.index_revision == 1
        assert AuditEntry.objects.filter(session=row).exclude(action="refused").count() == 1
