"""The demo data set, its commands and bin/run's help."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from io import StringIO
from itertools import pairwise
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from sessions_api.demo import scenarios as demo
from sessions_api.formats import parse_document
from sessions_api.models import DocumentVersion, Session

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 5, 20, 15, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def documents() -> list[demo.DemoDocument]:
    return demo.generate_documents(now=NOW, count=30, seed=7)


def test_generator_is_deterministic_for_a_seed_and_a_time(documents):
    again = demo.generate_documents(now=NOW, count=30, seed=7)
    assert [d.body for d in again] == [d.body for d in documents]
    other_seed = demo.generate_documents(now=NOW, count=30, seed=8)
    assert [d.body for d in other_seed] != [d.body for d in documents]


def test_documents_arrive_within_the_window_and_some_in_the_last_hour(documents):
    times = [d.received_at for d in documents]
    assert times == sorted(times)
    assert all(NOW - timedelta(days=demo.DEFAULT_DAYS) <= t <= NOW for t in times)
    assert sum(t >= NOW - timedelta(hours=1) for t in times) >= 3


def test_documents_cover_every_shape_with_special_cases(documents):
    assert {d.variant for d in documents} == {"v1-ext", "v1-plain", "v1.5", "chat-completions"}
    bodies = [d.body.decode("utf-8") for d in documents]
    assert any(demo.XSS_SCRIPT in b and demo.XSS_IMG in b for b in bodies)
    assert any(not b.isascii() for b in bodies)
    # the ~2,000-message session
    longest = max(documents, key=lambda d: len(d.body))
    messages = parse_document(json.loads(longest.body))[1].session.messages
    assert 1900 <= len(messages) <= 2100


def test_every_document_is_detected_as_its_own_format(documents):
    for document in documents:
        detection, parsed = parse_document(json.loads(document.body))
        assert detection.format_id == document.format_id
        assert parsed.session.external_id == document.key


def test_a_later_version_extends_the_earlier_one(documents):
    def parse(document: demo.DemoDocument):
        return parse_document(json.loads(document.body))[1].session.messages

    versions: dict[str, list[demo.DemoDocument]] = {}
    for document in documents:
        versions.setdefault(document.key, []).append(document)
    several = [v for v in versions.values() if len(v) > 1]
    assert several
    for saves in several:
        messages = [[(m.external_id, m.role, m.content_text) for m in parse(d)] for d in saves]
        for earlier, later in pairwise(messages):
            assert len(earlier) < len(later)
            assert all(message in later for message in earlier)


def test_load_demo_ingests_everything_with_versions(db):
    result = demo.load_demo(now=NOW, count=30, seed=7)

    assert not result.skipped
    assert result.sessions_created == 30
    assert result.unchanged == 0
    assert set(result.sessions_by_format) == {"picoflow", "openai_chat"}
    assert sum(result.sessions_by_format.values()) == 30
    assert result.versions_added == DocumentVersion.objects.filter(source="demo").count()
    assert max(result.versions_by_session) >= 2

    assert Session.objects.count() == 30
    variants = Counter(Session.objects.values_list("format_variant", flat=True))
    assert set(variants) == {"v1-ext", "v1-plain", "v1.5", "chat-completions"}
    statuses = set(Session.objects.filter(format="picoflow").values_list("status", flat=True))
    assert {"completed", "running"} <= statuses
    assert Session.objects.filter(latest_version__gte=2).exists()
    assert Session.objects.filter(message_count__gte=200).count() >= 3
    assert Session.objects.filter(tool_error_count__gt=0).exists()
    assert Session.objects.filter(updated_at__gte=NOW - timedelta(hours=1)).exists()
    assert not Session.objects.filter(updated_at__gt=NOW).exists()


def test_a_second_load_does_nothing_and_reset_replaces_the_demo_sessions(db):
    first = demo.load_demo(now=NOW, count=6, seed=3)
    again = demo.load_demo(now=NOW + timedelta(days=1), count=6, seed=3)
    assert again.skipped
    assert again.existing_sessions == first.sessions_created
    assert Session.objects.count() == first.sessions_created

    reset = demo.load_demo(now=NOW + timedelta(days=1), count=6, seed=3, reset=True)
    assert reset.deleted_sessions == first.sessions_created
    assert reset.sessions_created == 6
    assert Session.objects.count() == 6


def test_load_demo_command_prints_a_summary(db):
    out = StringIO()
    call_command("load_demo", "--count", "6", "--seed", "5", stdout=out)
    assert "6 sessions created" in out.getvalue()
    assert "by format:" in out.getvalue()

    out = StringIO()
    call_command("load_demo", "--count", "6", stdout=out)
    assert "already loaded (6 sessions)" in out.getvalue()


def test_ensure_roles_creates_the_three_groups_once(db):
    call_command("ensure_roles", stdout=StringIO())
    call_command("ensure_roles", stdout=StringIO())
    assert sorted(Group.objects.values_list("name", flat=True)) == ["admin", "editor", "viewer"]


def test_bin_run_help_exits_zero_from_any_directory(tmp_path):
    done = subprocess.run(
        [str(ROOT / "bin" / "run"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "--reset-demo" in done.stdout
    assert "PORT" in done.stdout
    assert not (tmp_path / "var").exists()


@pytest.mark.slow
def test_bin_run_serves_the_demo_in_production_mode_and_stops_its_children(tmp_path):
    """The README's first command, end to end: it comes up on the given port with DEBUG off and a
    generated secret kept private, answers, and Ctrl-C (SIGINT) leaves no process behind."""
    import os
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(DATA_DIR=str(tmp_path / "data"), PORT=str(port), PYTHONUNBUFFERED="1")
    log = (tmp_path / "run.log").open("w+")
    proc = subprocess.Popen(
        [str(ROOT / "bin" / "run"), "--no-install"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while "is running" not in (tmp_path / "run.log").read_text():
            assert proc.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()
            time.sleep(0.5)
        secret = tmp_path / "data" / "secret-key"
        assert secret.stat().st_mode & 0o777 == 0o600
        assert len(secret.read_text().strip()) >= 50
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as answer:
            assert answer.status == 200
        # DEBUG off: an unknown page is the plain 404, not Django's debug page.
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/no-such-page/", timeout=10)
        assert missing.value.code == 404
        assert b"Django tried these URL patterns" not in missing.value.read()
        # Plain HTTP on loopback: no redirect to https, cookies usable without TLS.
        with urllib.request.urlopen(f"{base}/accounts/login/", timeout=10) as login:
            assert login.url.startswith("http://")
            assert "secure" not in (login.headers.get("Set-Cookie") or "").lower()
        web_log = (tmp_path / "data" / "log" / "web.log").read_text()
        assert '"logger":"observatory.access"' in web_log
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        log.close()
    assert proc.returncode == 0
    run_dir = tmp_path / "data"
    leftover = subprocess.run(
        ["pgrep", "-f", str(run_dir)], capture_output=True, text=True
    ).stdout.split()
    assert leftover == [], leftover
