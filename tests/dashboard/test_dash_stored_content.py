"""Whatever a client stores, the pages that show it answer: text holding JSON nested far
deeper than any parser follows is shown as text, never a 500 (session page, timeline, raw,
audit log, API)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from sessions_api.editing import audit
from sessions_api.editing.values import Actor, EditRequest
from sessions_api.ingest import services
from sessions_api.models import Session
from tests.conftest import ApiClient
from tests.support import sample_data
from tests.support.sample_data import ToolSpec, Turn

pytestmark = pytest.mark.django_db

NESTED_TEXT = "[" * 5000 + "]" * 5000  # valid JSON text no recursive parser can follow


def _session_with_nested_tool_result(now) -> str:
    body = sample_data.picoflow_document(
        session_id="nested-text",
        flow="F",
        status="completed",
        model="gpt-4o",
        started=now - timedelta(minutes=5),
        turns=[
            Turn(
                "look it up",
                "done",
                tools=[ToolSpec("lookup", {"q": NESTED_TEXT}, NESTED_TEXT)],
            )
        ],
    )
    return services.ingest_document(body=body, now=now).id


def test_a_session_whose_tool_result_holds_deeply_nested_json_text_renders(viewer_client, now):
    session_id = _session_with_nested_tool_result(now)
    for page in ("", "timeline/", "raw/", "versions/"):
        response = viewer_client.get(f"/sessions/{session_id}/{page}")
        assert response.status_code == 200, page
    assert "[[[[" in viewer_client.get(f"/sessions/{session_id}/").content.decode()


def test_the_api_serves_such_a_session(client, make_api_key, now):
    session_id = _session_with_nested_tool_result(now)
    api = ApiClient(client, make_api_key("read"))
    assert api.get(f"/sessions/{session_id}").status_code == 200
    timeline = api.get(f"/sessions/{session_id}/timeline")
    assert timeline.status_code == 200
    assert NESTED_TEXT in json.dumps(timeline.json())


def test_an_audit_diff_holding_deeply_nested_json_text_renders_for_everyone(viewer_client, now):
    session_id = _session_with_nested_tool_result(now)
    # What a write key's edit of such a value leaves in the log, read by everyone signed in.
    audit.record_change(
        row=Session.objects.get(id=session_id),
        edit=EditRequest(
            session_id=session_id, actor=Actor(label="key:writer"), reason="nested", now=now
        ),
        action="edit_document",
        from_version=1,
        to_version=2,
        diff=[
            {"op": "replace", "path": "/state/x", "value": NESTED_TEXT, "old": NESTED_TEXT},
            {"op": "add", "path": "/state/y", "value": NESTED_TEXT},
        ],
        details={},
    )
    response = viewer_client.get("/audit/")
    assert response.status_code == 200
    assert "[[[[" in response.content.decode()
