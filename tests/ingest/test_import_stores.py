"""manage.py import_sessions on the session stores users have: OpenAI Agents SQLiteSession and
Google ADK SqliteSessionService/DatabaseSessionService files, and multi-session JSON dumps.

Counts come from tests/fixtures/manifest.json (what the real libraries wrote)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from sessions_api.ingest import importing
from sessions_api.models import DocumentVersion, Session
from tests.conftest import FIXTURES

pytestmark = pytest.mark.django_db

MANIFEST = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))
AGENTS_DB = FIXTURES / "openai_agents" / "agents_session.sqlite"
ADK_SQLITE_DB = FIXTURES / "google_adk" / "adk_sessions.sqlite"
ADK_DATABASE_DB = FIXTURES / "google_adk" / "adk_database_sessions.sqlite"


def manifest_sessions(path: Path) -> list[dict[str, Any]]:
    relative = path.relative_to(FIXTURES).as_posix()
    return next(e for e in MANIFEST["fixtures"] if e["path"] == relative)["sessions"]


def adk_key(expected: dict[str, Any]) -> str:
    return f"{expected['app_name']}/{expected['user_id']}/{expected['external_id']}"


def _command(capsys, args: tuple[str, ...], *, fails: bool) -> str:
    out, err = StringIO(), StringIO()
    if fails:
        with pytest.raises(CommandError, match="failed"):
            call_command("import_sessions", *args, stdout=out, stderr=err)
    else:
        call_command("import_sessions", *args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


@pytest.fixture
def run(capsys) -> Callable[..., str]:
    """import_sessions ARGS...; all it printed (summary and per-file lines)."""
    return lambda *args: _command(capsys, args, fails=False)


@pytest.fixture
def run_failing(capsys) -> Callable[..., str]:
    """import_sessions ARGS... that must end with "N document(s) failed"."""
    return lambda *args: _command(capsys, args, fails=True)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def folder_state(folder: Path) -> dict[str, str]:
    """Every file in a folder with its hash: an import must leave no trace (no -wal/-shm)."""
    return {p.name: digest(p) for p in sorted(folder.iterdir()) if p.is_file()}


# ------------------------------------------------------------------------ OpenAI Agents file


def test_agents_sqlite_file_imports_every_session_and_a_rerun_imports_nothing(tmp_path: Path, run):
    # A copy in a folder of its own, so that "nothing else appears beside it" is checkable.
    database = tmp_path / AGENTS_DB.name
    shutil.copy(AGENTS_DB, database)
    before = folder_state(tmp_path)
    expected = manifest_sessions(AGENTS_DB)

    first = run(str(database))

    assert f"{len(expected)} new, 0 updated, 0 unchanged, 0 failed" in first
    for session in expected:
        assert f"agents_session.sqlite#{session['external_id']}: new session" in first
        row = Session.objects.get(format="openai_agents", external_id=session["external_id"])
        assert row.message_count == session["messages"]
        hosted = session["items_by_type"].get("web_search_call", 0)  # a tool call too
        assert row.tool_call_count == session["tool_calls"] + hosted
        assert row.tool_error_count == session["tool_errors"]
        assert row.total_tokens is None  # SQLiteSession stores no usage
    second = run(str(database))
    assert f"0 new, 0 updated, {len(expected)} unchanged, 0 failed" in second
    assert DocumentVersion.objects.count() == len(expected)
    assert folder_state(tmp_path) == before  # read-only: not written, no -wal/-shm left behind


def test_rows_still_in_the_write_ahead_log_of_a_live_database_are_read(tmp_path: Path, run):
    database = tmp_path / "live.sqlite"
    shutil.copy(AGENTS_DB, database)
    writer = sqlite3.connect(database)
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("INSERT INTO agent_sessions (session_id) VALUES ('live-0004')")
        writer.execute(
            "INSERT INTO agent_messages (session_id, message_data) "
            'VALUES (\'live-0004\', \'{"role": "user", "content": "still in the WAL"}\')'
        )
        writer.commit()
        assert Path(f"{database}-wal").stat().st_size > 0

        output = run(str(database))
    finally:
        writer.close()

    assert "3 new" in output
    assert Session.objects.get(external_id="live-0004").message_count == 1


def test_agents_sqlite_session_document_is_the_items_envelope():
    sources = importing.read_sources(AGENTS_DB)
    first = next(iter(sources))
    doc = json.loads(first.body)

    assert first.format_id == "openai_agents"
    assert list(doc) == ["session_id", "created_at", "updated_at", "items"]
    assert doc["items"][0]["content"].startswith("Grüße, 東京")
    assert [s.body for s in importing.read_sources(AGENTS_DB)] == [
        s.body for s in importing.read_sources(AGENTS_DB)
    ]


def test_a_row_that_is_not_json_keeps_its_session_importable(tmp_path: Path, run):
    copy = tmp_path / "agents.db"
    shutil.copy(AGENTS_DB, copy)
    with sqlite3.connect(copy) as connection:
        connection.execute("UPDATE agent_messages SET message_data = '{broken' WHERE id = 2")

    output = run(str(copy))

    assert "2 new" in output and "0 failed" in output
    row = Session.objects.get(external_id="oa-session-trip-0001")
    assert row.message_count == manifest_sessions(AGENTS_DB)[0]["messages"]
    assert any(w["code"] == "unparseable_message_data" for w in row.warnings)


def test_advanced_sqlite_tables_bring_turn_usage(tmp_path: Path, run):
    copy = tmp_path / "advanced.sqlite"
    shutil.copy(AGENTS_DB, copy)
    with sqlite3.connect(copy) as connection:
        connection.execute(
            "CREATE TABLE turn_usage (id INTEGER PRIMARY KEY, session_id TEXT, branch_id TEXT, "
            "user_turn_number INTEGER, requests INTEGER, input_tokens INTEGER, "
            "output_tokens INTEGER, total_tokens INTEGER, input_tokens_details TEXT, "
            "output_tokens_details TEXT, created_at TEXT)"
        )
        connection.execute(
            "INSERT INTO turn_usage VALUES (1, 'oa-session-trip-0001', 'main', 1, 2, 942, 119, "
            "1061, '{\"cached_tokens\": 384}', '{\"reasoning_tokens\": 24}', '2026-11-21')"
        )

    run(str(copy))

    row = Session.objects.get(external_id="oa-session-trip-0001")
    assert (row.input_tokens, row.output_tokens, row.total_tokens) == (942, 119, 1061)
    assert row.format_variant == "advanced-sqlite-dump"


# ------------------------------------------------------------------------ Google ADK files


@pytest.mark.parametrize("database", [ADK_SQLITE_DB, ADK_DATABASE_DB], ids=lambda p: p.name)
def test_adk_database_imports_every_session_keyed_by_app_and_user(
    database: Path, tmp_path: Path, run
):
    expected = manifest_sessions(database)
    shutil.copy(database, tmp_path / database.name)
    database = tmp_path / database.name
    before = folder_state(tmp_path)

    first = run(str(database))

    assert f"{len(expected)} new, 0 updated, 0 unchanged, 0 failed" in first
    for session in expected:
        key = adk_key(session)
        assert f"{database.name}#{key}: new session" in first
        row = Session.objects.get(format="google_adk", external_id=key)
        assert row.message_count == session["messages"]
        assert row.tool_call_count == session["tool_calls"]
        assert row.tool_error_count == session["tool_errors"]
        assert (row.input_tokens, row.output_tokens, row.total_tokens) == (
            session["tokens"]["input"],
            session["tokens"]["output"],
            session["tokens"]["total"],
        )
        assert row.user == session["user_id"]
    assert f"0 new, 0 updated, {len(expected)} unchanged" in run(str(database))
    assert folder_state(tmp_path) == before


def test_both_adk_database_kinds_give_the_same_documents():
    sqlite_service = [s.body for s in importing.read_sources(ADK_SQLITE_DB)]
    database_service = [s.body for s in importing.read_sources(ADK_DATABASE_DB)]

    assert sqlite_service == database_service
    doc = json.loads(sqlite_service[0])
    assert sorted(doc["state"]) == manifest_sessions(ADK_SQLITE_DB)[0]["state_keys"]
    assert doc["create_time"] < doc["last_update_time"]


def test_adk_event_data_that_is_not_json_is_kept_with_a_warning(tmp_path: Path, run):
    copy = tmp_path / "adk.db"
    shutil.copy(ADK_SQLITE_DB, copy)
    with sqlite3.connect(copy) as connection:
        connection.execute(
            "UPDATE events SET event_data = '{broken' WHERE user_id = 'user-77' AND rowid = "
            "(SELECT MIN(rowid) FROM events WHERE user_id = 'user-77')"
        )

    assert "0 failed" in run(str(copy))

    row = Session.objects.get(external_id="trip_app/user-77/adk-session-trip-0001")
    assert row.message_count == 1
    assert any(w["code"] == "unparseable_event_data" for w in row.warnings)


def test_adk_schema_v0_is_a_clear_failure(tmp_path: Path, run_failing):
    old = tmp_path / "v0.db"
    with sqlite3.connect(old) as connection:
        connection.execute("CREATE TABLE sessions (app_name, user_id, id, state)")
        connection.execute("CREATE TABLE events (id, app_name, user_id, session_id, actions BLOB)")

    output = run_failing(str(old))

    assert "unsupported_adk_schema" in output and "schema v0" in output


# ------------------------------------------------------------------------ JSON dumps


@pytest.mark.parametrize(
    ("path", "format_id"),
    [
        (FIXTURES / "openai_agents" / "sqlite_session_dump.json", "openai_agents"),
        (FIXTURES / "google_adk" / "sqlite_dump.json", "google_adk"),
    ],
    ids=["agents-dump", "adk-dump"],
)
def test_a_json_dump_with_several_sessions_is_split(path: Path, format_id: str, run):
    expected = manifest_sessions(path)

    output = run(str(path))

    assert f"{len(expected)} new, 0 updated, 0 unchanged, 0 failed" in output
    for session in expected:
        key = adk_key(session) if format_id == "google_adk" else session["external_id"]
        assert f"{path.name}#{key}: new session" in output
        row = Session.objects.get(format=format_id, external_id=key)
        assert row.message_count == session["messages"]
    assert f"{len(expected)} unchanged" in run(str(path))


# ------------------------------------------------------------------------ mixed folders


def test_a_mixed_folder_with_json_and_both_sqlite_kinds_in_one_command(tmp_path: Path, run):
    (tmp_path / "json" / "deep").mkdir(parents=True)
    (tmp_path / "stores").mkdir()
    shutil.copy(FIXTURES / "picoflow" / "v1_5_trip.json", tmp_path / "json" / "pico.json")
    shutil.copy(
        FIXTURES / "openai_agents" / "run_state_tools.json", tmp_path / "json" / "deep" / "rs.json"
    )
    adk = json.loads((FIXTURES / "google_adk" / "session_camel.json").read_text("utf-8"))
    adk["userId"] = "user-99"  # the databases hold users 42 and 77 of the same app
    (tmp_path / "json" / "adk.json").write_text(json.dumps(adk, ensure_ascii=False), "utf-8")
    shutil.copy(AGENTS_DB, tmp_path / "stores" / "agents_session.sqlite")
    shutil.copy(ADK_SQLITE_DB, tmp_path / "stores" / "adk.sqlite3")
    shutil.copy(ADK_DATABASE_DB, tmp_path / "stores" / "adk_database.db")
    (tmp_path / "stores" / "notes.db").write_text("not a database")  # no SQLite header: skipped
    (tmp_path / "stores" / "readme.txt").write_text("ignored")

    files = importing.find_files([tmp_path])
    assert {p.name for p in files} == {
        "pico.json",
        "rs.json",
        "adk.json",
        "agents_session.sqlite",
        "adk.sqlite3",
        "adk_database.db",
    }

    first = run(str(tmp_path))

    # Both database files hold the same two ADK sessions as identical documents: the second
    # file's are "unchanged".
    assert "6 file(s): 7 new, 0 updated, 2 unchanged, 0 failed" in first
    for line in ("agents_session.sqlite#oa-session-short-0002: new session", "rs.json: new"):
        assert line in first
    assert Session.objects.filter(format="openai_agents").count() == 3
    assert set(
        Session.objects.filter(format="google_adk").values_list("external_id", flat=True)
    ) == {adk_key(s) for s in manifest_sessions(ADK_SQLITE_DB)} | {
        "trip_app/user-99/adk-session-trip-0001"
    }
    assert Session.objects.filter(format="picoflow").count() == 1

    second = run(str(tmp_path))
    assert "6 file(s): 0 new, 0 updated, 9 unchanged, 0 failed" in second


def test_an_unknown_sqlite_file_is_one_failure_line_and_the_rest_imports(
    tmp_path: Path, run_failing
):
    with sqlite3.connect(tmp_path / "checkpoints.sqlite") as connection:
        connection.execute("CREATE TABLE checkpoints (thread_id TEXT, checkpoint BLOB)")
        connection.execute("CREATE TABLE writes (thread_id TEXT)")
    shutil.copy(AGENTS_DB, tmp_path / "agents.sqlite")

    output = run_failing(str(tmp_path))

    assert "FAIL" in output and "unknown_sqlite_schema" in output
    assert "tables: checkpoints, writes" in output
    assert "2 new, 0 updated, 0 unchanged, 1 failed" in output


def test_a_named_file_is_recognised_by_its_header_not_its_name(tmp_path: Path, run, run_failing):
    odd_name = tmp_path / "conversations.data"
    shutil.copy(AGENTS_DB, odd_name)
    fake = tmp_path / "fake.sqlite"
    fake.write_text('{"not": "sqlite"}')

    assert "2 new" in run(str(odd_name))
    output = run_failing(str(fake))
    assert "not_a_database" in output


def test_a_corrupt_database_is_a_failure_line(tmp_path: Path, run_failing):
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(importing.SQLITE_HEADER + b"\x00" * 200)

    output = run_failing(str(broken))

    assert "FAIL" in output and "broken.sqlite" in output
