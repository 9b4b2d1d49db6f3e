"""Ingest writes in few statements: a bound on the SQL per new session, per new version and
per batch, so a change that brings back per-row ORM work or a
transaction per batch item shows up here. Counts only; no time is asserted."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sessions_api.ingest import services
from sessions_api.lifecycle.alerts import rules
from sessions_api.models import ModelUsage, SessionError, ToolCallRecord

# A session that fills every derived table: two tool calls (one failing), a model with usage.
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT")


def chat_document(session_id: str, *, turns: int = 2) -> bytes:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Book a table for two"}]
    for turn in range(turns):
        call_id = f"call_{turn}"
        messages += [
            {
                "role": "assistant",
                "content": None,
                "model": "gpt-4o-mini",
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": "find_table", "arguments": '{"people": 2}'},
                    }
                ],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
            },
            {
                "role": "tool",
                "tool_call_id": call_id,
                "content": "Error: no table free" if turn == 0 else '{"table": 7}',
            },
        ]
    messages.append({"role": "assistant", "content": "Table 7 is yours.", "model": "gpt-4o-mini"})
    return json.dumps({"id": session_id, "messages": messages}).encode()


@pytest.fixture(autouse=True)
def _alert_rules_known(transactional_db):
    """A running server has cached whether alert rules watch saves (a few seconds at a time);
    the counts below are those of a save, not of that lookup."""
    rules.forget_rule_events()
    rules.session_rule_events(timezone.now())
    yield
    rules.forget_rule_events()


def statements(captured: CaptureQueriesContext) -> list[str]:
    # An executemany is logged once, as "<n> times: <sql>".
    return [re.sub(r"^\d+ times: ", "", query["sql"]) for query in captured.captured_queries]


def data_statements(captured: CaptureQueriesContext) -> list[str]:
    return [sql for sql in statements(captured) if not sql.startswith(TRANSACTION_CONTROL)]


def commits(captured: CaptureQueriesContext) -> int:
    return sum(1 for sql in statements(captured) if sql == "COMMIT")


@pytest.mark.django_db(transaction=True)
def test_a_new_session_is_one_insert_per_table_in_one_transaction():
    with CaptureQueriesContext(connection) as captured:
        outcome = services.ingest_document(body=chat_document("stmt-new"))

    assert outcome.created and outcome.changed
    # The document fills every derived table, so all seven inserts are there.
    assert ToolCallRecord.objects.count() == 2
    assert SessionError.objects.filter(kind="tool_error").count() == 1
    assert ModelUsage.objects.count() == 1
    data = data_statements(captured)
    # Session, body, version, tool calls, errors, model usage, search entries.
    assert len(data) == 7, data
    assert all(sql.startswith("INSERT") for sql in data), data
    assert commits(captured) == 1


@pytest.mark.django_db(transaction=True)
def test_a_new_version_is_bounded_and_an_unchanged_document_writes_nothing():
    services.ingest_document(body=chat_document("stmt-version", turns=1))

    with CaptureQueriesContext(connection) as captured:
        outcome = services.ingest_document(body=chat_document("stmt-version", turns=2))
    assert outcome.version == 2
    # The no-op insert, lock, latest version, body (the version before's links and payloads,
    # then the insert of the delta), version, the times the analytics counted the session
    # at, update, 4 deletes, 4 inserts.
    assert len(data_statements(captured)) <= 17, data_statements(captured)
    assert commits(captured) == 1

    with CaptureQueriesContext(connection) as captured:
        outcome = services.ingest_document(body=chat_document("stmt-version", turns=2))
    assert not outcome.changed
    writes = [sql for sql in data_statements(captured) if not sql.startswith("SELECT")]
    assert len(writes) == 1, writes  # only the insert that found the session there


@pytest.mark.django_db(transaction=True)
def test_a_batch_is_one_transaction_with_a_bounded_number_of_statements_per_item():
    documents = [chat_document(f"stmt-batch-{n}") for n in range(10)]
    body = b'{"documents": [' + b",".join(documents) + b', {"not": "a session"}]}'

    with CaptureQueriesContext(connection) as captured:
        batch = services.ingest_batch(body=body)

    assert [item.outcome is not None for item in batch.results] == [True] * 10 + [False]
    assert commits(captured) == 1
    # Per stored item: a savepoint and its release around the seven inserts of a new session.
    assert len(statements(captured)) <= 10 * 9 + 2, statements(captured)
    assert len(data_statements(captured)) == 10 * 7


@pytest.mark.django_db(transaction=True)
def test_a_merged_save_writes_only_the_session_columns_it_changes():
    services.ingest_document(body=chat_document("stmt-merge", turns=1))
    with CaptureQueriesContext(connection) as captured:
        outcome = services.ingest_document(body=chat_document("stmt-merge", turns=3))
    assert outcome.version == 2
    updates = [sql for sql in data_statements(captured) if sql.startswith("UPDATE")]
    session_update = [sql for sql in updates if '"sessions_api_session"' in sql]
    assert len(session_update) == 1
    assert '"message_count"' in session_update[0]
    # Columns a save leaves as they were are not written back.
    assert '"external_id"' not in session_update[0]
    assert '"first_received_at"' not in session_update[0]
    assert len(data_statements(captured)) <= 22, data_statements(captured)
