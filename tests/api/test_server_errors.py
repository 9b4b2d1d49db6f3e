"""Forced exceptions with DEBUG off answer without a stack trace or SQL, and carry a
correlation id that is also on the log line (and the X-Request-ID header on every response)."""

from __future__ import annotations

import logging
import re

import pytest
from django.db import ProgrammingError
from django.test import Client

from sessions_api.sessions import selectors

pytestmark = pytest.mark.django_db

LEAKS = re.compile(
    r"Traceback|File \"|\.py\b|SELECT |INSERT |sessions_api_|ProgrammingError|Exception|"
    r"hunter2|DJANGO_SECRET|sqlite|psycopg",
    re.I,
)
SQL_MESSAGE = 'relation "sessions_api_apikey" does not exist LINE 1: SELECT key_hash, hunter2 FROM'


def _explode(*args, **kwargs):
    raise ProgrammingError(SQL_MESSAGE)


def _boom(*args, **kwargs):
    raise RuntimeError("internal detail: password=hunter2 in /srv/app/sessions_api/selectors.py")


@pytest.fixture
def debug_off(settings):
    settings.DEBUG = False
    settings.DEBUG_PROPAGATE_EXCEPTIONS = False


@pytest.mark.parametrize("failure", [_explode, _boom], ids=["sql-error", "runtime-error"])
def test_api_500_has_no_internals_and_quotes_the_request_id(
    api, debug_off, monkeypatch, caplog, failure
):
    monkeypatch.setattr(selectors, "list_sessions", failure)
    with caplog.at_level(logging.ERROR, logger="sessions_api.api"):
        response = api.get("/sessions")
    assert response.status_code == 500
    body = response.content.decode()
    assert not LEAKS.search(body), body
    error = response.json()
    assert error["code"] == "internal_error"
    correlation_id = error["details"]["correlation_id"]
    assert correlation_id == response["X-Request-ID"]
    # The log line of this failure carries the same id and the full traceback (log only).
    logged = [r for r in caplog.records if getattr(r, "correlation_id", None) == correlation_id]
    assert logged and logged[0].exc_info is not None
    assert logged[0].request_id == correlation_id


def test_a_client_supplied_request_id_is_kept_end_to_end(api, debug_off, monkeypatch):
    monkeypatch.setattr(selectors, "list_sessions", _boom)
    response = api.get("/sessions", headers={"X-Request-ID": "lb-trace-0123456789"})
    assert response["X-Request-ID"] == "lb-trace-0123456789"
    assert response.json()["details"]["correlation_id"] == "lb-trace-0123456789"


@pytest.mark.parametrize(
    "incoming", ["short", "x" * 129, "bad id with spaces", "<script>alert(1)</script>", "a\tb" * 5]
)
def test_an_unsafe_request_id_is_replaced(client, incoming):
    response = client.get("/healthz", headers={"X-Request-ID": incoming})
    assert response["X-Request-ID"] != incoming
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_every_response_has_a_request_id(client, api):
    for response in (client.get("/healthz"), client.get("/"), api.get("/sessions")):
        assert re.fullmatch(r"[A-Za-z0-9._:-]{8,128}", response["X-Request-ID"])


def test_dashboard_500_has_no_internals_and_a_request_id(debug_off, monkeypatch, caplog, db):
    from django.contrib.auth.models import User

    from dashboard.views import sessions as session_views

    user = User.objects.create_user("vic", "vic@example.com", "pw-for-tests-123")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    monkeypatch.setattr(session_views, "render", _explode)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.get("/sessions/")
    assert response.status_code == 500
    assert not LEAKS.search(response.content.decode())
    records = [r for r in caplog.records if r.name == "django.request"]
    assert records, "the 500 was not logged"
    assert records[-1].exc_info is not None
    assert records[-1].request_id == response["X-Request-ID"]


def test_unknown_routes_and_methods_are_json_4xx_not_500(api, debug_off):
    assert api.get("/no-such-thing").status_code == 404
    response = api.client.generic("PATCH", "/api/v1/sessions", headers=api._headers())
    assert response.status_code in {404, 405}
