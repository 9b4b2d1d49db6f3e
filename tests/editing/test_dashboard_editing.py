"""The dashboard's editor: pages render, saves make versions, stale forms get the conflict page
with a diff and a working re-apply, revert/checkpoint/restore/branch/delete, the audit page."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client

from sessions_api.editing import annotations, document
from sessions_api.editing import selectors as editing_selectors
from sessions_api.editing.values import Actor, EditRequest
from sessions_api.models import AuditEntry, Session
from sessions_api.sessions import selectors
from tests.editing.conftest import EDITOR, fixture_bytes

pytestmark = pytest.mark.django_db


def latest(session_id: str) -> tuple[int, dict]:
    latest = editing_selectors.get_latest_document(session_id=session_id)
    return latest.version, json.loads(latest.body)


def test_edit_page_shows_the_parts_and_the_current_value(editor_client, picoflow_session):
    response = editor_client.get(f"/sessions/{picoflow_session}/edit/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Step state: Search" in html and "Step state: Book" in html
    assert "Flow context" in html and "Whole document" in html
    assert 'name="expected_version" value="1"' in html
    assert "/static/js/editor.js" in html
    assert "<script>" not in html  # CSP: no inline scripts
    page = editor_client.get(f"/sessions/{picoflow_session}/edit/?part=step:0:1")
    assert "Edit Step state: Book" in page.content.decode()
    whole = editor_client.get(f"/sessions/{picoflow_session}/edit/?part=document")
    assert "&quot;runStatus&quot;: &quot;running&quot;" in whole.content.decode()


def test_saving_a_step_state_makes_a_version_and_an_audit_entry(editor_client, picoflow_session):
    response = editor_client.post(
        f"/sessions/{picoflow_session}/edit/save/",
        {
            "part": "step:0:1",
            "value": '{"turns": 1, "stuck": false}',
            "reason": "clear the stuck flag",
            "expected_version": "1",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == f"/sessions/{picoflow_session}/edit/?part=step:0:1"
    version, doc = latest(picoflow_session)
    assert version == 2
    book = doc["flow"]["steps"][1]["state"]
    assert book["stuck"] is False and "_saveOn" in book
    entry = AuditEntry.objects.get()
    assert entry.actor_label == "user:u-editor" and entry.reason == "clear the stuck flag"
    assert {"op": "add", "path": "/flow/steps/1/state/stuck", "value": False} in entry.diff
    follow = editor_client.get(response["Location"])
    assert "Saved as version 2" in follow.content.decode()


def test_invalid_json_and_invalid_documents_are_refused_with_the_text_kept(
    editor_client, picoflow_session
):
    bad = editor_client.post(
        f"/sessions/{picoflow_session}/edit/save/",
        {"part": "step:0:0", "value": '{"a": 1,', "reason": "r", "expected_version": "1"},
    )
    assert bad.status_code == 422
    assert "Not valid JSON" in bad.content.decode()
    assert "{&quot;a&quot;: 1," in bad.content.decode()
    wrong = editor_client.post(
        f"/sessions/{picoflow_session}/edit/save/",
        {
            "part": "document",
            "value": json.dumps({"id": "edit-me", "runStatus": 5, "flow": {}}),
            "reason": "r",
            "expected_version": "1",
        },
    )
    assert wrong.status_code == 422
    assert "not valid for its format" in wrong.content.decode()
    no_reason = editor_client.post(
        f"/sessions/{picoflow_session}/edit/save/",
        {"part": "step:0:0", "value": "{}", "reason": "", "expected_version": "1"},
    )
    assert no_reason.status_code == 422
    assert selectors.get_session(session_id=picoflow_session).version == 1


def test_a_stale_save_renders_the_conflict_page_and_reapplies(editor_client, chat_session, now):
    # Someone else saves while our editor has version 1 open.
    document.edit_state(
        edit=EditRequest(
            session_id=chat_session, actor=EDITOR, reason="theirs", now=now, expected_version=1
        ),
        part="state",
        value={"plan": "basic", "seats": 5},
    )
    stale = editor_client.post(
        f"/sessions/{chat_session}/edit/save/",
        {
            "part": "state",
            "value": '{"plan": "pro"}',
            "reason": "upgrade",
            "expected_version": "1",
        },
    )
    assert stale.status_code == 409
    html = stale.content.decode()
    assert "changed while you were editing" in html
    assert "version 1" in html and "version 2" in html
    assert 'class="d-add">+  &quot;seats&quot;: 5' in html  # their change, as a diff
    assert 'class="d-add">+  &quot;plan&quot;: &quot;pro&quot;' in html  # mine
    assert 'name="expected_version" value="2"' in html
    # The re-apply form holds my change merged onto theirs.
    merged = re.search(r'<textarea name="value"[^>]*>(.*?)</textarea>', html, re.S).group(1)
    assert json.loads(merged.replace("&quot;", '"')) == {"plan": "pro", "seats": 5}
    assert selectors.get_session(session_id=chat_session).version == 2
    saved = editor_client.post(
        f"/sessions/{chat_session}/edit/save/",
        {
            "part": "state",
            "value": merged.replace("&quot;", '"'),
            "reason": "upgrade",
            "expected_version": "2",
        },
    )
    assert saved.status_code == 302
    assert latest(chat_session)[1]["variables"] == {"plan": "pro", "seats": 5}


def test_small_forms_save_and_conflict(editor_client, picoflow_session, now):
    url = f"/sessions/{picoflow_session}"
    assert (
        editor_client.post(
            f"{url}/edit/status/",
            {"status": "aborted", "reason": "it failed", "expected_version": "1"},
        ).status_code
        == 302
    )
    assert selectors.get_session(session_id=picoflow_session).summary.status == "aborted"
    stale = editor_client.post(
        f"{url}/edit/hold/",
        {"on_hold": "1", "reason": "look", "expected_version": "1", "expected_index_revision": "0"},
    )
    assert stale.status_code == 409
    html = stale.content.decode()
    assert "Apply again" in html and 'name="on_hold" value="1"' in html
    assert (
        editor_client.post(
            f"{url}/edit/hold/",
            {
                "on_hold": "1",
                "reason": "look",
                "expected_version": "2",
                "expected_index_revision": "0",
            },
        ).status_code
        == 302
    )
    assert Session.objects.get(id=picoflow_session).on_hold
    expires = (now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    assert (
        editor_client.post(
            f"{url}/edit/expiry/",
            {
                "expires_at": expires,
                "reason": "two days",
                "expected_version": "2",
                "expected_index_revision": "1",
            },
        ).status_code
        == 302
    )
    assert Session.objects.get(id=picoflow_session).expires_at is not None
    missing = editor_client.post(
        f"{url}/edit/expiry/",
        {"expires_at": "", "reason": "x", "expected_version": "2", "expected_index_revision": "2"},
        follow=True,
    )
    assert "Pick a time" in missing.content.decode()
    assert (
        editor_client.post(
            f"{url}/edit/annotations/",
            {
                "tags": "vip, bug-9",
                "notes": "called",
                "reason": "triage",
                "expected_version": "2",
                "expected_index_revision": "2",
            },
        ).status_code
        == 302
    )
    row = Session.objects.get(id=picoflow_session)
    assert row.tags == ["vip", "bug-9"] and row.notes == "called"
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["edit_status", "hold", "set_expiry", "tag", "note"]


def test_revert_checkpoint_restore_branch_from_the_session_page(editor_client, chat_session, now):
    url = f"/sessions/{chat_session}"
    document.edit_state(
        edit=EditRequest(
            session_id=chat_session, actor=EDITOR, reason="oops", now=now, expected_version=1
        ),
        part="state",
        value={"plan": "broken"},
    )
    page = editor_client.get(f"{url}/")
    html = page.content.decode()
    assert "Edit state" in html and "Revert to an earlier version" in html
    response = editor_client.post(
        f"{url}/checkpoints/", {"name": "good", "version": "1", "note": "", "next": f"{url}/"}
    )
    assert response.status_code == 302 and response["Location"] == f"{url}/"
    response = editor_client.post(
        f"{url}/revert/", {"version": "1", "reason": "undo", "expected_version": "2"}
    )
    assert response.status_code == 302
    assert latest(chat_session)[1]["variables"] == {"plan": "basic"}
    response = editor_client.post(
        f"{url}/restore/", {"checkpoint": "good", "reason": "again", "expected_version": "3"}
    )
    assert response.status_code == 302  # unchanged (already equal) but fine
    response = editor_client.post(
        f"{url}/branch/", {"version": "2", "new_id": "", "reason": "explore"}
    )
    assert response.status_code == 302
    child_id = response["Location"].split("/")[2]
    child = selectors.get_session(session_id=child_id)
    assert child.external_id == "chat-edit-me~branch-1"
    child_page = editor_client.get(f"/sessions/{child_id}/").content.decode()
    assert "Branched from" in child_page and f"/sessions/{chat_session}/" in child_page
    parent_page = editor_client.get(f"{url}/").content.decode()
    assert "Branches:" in parent_page and f"/sessions/{child_id}/" in parent_page
    assert "good" in parent_page  # the checkpoint is listed


def test_only_admins_delete(client_for, chat_session):
    editor = client_for("editor")
    refused = editor.post(f"/sessions/{chat_session}/delete/", {"reason": "go", "confirm": "1"})
    assert refused.status_code == 403
    assert Session.objects.filter(id=chat_session).exists()
    admin = client_for("admin")
    assert "Delete session" in admin.get(f"/sessions/{chat_session}/edit/").content.decode()
    response = admin.post(f"/sessions/{chat_session}/delete/", {"reason": "go", "confirm": "1"})
    assert response.status_code == 302 and response["Location"] == "/sessions/"
    assert not Session.objects.filter(id=chat_session).exists()
    assert AuditEntry.objects.filter(action="delete", actor_label="user:u-admin").exists()
    assert AuditEntry.objects.filter(action="refused", actor_label="user:u-editor").exists()


def test_csrf_is_required_on_every_editing_form(user_for, chat_session):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user_for("admin"))
    for path in (
        "edit/save/",
        "edit/status/",
        "edit/expiry/",
        "edit/hold/",
        "edit/annotations/",
        "revert/",
        "checkpoints/",
        "restore/",
        "branch/",
        "delete/",
    ):
        response = client.post(f"/sessions/{chat_session}/{path}", {"reason": "r"})
        assert response.status_code == 403, path
    assert not AuditEntry.objects.exclude(action="refused").exists()


def test_audit_page_filters(client_for, chat_session, picoflow_session, now):
    viewer = client_for("viewer")
    annotations.set_notes(
        edit=EditRequest(
            session_id=chat_session, actor=EDITOR, reason="note it", now=now, expected_version=1
        ),
        notes="x",
    )
    document.set_hold(
        edit=EditRequest(
            session_id=picoflow_session,
            actor=Actor(label="key:bot (abc)"),
            reason="bot hold",
            now=now + timedelta(minutes=1),
            expected_version=1,
        ),
        on_hold=True,
    )
    page = viewer.get("/audit/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "note it" in html and "bot hold" in html
    assert 'href="/audit/"' in viewer.get("/").content.decode()  # the nav link is back
    only = viewer.get("/audit/", {"session": "chat-edit-me"}).content.decode()
    assert "note it" in only and "bot hold" not in only
    by_actor = viewer.get("/audit/", {"actor": "bot"}).content.decode()
    assert "bot hold" in by_actor and "note it" not in by_actor
    by_action = viewer.get("/audit/", {"action": "note"}).content.decode()
    assert "note it" in by_action and "bot hold" not in by_action
    window = viewer.get(
        "/audit/",
        {"since": (now + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%S")},
    ).content.decode()
    assert "bot hold" in window and "note it" not in window
    assert viewer.get("/audit/", {"since": "yesterday"}).status_code == 400
    assert viewer.get("/audit/", {"action": "nope"}).status_code == 400


def test_read_only_formats_offer_the_whole_document(editor_client, ingest):
    session_id = ingest(fixture_bytes("anthropic/messages_transcript.json"))
    html = editor_client.get(f"/sessions/{session_id}/edit/").content.decode()
    assert "Anthropic transcripts have no state of their own" in html
    assert "Edit Whole document" in html


def test_an_expiry_outside_the_calendar_is_refused_with_a_message(editor_client, picoflow_session):
    response = editor_client.post(
        f"/sessions/{picoflow_session}/edit/expiry/",
        {
            "expires_at": "0001-01-01T00:00:00+14:00",
            "reason": "x",
            "expected_version": "1",
            "expected_index_revision": "0",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "out of range" in response.content.decode()
    assert Session.objects.get(id=picoflow_session).latest_version == 1
