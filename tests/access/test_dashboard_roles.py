"""Dashboard roles. A viewer trying an editor's or an admin's action, and an editor trying
an admin's, is refused (403), and nothing changes. Covered here: the price table, the jobs page
(run now, retry, preview) and the Django admin. The session-editing actions and the audit of
refused attempts are covered by tests/editing/test_roles.py.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from sessions_api.analytics import pricing
from sessions_api.models import JobRun, ModelPrice
from workers import dispatch
from workers import runs as jobs

pytestmark = pytest.mark.django_db


def login(role: str | None, *, superuser: bool = False) -> Client:
    user = User.objects.create_user(f"user-{role}", f"{role}@example.com", "pw-for-tests-123")
    if superuser:
        user.is_superuser = user.is_staff = True
        user.save()
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def price() -> ModelPrice:
    saved = pricing.save_price(
        model="gpt-4o",
        input_per_mtok=Decimal("2.50"),
        cached_input_per_mtok=Decimal("1.25"),
        output_per_mtok=Decimal("10.00"),
        effective_from=date(2025, 1, 1),
    )
    return ModelPrice.objects.get(pk=saved.id)


@pytest.fixture
def failed_run() -> JobRun:
    run = jobs.request_run(job="expire_sessions", dry_run=False, triggered_by="test")
    JobRun.objects.filter(pk=run.id).update(status="failed", error="boom")
    return JobRun.objects.get(pk=run.id)


@pytest.fixture
def no_broker(monkeypatch):
    sent = []
    monkeypatch.setattr(dispatch, "dispatch_run", lambda *, run_id: sent.append(run_id))
    return sent


NEW_PRICE = {
    "model": "claude-sonnet-4",
    "input_per_mtok": "3.00",
    "cached_input_per_mtok": "0.30",
    "output_per_mtok": "15.00",
    "effective_from": "2025-01-01",
    "currency": "USD",
    "notes": "",
}


def admin_actions(price: ModelPrice, run: JobRun) -> list[tuple[str, str, dict]]:
    return [
        ("post", "/prices/", NEW_PRICE),
        ("get", f"/prices/{price.id}/edit/", {}),
        ("post", f"/prices/{price.id}/edit/", {**NEW_PRICE, "model": "gpt-4o"}),
        ("post", "/jobs/expire_sessions/run/", {}),
        ("post", "/jobs/purge_sessions/run/", {"confirm": "yes"}),
        ("post", "/jobs/purge_sessions/run/", {"dry_run": "1"}),
        ("post", f"/jobs/runs/{run.id}/retry/", {}),
    ]


@pytest.mark.parametrize("role", ["viewer", "editor", None], ids=["viewer", "editor", "no-group"])
def test_non_admins_are_refused_every_admin_action(role, price, failed_run, no_broker):
    client = login(role)
    prices_before = list(ModelPrice.objects.values_list("model", "input_per_mtok"))
    runs_before = JobRun.objects.count()
    for method, path, data in admin_actions(price, failed_run):
        response = getattr(client, method)(path, data)
        assert response.status_code == 403, (role, method, path, response.status_code)
    assert list(ModelPrice.objects.values_list("model", "input_per_mtok")) == prices_before
    assert JobRun.objects.count() == runs_before
    assert no_broker == []


@pytest.mark.parametrize("superuser", [False, True], ids=["admin-group", "superuser"])
def test_admins_may_do_them(superuser, price, failed_run, no_broker):
    client = login(None if superuser else "admin", superuser=superuser)
    assert client.post("/prices/", NEW_PRICE).status_code == 302
    assert client.get(f"/prices/{price.id}/edit/").status_code == 200
    assert client.post("/jobs/expire_sessions/run/", {}).status_code == 302
    assert client.post(f"/jobs/runs/{failed_run.id}/retry/", {}).status_code == 302
    assert len(no_broker) == 2


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_dashboard_roles_do_not_open_the_django_admin(role):
    client = login(role)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert client.get("/admin/sessions_api/apikey/").status_code == 302


def test_anonymous_users_are_sent_to_login_for_every_admin_action(price, failed_run, no_broker):
    client = Client()
    for method, path, data in admin_actions(price, failed_run):
        response = getattr(client, method)(path, data)
        assert response.status_code == 302, (method, path)
        assert response["Location"].startswith("/accounts/login/")
