"""A merged save reaches a session's stored rows through indexes that lead with the session and
narrow to the rows it reads or replaces, so its cost follows the turn, not the session (no
timing here: the query plans of the statements it runs)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sessions_api.ingest import incremental, services
from sessions_api.models import ModelUsage, SearchEntry, SessionError, ToolCallRecord

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DERIVED_TABLES = tuple(
    model._meta.db_table for model in (ToolCallRecord, SessionError, ModelUsage, SearchEntry)
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="EXPLAIN QUERY PLAN is SQLite's planner"
    ),
]


def turn(number: int) -> list[dict[str, Any]]:
    ids = [f"call_{number}_{n}" for n in range(2)]
    return [
        {"role": "user", "content": f"question {number}"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": i, "type": "function", "function": {"name": "look", "arguments": "{}"}}
                for i in ids
            ],
        },
        *({"role": "tool", "tool_call_id": i, "content": "Error: no"} for i in ids),
        {"role": "assistant", "content": f"answer {number}"},
    ]


def save(messages: list[dict[str, Any]], minute: int) -> None:
    body = json.dumps({"id": "shape", "model": "gpt-4.1", "messages": messages}).encode()
    services.ingest_document(body=body, now=T0 + timedelta(minutes=minute))


def plan_of(sql: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        return [row[-1] for row in cursor.fetchall()]


def test_a_merged_save_reads_and_replaces_stored_rows_through_the_session_indexes(monkeypatch):
    merged = []
    real_merge = incremental.merge
    monkeypatch.setattr(
        incremental, "merge", lambda *a, **k: merged.append(real_merge(*a, **k)) or merged[-1]
    )
    transcript = [message for number in range(30) for message in turn(number)]
    save(transcript, 0)
    pending = [*transcript, *turn(30)[:2]]  # the last calls wait for their results
    save(pending, 1)
    with CaptureQueriesContext(connection) as captured:
        save([*transcript, *turn(30)], 2)  # re-derived from the pending calls on
    assert len(merged) == 2 and all(m is not None for m in merged)
    assert merged[-1].start < len(transcript) + 2  # the replaced rows were read

    statements = [
        query["sql"]
        for query in captured.captured_queries
        if any(f'"{table}"' in query["sql"] for table in DERIVED_TABLES)
        and "INSERT INTO" not in query["sql"]  # an executemany is logged "<n> times: INSERT"
    ]
    assert len(statements) >= 12, statements
    for sql in statements:
        plan = plan_of(sql)
        assert not any(step.startswith("SCAN") for step in plan), (sql, plan)
        narrowed = any(
            "session_id=? AND" in step
            or "toolcall_pending_idx" in step
            or "INTEGER PRIMARY KEY (rowid=?)" in step  # one row found by the session's index
            for step in plan
        )
        whole_session = ' WHERE "session_id" = \'' in sql and sql.count(" AND ") == 0
        moved = 'SET "occurred_at"' in sql  # every kept row takes the session's new end
        assert narrowed or whole_session or moved, (sql, plan)
