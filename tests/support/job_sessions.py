"""Sessions for the job tests: Picoflow documents with chosen times, ids, tools and tokens,
ingested through the real ingest service so every derived row exists. The ``make_session``
fixture reaches a test folder through its conftest."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sessions_api.ingest import services
from sessions_api.models import Session
from tests.support.picoflow_documents import picoflow_v15

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def picoflow_doc(
    *,
    session_id: str | None = None,
    status: str = "running",
    created: datetime = T0,
    saved: datetime | None = None,
    flow: str = "TripFlow",
    model: str = "gpt-4o-mini",
    tools: Iterable[tuple[str, str]] = (("search_hotels", "success"),),
    tokens: tuple[int, int] | None = (100, 20),
    expire_after: int | None = None,
    revision: int | None = None,
    extra_message: str | None = None,
) -> dict[str, Any]:
    """A Picoflow document: v1-plain when ``expire_after`` is given (only v1 has expiry),
    else v1.5. Tool calls happen one minute after ``created``; the session was last saved at
    ``saved`` (default: created + 5 minutes)."""
    session_id = session_id or str(uuid.uuid4())
    saved = saved or created + timedelta(minutes=5)
    call_time = created + timedelta(minutes=1)
    messages: list[dict[str, Any]] = [
        {
            "type": "human",
            "content": "hello",
            "id": f"Step|{iso(created)}|1000000001",
            "timestamp": iso(created),
        }
    ]
    for index, (name, outcome) in enumerate(tools):
        call_id = f"call-{index}"
        messages.append(
            {
                "type": "ai",
                "content": "",
                "id": f"Step|{iso(call_time)}|20000000{index:02d}",
                "timestamp": iso(call_time),
                "tool_calls": [{"name": name, "args": {"q": index}, "id": call_id}],
            }
        )
        messages.append(
            {
                "type": "tool",
                "content": "ok" if outcome == "success" else "backend returned 503",
                "id": f"Step|{iso(call_time)}|30000000{index:02d}",
                "timestamp": iso(call_time),
                "tool_call_id": call_id,
                "status": outcome,
                "name": name,
            }
        )
    if extra_message:
        messages.append(
            {
                "type": "ai",
                "content": extra_message,
                "id": f"Step|{iso(saved)}|4000000001",
                "timestamp": iso(saved),
            }
        )
    token_block = (
        {"inputTokens": tokens[0], "outputTokens": tokens[1], "totalTokens": sum(tokens)}
        if tokens
        else None
    )
    if expire_after is not None:
        doc: dict[str, Any] = {
            "_id": session_id,
            "id": session_id,
            "version": 1,
            "runStatus": status,
            "createdOn": iso(created),
            "saveOn": iso(saved),
            "expireAfter": expire_after,
            "flows": [
                {
                    "name": flow,
                    "memory": [
                        {
                            "nameSpace": "Step",
                            "history": [
                                {k: v for k, v in m.items() if k != "timestamp"} for m in messages
                            ],
                        }
                    ],
                    "steps": [{"name": "Step", "isActive": True, "state": {}, "modelName": model}],
                }
            ],
            "log": [],
            "error": [],
            "warn": [],
            "debug": [],
            "verbose": [],
        }
    else:
        doc = picoflow_v15(
            session_id=session_id,
            messages=messages,
            created=iso(created),
            saved=iso(saved),
            flow=flow,
            model=model,
            status=status,
        )
    if revision is not None:
        doc["revision"] = revision
    if token_block:
        doc["tokens"] = token_block
    return doc


def ingest(
    doc: dict[str, Any], *, now: datetime | None = None, format_id: str = "picoflow"
) -> Session:
    outcome = services.ingest_document(
        body=json.dumps(doc).encode(), format_id=format_id, now=now or T0
    )
    return Session.objects.get(id=outcome.id)


@pytest.fixture
def make_session(db) -> Callable[..., Session]:
    """make_session(received=..., **picoflow_doc kwargs) -> the Session row."""

    def make(*, received: datetime | None = None, **kwargs: Any) -> Session:
        doc = picoflow_doc(**kwargs)
        return ingest(doc, now=received or kwargs.get("saved") or kwargs.get("created") or T0)

    return make
