"""The production settings: `check --deploy` is clean, no secret has a default, the
secure cookies, HSTS and CSP are on, logs are JSON with a correlation id.

Settings are read in a subprocess with the production environment (DJANGO_DEBUG=0), exactly
as a deployment starts, because they are evaluated once per process.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import secrets
import subprocess
import sys

import pytest

from config.logging import JsonFormatter, RequestContextFilter, redact, request_id_var
from tests.support.live_processes import ROOT, base_env

PYTHON = sys.executable
REAL_SECRET = secrets.token_urlsafe(60)


def prod_env(**extra: str) -> dict[str, str]:
    return base_env(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=REAL_SECRET,
        DJANGO_ALLOWED_HOSTS="observatory.example.com",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://observatory.example.com",
        **extra,
    )


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def production_settings(tmp_path, **extra: str) -> dict:
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "names = ['DEBUG', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE',"
        " 'SESSION_COOKIE_HTTPONLY', 'SECURE_HSTS_SECONDS', 'SECURE_SSL_REDIRECT',"
        " 'SECURE_CONTENT_TYPE_NOSNIFF',"
        " 'X_FRAME_OPTIONS', 'MIDDLEWARE', 'LOG_FORMAT', 'ACCESS_LOG', 'API_RATE_LIMIT',"
        " 'SESSION_COOKIE_SAMESITE', 'CSRF_COOKIE_SAMESITE', 'SECURE_REDIRECT_EXEMPT', 'CACHES',"
        " 'DOCUMENT_STORE']; "
        "print(json.dumps({n: getattr(s, n, None) for n in names}, default=str))"
    )
    result = run_python(code, prod_env(DATA_DIR=str(tmp_path), **extra))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- check --deploy -----------------------------------------------------------------------------


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    """Not one warning, at the strictest fail level."""
    result = subprocess.run(
        [PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=prod_env(DATA_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)" in result.stdout


def test_check_deploy_is_clean_with_the_compose_stack_settings(tmp_path):
    """The same with what docker-compose.yml sets: PostgreSQL, the mongo store and Redis URLs
    (the check touches none of them)."""
    result = subprocess.run(
        [PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=prod_env(
            DATA_DIR=str(tmp_path),
            DATABASE_URL="postgresql://observatory:pw@127.0.0.1:1/observatory",
            SESSION_STORE="mongo",
            MONGODB_URL="mongodb://observatory:pw@127.0.0.1:1/?authSource=admin",
            REDIS_URL="redis://127.0.0.1:1/0",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "secret",
    [None, "", "short-secret", "dev-only-insecure-secret-key-change-me-in-production-0123456789"],
    ids=["unset", "empty", "short", "the-dev-default"],
)
def test_production_refuses_to_start_without_a_real_secret(tmp_path, secret):
    env = prod_env(DATA_DIR=str(tmp_path))
    env.pop("DJANGO_SECRET_KEY")
    if secret is not None:
        env["DJANGO_SECRET_KEY"] = secret
    result = run_python("import django; django.setup()", env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


SECRETISH = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|_KEY$|CREDENTIAL", re.I)


def test_no_secret_setting_has_a_default():
    """Every os.environ.get / env_* of a secret-looking name in settings.py has no default
    (or an empty one); the dev-only SECRET_KEY fallback exists only when DEBUG is on, which
    the test above proves production refuses."""
    tree = ast.parse((ROOT / "config" / "settings.py").read_text())
    offenders = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name_node = node.args[0]
        if not (isinstance(name_node, ast.Constant) and isinstance(name_node.value, str)):
            continue
        func = ast.unparse(node.func)
        if func not in {"os.environ.get", "os.getenv", "env_int", "env_bool"}:
            continue
        if SECRETISH.search(name_node.value) and len(node.args) > 1:
            default = node.args[1]
            if not (isinstance(default, ast.Constant) and default.value in ("", None)):
                offenders.append(name_node.value)
    assert offenders == []


def test_production_turns_on_secure_cookies_hsts_and_csp(tmp_path):
    values = production_settings(tmp_path)
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["SESSION_COOKIE_SAMESITE"] in {"Lax", "Strict"}
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert values["X_FRAME_OPTIONS"] == "DENY"
    middleware = values["MIDDLEWARE"]
    assert middleware[0] == "config.middleware.RequestIdMiddleware"
    assert "dashboard.middleware.ContentSecurityPolicyMiddleware" in middleware
    assert "django.middleware.csrf.CsrfViewMiddleware" in middleware
    # Health probes from a load balancer come over plain HTTP inside the network.
    assert {"^healthz$", "^readyz$"} <= set(values["SECURE_REDIRECT_EXEMPT"])


def test_a_plain_http_trial_turns_off_only_what_it_names(tmp_path):
    """bin/run on loopback: no https redirect and cookies usable over HTTP, still DEBUG off."""
    values = production_settings(
        tmp_path, DJANGO_SECURE_SSL_REDIRECT="0", DJANGO_SECURE_COOKIES="0"
    )
    assert values["DEBUG"] is False
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SESSION_COOKIE_SECURE"] is False
    assert values["CSRF_COOKIE_SECURE"] is False
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["LOG_FORMAT"] == "json"


def test_production_logs_json_with_an_access_line(tmp_path):
    values = production_settings(tmp_path)
    assert values["LOG_FORMAT"] == "json"
    assert values["ACCESS_LOG"] is True
    assert values["API_RATE_LIMIT"] > 0


def test_redis_cache_and_mongo_store_have_short_timeouts(tmp_path):
    values = production_settings(
        tmp_path,
        REDIS_URL="redis://127.0.0.1:1/0",
        SESSION_STORE="mongo",
        MONGODB_URL="mongodb://127.0.0.1:1/",
    )
    cache = values["CACHES"]["default"]
    assert cache["BACKEND"] == "config.cache.ResilientRedisCache"
    assert cache["OPTIONS"]["socket_connect_timeout"] <= 2
    assert cache["OPTIONS"]["socket_timeout"] <= 2
    options = values["DOCUMENT_STORE"]["OPTIONS"]
    assert options["server_selection_timeout_ms"] < 2000  # 503 within 2 s when MongoDB is down


def test_csp_and_cookie_flags_on_a_real_response(client, admin_user_for_login):
    response = client.post(
        "/accounts/login/", {"username": "opsadmin", "password": "pw-for-tests-123"}
    )
    assert response.status_code == 302
    policy = response["Content-Security-Policy"]
    for directive in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in policy
    session_cookie = response.cookies["sessionid"]
    assert session_cookie["httponly"]
    assert session_cookie["samesite"] == "Lax"


@pytest.fixture
def admin_user_for_login(db):
    from django.contrib.auth.models import User

    return User.objects.create_user("opsadmin", "ops@example.com", "pw-for-tests-123")


# --- structured logs --------------------------------------------------------------------------


def _record(message: str, *args, **extra) -> logging.LogRecord:
    record = logging.LogRecord("observatory.test", logging.ERROR, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_formatter_writes_one_line_with_the_request_id_and_extras():
    token = request_id_var.set("req-123456789")
    try:
        record = _record("ingest %s", "failed", status=503)
        RequestContextFilter().filter(record)
        line = JsonFormatter().format(record)
    finally:
        request_id_var.reset(token)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "ingest failed"
    assert entry["request_id"] == "req-123456789"
    assert entry["status"] == 503
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "observatory.test"


def test_json_formatter_keeps_the_traceback_in_the_log_only():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = _record("unhandled")
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert "RuntimeError: boom" in entry["exc"]


@pytest.mark.parametrize(
    ("text", "hidden", "kept"),
    [
        ("key so_0123456789ab_SECRETSECRETSECRET-_x used", "SECRETSECRET", "so_0123456789ab_***"),
        (
            "postgresql://observatory:hunter2@db:5432/x",
            "hunter2",
            "postgresql://observatory:***@db",
        ),
        ("mongodb://u:p%40ss@m1:27017,m2:27017/?authSource=admin", "p%40ss", "m1:27017,m2"),
        ("host=db password=hunter2 dbname=x", "hunter2", "password=***"),
    ],
)
def test_secrets_are_redacted_from_log_lines(text, hidden, kept):
    record = _record(text)
    RequestContextFilter().filter(record)
    line = JsonFormatter().format(record)
    assert hidden not in line
    assert kept in line
    assert hidden not in redact(text)
