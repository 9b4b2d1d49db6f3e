"""Every ingest cap is checked before the work it protects: a batch's item cap while its items
are walked, the tool-call cap before the write lock, and repeated warnings are aggregated so
one mistake repeated 100,000 times cannot make a megabyte answer."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from sessions_api.formats import decoding
from sessions_api.models import Session

pytestmark = pytest.mark.django_db


def chat_with_calls(count: int, *, call_id: str | None = None) -> bytes:
    calls = [
        {
            "id": call_id or f"call-{index}",
            "type": "function",
            "function": {"name": "lookup", "arguments": "{}"},
        }
        for index in range(count)
    ]
    return json.dumps(
        {
            "session_id": "many-calls",
            "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": None, "tool_calls": calls},
            ],
        }
    ).encode()


def test_a_batch_over_its_item_cap_is_refused_after_walking_one_item_more(api, monkeypatch):
    walked = []
    item_end = decoding._item_end

    def counting(text: str, position: int) -> int:
        walked.append(position)
        return item_end(text, position)

    monkeypatch.setattr(decoding, "_item_end", counting)
    body = b'{"documents": [' + b",".join([b"0"] * 2_000_000) + b"]}"
    response = api.post("/sessions/batch", body)
    assert response.status_code == 413
    assert response.json()["code"] == "too_many_documents"
    assert len(walked) == 500  # the default cap; the 501st item is refused before it is read
    assert not Session.objects.exists()


def test_a_batch_at_its_item_cap_is_ingested(api):
    with override_settings(INGEST_MAX_BATCH_ITEMS=3):
        body = {"documents": [json.loads(chat_with_calls(1))] * 3}
        response = api.post("/sessions/batch", body)
    assert response.status_code == 200
    assert [result["ok"] for result in response.json()["results"]] == [True, True, True]


def test_too_many_tool_calls_is_413_and_nothing_is_stored(api):
    with override_settings(INGEST_MAX_TOOL_CALLS=50):
        response = api.post("/sessions", chat_with_calls(51))
        assert response.status_code == 413
        error = response.json()
        assert error["code"] == "too_many_tool_calls"
        assert "51" in error["message"] and "50" in error["message"]
        assert not Session.objects.exists()
        assert api.post("/sessions", chat_with_calls(50)).status_code == 201


def test_a_repeated_warning_is_listed_a_few_times_then_counted(api):
    response = api.post("/sessions", chat_with_calls(5000, call_id="same"))
    assert response.status_code == 201
    duplicates = [w for w in response.json()["warnings"] if w["code"] == "duplicate_tool_call_id"]
    assert len(duplicates) == 21
    assert duplicates[-1]["message"] == "4979 more warnings of this kind not listed"
    assert len(response.content) < 20_000
