"""The role matrix on every page and endpoint: viewer reads; editor
edits state; admin deletes, runs jobs, manages prices and keys. API key scopes the same way.
Every refusal is answered 403 and recorded in the audit log."""

from __future__ import annotations

import json
from datetime import date

import pytest
from django.test import Client

from sessions_api.access import roles
from sessions_api.ingest import services
from sessions_api.models import AuditEntry, ModelPrice
from tests.editing.conftest import make_user, openai_chat_body

pytestmark = pytest.mark.django_db

ROLES = ["viewer", "editor", "admin", "superuser", None]  # None: signed in, in no group
CAN = {
    "read": {"viewer", "editor", "admin", "superuser", None},
    "edit": {"editor", "admin", "superuser"},
    "admin": {"admin", "superuser"},
}


@pytest.fixture
def world(db):
    session_id = services.ingest_document(body=openai_chat_body()).id
    price = ModelPrice.objects.create(
        model="gpt-4o", input_per_mtok=1, output_per_mtok=2, effective_from=date(2025, 1, 1)
    )
    return {"session": session_id, "price": price.id}


def login(role: str | None) -> Client:
    client = Client()
    client.force_login(make_user(f"matrix-{role or 'none'}", role))
    return client


def test_role_helper():
    assert roles.key_can(["read"], roles.Capability.READ)
    assert not roles.key_can(["read"], roles.Capability.EDIT)
    assert roles.key_can(["write"], roles.Capability.EDIT)
    assert roles.key_can(["admin"], roles.Capability.EDIT)
    assert not roles.key_can(["write", "ingest"], roles.Capability.ADMIN)


@pytest.mark.parametrize("role", ROLES)
def test_user_roles_and_capabilities(role):
    user = make_user(f"cap-{role or 'none'}", role)
    for capability, allowed in CAN.items():
        assert roles.user_can(user, roles.Capability(capability)) == (role in allowed)


# --- dashboard pages (GET) --------------------------------------------------------------------

READ_PAGES = [
    "/",
    "/sessions/",
    "/sessions/{session}/",
    "/sessions/{session}/raw/",
    "/sessions/{session}/versions/",
    "/errors/",
    "/jobs/",
    "/prices/",
    "/audit/",
]
GUARDED_PAGES = [
    ("/sessions/{session}/edit/", "edit"),
    ("/prices/{price}/edit/", "admin"),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", READ_PAGES)
def test_every_signed_in_role_reads_every_page(world, role, page):
    response = login(role).get(page.format(**world))
    assert response.status_code == 200
    assert not AuditEntry.objects.filter(action="refused").exists()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("page", "capability"), GUARDED_PAGES)
def test_guarded_pages_refuse_and_record(world, role, page, capability):
    response = login(role).get(page.format(**world))
    if role in CAN[capability]:
        assert response.status_code == 200
        assert not AuditEntry.objects.filter(action="refused").exists()
    else:
        assert response.status_code == 403
        refusal = AuditEntry.objects.get(action="refused")
        assert refusal.actor_label == f"user:matrix-{role or 'none'}"


@pytest.mark.parametrize("page", ["/sessions/{session}/edit/", "/audit/"])
def test_anonymous_users_go_to_login(world, page):
    response = Client().get(page.format(**world))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# --- dashboard actions (POST) -----------------------------------------------------------------

ACTIONS = [
    ("edit/save/", {"part": "state", "value": '{"plan": "x"}'}, "edit"),
    ("edit/status/", {"status": "completed"}, "edit"),
    ("edit/expiry/", {"no_expiry": "1"}, "edit"),
    ("edit/hold/", {"on_hold": "1"}, "edit"),
    ("edit/annotations/", {"tags": "a", "notes": ""}, "edit"),
    ("revert/", {"version": "1"}, "edit"),
    ("checkpoints/", {"name": "cp", "version": "1"}, "edit"),
    ("restore/", {"checkpoint": "cp"}, "edit"),
    ("branch/", {"version": "1"}, "edit"),
    ("delete/", {"confirm": "1"}, "admin"),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("path", "fields", "capability"), ACTIONS)
def test_dashboard_actions_by_role(world, role, path, fields, capability):
    client = login(role)
    response = client.post(
        f"/sessions/{world['session']}/{path}",
        {"reason": "matrix", "expected_version": "1", "expected_index_revision": "0", **fields},
    )
    refusals = AuditEntry.objects.filter(action="refused")
    if role in CAN[capability]:
        assert response.status_code in (302, 409), response.status_code
        assert not refusals.exists()
    else:
        assert response.status_code == 403
        refusal = refusals.get()
        assert refusal.actor_label == f"user:matrix-{role or 'none'}"
        assert refusal.session_key == world["session"]
        assert refusal.details["method"] == "POST"


@pytest.mark.parametrize("role", ROLES)
def test_prices_and_jobs_are_for_admins_and_refusals_are_recorded(world, role):
    client = login(role)
    added = client.post(
        "/prices/",
        {
            "model": "claude-x",
            "input_per_mtok": "1",
            "output_per_mtok": "2",
            "effective_from": "2025-02-01",
            "currency": "USD",
        },
    )
    if role in CAN["admin"]:
        assert added.status_code == 302
        assert ModelPrice.objects.filter(model="claude-x").exists()
    else:
        assert added.status_code == 403
        ran = client.post("/jobs/purge_sessions/run/", {"dry_run": "1"})
        assert ran.status_code == 403
        attempts = list(
            AuditEntry.objects.filter(action="refused")
            .order_by("id")
            .values_list("details", flat=True)
        )
        assert [a["path"] for a in attempts] == ["/prices/", "/jobs/purge_sessions/run/"]


# --- API keys ----------------------------------------------------------------------------------

SCOPES = [(), ("read",), ("write",), ("ingest",), ("read", "write"), ("admin",)]
ENDPOINTS = [
    # (method, path, body, headers, capability)
    ("get", "/sessions/{session}/document", None, {}, "read"),
    ("get", "/sessions/{session}/audit", None, {}, "read"),
    ("get", "/sessions/{session}/checkpoints", None, {}, "read"),
    ("put", "/sessions/{session}/document", "document", {"If-Match": '"1"'}, "edit"),
    ("patch", "/sessions/{session}/document", {"state": {"a": 1}}, {"If-Match": '"1"'}, "edit"),
    ("post", "/sessions/{session}/checkpoints", {"name": "cp"}, {}, "edit"),
    ("post", "/sessions/{session}/restore", {"version": 1}, {"If-Match": '"1"'}, "edit"),
    ("post", "/sessions/{session}/branch", {"reason": "r"}, {}, "edit"),
    ("get", "/sessions", None, {}, "read"),
    ("get", "/sessions/{session}", None, {}, "read"),
    ("get", "/sessions/{session}/raw", None, {}, "read"),
    ("get", "/sessions/{session}/timeline", None, {}, "read"),
    ("get", "/sessions/{session}/versions", None, {}, "read"),
    ("post", "/sessions", "new", {}, "ingest"),
    ("delete", "/sessions/{session}", None, {}, "admin"),
]
EDITING_PATHS = ("/document", "/audit", "/checkpoints", "/restore", "/branch")


def _allowed(scopes: tuple[str, ...], capability: str) -> bool:
    if "admin" in scopes:
        return True
    return {"read": "read", "edit": "write", "ingest": "ingest", "admin": "admin"}[
        capability
    ] in scopes


@pytest.mark.parametrize("scopes", SCOPES, ids=lambda s: "+".join(s) or "no-key")
@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "capability"),
    ENDPOINTS,
    ids=[f"{m.upper()} {p}" for m, p, *_ in ENDPOINTS],
)
def test_api_scopes(world, make_api_key, scopes, method, path, body, headers, capability):
    key = make_api_key(*scopes) if scopes else None
    client = Client()
    if body == "document":
        data = openai_chat_body().replace(b"Hello!", b"Hi!")
    elif body == "new":
        data = openai_chat_body("brand-new")
    else:
        data = json.dumps(body).encode() if body is not None else None
    all_headers = {"X-Change-Reason": "matrix", **headers}
    if key:
        all_headers["Authorization"] = f"Bearer {key}"
    kwargs = {"headers": all_headers}
    if data is not None:
        kwargs.update(data=data, content_type="application/json")
    response = getattr(client, method)("/api/v1" + path.format(**world), **kwargs)
    if not scopes:
        assert response.status_code == 401
    elif _allowed(scopes, capability):
        assert response.status_code in (200, 201, 204), (response.status_code, response.content)
    else:
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden"
        if path.endswith(EDITING_PATHS):
            refusal = AuditEntry.objects.get(action="refused")
            assert refusal.actor_label.startswith("key:test (")
            assert refusal.session_key == world["session"]
            assert refusal.details["scope"] in ("read", "write")
