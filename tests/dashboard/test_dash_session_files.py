"""The session page lists the files that travel with a session (AgentFlow notes and
artifacts): JSON pretty-printed, text shown as text, binary listed with its size only."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from sessions_api.models import Session
from tests.conftest import FIXTURES


@pytest.mark.django_db
def test_agentflow_notes_and_artifacts_show_on_the_session_page(viewer_client):
    call_command(
        "import_sessions",
        str(FIXTURES / "agentflow" / "fs_storage"),
        stdout=StringIO(),
        stderr=StringIO(),
    )
    session = Session.objects.get(
        format="agentflow", external_id="64c073f0-0330-4297-b895-bd7497d1d24d"
    )

    page = viewer_client.get(f"/sessions/{session.id}/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Notes and artifacts" in html
    assert "chat/chat_summary.md" in html and "chat/chat_scratch.md" in html
    # The JSON artifact is pretty-printed (one key per indented line) and escaped.
    assert "weather.json" in html
    assert "\n  &quot;city&quot;: &quot;東京&quot;,\n" in html
    # The binary artifact is listed with its size, and its bytes are not in the page.
    assert "photo.png" in html and "70\xa0bytes" in html
    assert "iVBORw0KGgo" not in html
