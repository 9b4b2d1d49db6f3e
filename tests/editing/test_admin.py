"""The Django admin: admins edit sessions through the editing services (reason, expected
version, new version, audit); the audit log and checkpoints are read-only there."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone

from sessions_api.editing import annotations, document
from sessions_api.editing import selectors as editing_selectors
from sessions_api.editing.values import EditRequest
from sessions_api.models import AuditEntry
from tests.editing.conftest import EDITOR, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(make_user("boss", "admin"))  # group admin + is_staff
    return client


def change_url(session_id: str) -> str:
    return f"/admin/sessions_api/session/{session_id}/change/"


def form_data(client: Client, session_id: str, **overrides: str) -> dict[str, str]:
    form = client.get(change_url(session_id)).context["adminform"].form
    data = {name: form.initial.get(name, "") for name in form.fields}
    data["hold"] = "on" if form.initial.get("hold") else ""
    data.update(overrides)
    return {k: v for k, v in data.items() if v not in (None, False)}


def test_admin_edits_state_through_the_editing_service(admin_client, chat_session):
    response = admin_client.get(change_url(chat_session))
    assert response.status_code == 200
    data = form_data(
        admin_client,
        chat_session,
        part="state",
        value=json.dumps({"plan": "enterprise"}),
        reason="sales upgrade",
        tags_text="vip",
    )
    response = admin_client.post(change_url(chat_session), data)
    assert response.status_code == 302, response.content[:500]
    latest = editing_selectors.get_latest_document(session_id=chat_session)
    assert latest.version == 2
    assert json.loads(latest.body)["variables"] == {"plan": "enterprise"}
    actions = sorted(
        AuditEntry.objects.filter(actor_label="user:boss").values_list("action", flat=True)
    )
    assert actions == ["edit_state", "tag"]


def test_admin_form_refuses_a_stale_version_and_a_missing_reason(admin_client, chat_session, now):
    data = form_data(admin_client, chat_session, value=json.dumps({"plan": "x"}), reason="r")
    annotations.set_notes(
        edit=EditRequest(
            session_id=chat_session, actor=EDITOR, reason="r", now=now, expected_version=1
        ),
        notes="n",
    )
    document.edit_state(
        edit=EditRequest(
            session_id=chat_session, actor=EDITOR, reason="r", now=now, expected_version=1
        ),
        part="state",
        value={"plan": "y"},
    )
    stale = admin_client.post(change_url(chat_session), data)
    assert stale.status_code == 200 and "changed meanwhile" in stale.content.decode()
    no_reason = admin_client.post(
        change_url(chat_session), {**form_data(admin_client, chat_session), "reason": ""}
    )
    assert no_reason.status_code == 200 and "This field is required" in no_reason.content.decode()
    assert editing_selectors.get_latest_document(session_id=chat_session).version == 2


def test_admin_invalid_document_is_not_saved(admin_client, chat_session):
    data = form_data(admin_client, chat_session, value="[1, 2]", reason="break it")
    response = admin_client.post(change_url(chat_session), data, follow=True)
    assert "Not saved" in response.content.decode()
    assert editing_selectors.get_latest_document(session_id=chat_session).version == 1


def test_only_admins_use_the_admin_and_audit_rows_are_read_only(admin_client, chat_session):
    editor = Client()
    user = make_user("staff-editor", "editor")
    user.is_staff = True
    user.save()
    editor.force_login(user)
    assert editor.get(change_url(chat_session)).status_code in (302, 403)
    annotations.set_notes(
        edit=EditRequest(
            session_id=chat_session,
            actor=EDITOR,
            reason="r",
            now=timezone.now(),
            expected_version=1,
        ),
        notes="n",
    )
    entry = AuditEntry.objects.get(action="note")
    page = admin_client.get(f"/admin/sessions_api/auditentry/{entry.id}/change/")
    assert page.status_code == 200
    assert 'name="reason"' not in page.content.decode()  # read only
    assert admin_client.get("/admin/sessions_api/auditentry/add/").status_code == 403
    assert (
        admin_client.post(f"/admin/sessions_api/auditentry/{entry.id}/delete/").status_code == 403
    )
