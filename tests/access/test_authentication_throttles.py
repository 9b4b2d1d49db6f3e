"""Guessing is throttled: wrong passwords lock sign-in (per account and per address) with a
plain message, failed API authentications are 429 per address, the password-reset pages exist
only with a mail server, and refused attempts cannot flood the audit log."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client, RequestFactory, override_settings
from django.urls import NoReverseMatch, clear_url_caches, reverse
from django.utils import timezone

from dashboard.forms import accounts as accounts_forms
from sessions_api.access import throttle
from sessions_api.editing.audit import record_refusal
from sessions_api.editing.values import Actor
from sessions_api.models import AuditEntry

pytestmark = pytest.mark.django_db

PASSWORD = "right-password-123"


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("alice", "alice@example.com", PASSWORD)


def sign_in(client: Client, username: str, password: str):
    return client.post("/accounts/login/", {"username": username, "password": password})


@override_settings(LOGIN_FAILURE_LIMIT=5, LOGIN_LOCKOUT_SECONDS=900)
def test_wrong_passwords_lock_the_account_even_for_the_right_one(alice):
    client = Client()
    for _ in range(5):
        response = sign_in(client, "alice", "wrong")
        assert response.status_code == 200 and "_auth_user_id" not in client.session
    locked = sign_in(client, "alice", PASSWORD)
    assert locked.status_code == 200 and "_auth_user_id" not in client.session
    html = locked.content.decode()
    assert "Too many failed sign-ins" in html and "Try again in 15 minutes" in html
    # Another address is locked out of this account too: the count is per account.
    other = Client(REMOTE_ADDR="10.0.0.9")
    sign_in(other, "ALICE", PASSWORD)
    assert "_auth_user_id" not in other.session


@override_settings(LOGIN_FAILURE_LIMIT=5, LOGIN_LOCKOUT_SECONDS=60)
def test_the_lock_ends_with_its_window(alice, monkeypatch):
    start = 1_000_020.0
    monkeypatch.setattr(throttle, "_clock", lambda: start)
    client = Client()
    for _ in range(5):
        sign_in(client, "alice", "wrong")
    sign_in(client, "alice", PASSWORD)
    assert "_auth_user_id" not in client.session
    monkeypatch.setattr(throttle, "_clock", lambda: start + 60)
    sign_in(client, "alice", PASSWORD)
    assert "_auth_user_id" in client.session


@override_settings(LOGIN_FAILURE_LIMIT=5)
def test_a_success_clears_the_account_count(alice):
    client = Client()
    for _ in range(4):
        sign_in(client, "alice", "wrong")
    sign_in(client, "alice", PASSWORD)
    assert "_auth_user_id" in client.session
    client.logout()
    for _ in range(4):
        sign_in(client, "alice", "wrong")
    sign_in(client, "alice", PASSWORD)
    assert "_auth_user_id" in client.session


@override_settings(LOGIN_FAILURE_LIMIT=100, LOGIN_ADDRESS_FAILURE_LIMIT=8)
def test_one_address_trying_many_accounts_is_locked(alice):
    client = Client(REMOTE_ADDR="10.1.1.1")
    for n in range(8):
        sign_in(client, f"guess-{n}", "wrong")
    sign_in(client, "alice", PASSWORD)
    assert "_auth_user_id" not in client.session
    elsewhere = Client(REMOTE_ADDR="10.1.1.2")
    sign_in(elsewhere, "alice", PASSWORD)
    assert "_auth_user_id" in elsewhere.session


@override_settings(LOGIN_FAILURE_LIMIT=3)
def test_the_admin_sign_in_is_throttled_too(alice):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    client = Client()
    for _ in range(3):
        client.post("/admin/login/", {"username": "alice", "password": "wrong"})
    response = client.post("/admin/login/", {"username": "alice", "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    assert "Too many failed sign-ins" in response.content.decode()


def _reload_urls() -> None:
    import config.urls

    clear_url_caches()
    importlib.reload(config.urls)


@pytest.fixture
def urls_without_mail():
    yield
    _reload_urls()


def test_no_password_reset_pages_without_a_mail_server(urls_without_mail):
    with override_settings(EMAIL_HOST=""):
        _reload_urls()
        assert Client().get("/accounts/password_reset/").status_code == 404
        with pytest.raises(NoReverseMatch):
            reverse("password_reset")


def test_password_reset_answers_alike_for_known_and_unknown_addresses(
    alice, urls_without_mail, monkeypatch
):
    later: list = []
    monkeypatch.setattr(accounts_forms, "run_later", later.append)
    with override_settings(
        EMAIL_HOST="mail.example.com",
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    ):
        _reload_urls()
        client = Client()
        page = client.get("/accounts/password_reset/")
        assert page.status_code == 200 and b'name="email"' in page.content
        known = client.post("/accounts/password_reset/", {"email": "alice@example.com"})
        unknown = client.post("/accounts/password_reset/", {"email": "nobody@example.com"})
        assert known.status_code == unknown.status_code == 302
        assert known["Location"] == unknown["Location"] == "/accounts/password_reset/done/"
        # Both answers came before any lookup or mail: same work for either address.
        assert mail.outbox == [] and len(later) == 2
        for work in later:
            work()
        assert [m.to for m in mail.outbox] == [["alice@example.com"]]


@override_settings(API_AUTH_FAILURE_LIMIT=5)
def test_failed_api_authentication_is_throttled_per_address(make_api_key):
    good = make_api_key("read")
    attacker = Client(REMOTE_ADDR="10.2.2.2")
    for n in range(5):
        response = attacker.get(
            "/api/v1/sessions", headers={"Authorization": f"Bearer so_guess{n}_nothing"}
        )
        assert response.status_code == 401
    refused = attacker.get("/api/v1/sessions", headers={"Authorization": f"Bearer {good}"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert "failed authentications" in refused.json()["message"]
    other = Client(REMOTE_ADDR="10.2.2.3")
    ok = other.get("/api/v1/sessions", headers={"Authorization": f"Bearer {good}"})
    assert ok.status_code == 200


@override_settings(AUDIT_REFUSALS_PER_MINUTE=5)
def test_refusals_are_listed_up_to_the_limit_then_counted(monkeypatch):
    now = timezone.now().replace(second=1, microsecond=0)
    bot = Actor(label="key:read-only (abc)")
    for _ in range(100):
        record_refusal(actor=bot, attempted="POST /api/v1/sessions", message="no", now=now)
    person = Actor(label="user:bob")
    assert record_refusal(actor=person, attempted="edit", message="no", now=now) is not None
    assert AuditEntry.objects.filter(actor_label=bot.label).count() == 5
    later = now + timedelta(minutes=1)
    record_refusal(actor=bot, attempted="POST /api/v1/sessions", message="no", now=later)
    entries = AuditEntry.objects.filter(actor_label=bot.label).order_by("id")
    assert entries.count() == 6
    assert entries.last().details["unlisted_refusals"] == 95
    admin = User.objects.create_superuser("auditor", "auditor@example.com", PASSWORD)
    client = Client()
    client.force_login(admin)
    page = client.get("/audit/").content.decode()
    assert "+95 more refused before, counted but not listed" in page


@override_settings(AUDIT_REFUSALS_PER_MINUTE=5)
def test_a_read_only_key_cannot_push_real_entries_off_the_audit_page(make_api_key, client):
    key = make_api_key("read")
    for _ in range(60):
        client.put(
            "/api/v1/sessions/00000000-0000-0000-0000-000000000000/document",
            data=b"{}",
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}", "If-Match": '"1"'},
        )
    assert AuditEntry.objects.filter(action="refused").count() == 5


def test_behind_trusted_proxies_the_forwarded_address_is_counted():
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7"
    )
    assert throttle.client_address(request) == "10.0.0.1"
    with override_settings(TRUSTED_PROXY_HOPS=1):
        # The client wrote 6.6.6.6 itself; our proxy saw 203.0.113.7.
        assert throttle.client_address(request) == "203.0.113.7"
    with override_settings(TRUSTED_PROXY_HOPS=3):
        assert throttle.client_address(request) == "10.0.0.1"
