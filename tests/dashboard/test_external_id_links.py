"""The agent's own session id is what a user has in hand: /sessions/<it>/ leads to the session,
and the API takes it wherever it names one session."""

from __future__ import annotations

import json
import uuid

import pytest

from sessions_api.ingest import services
from tests import factories

pytestmark = pytest.mark.django_db


def chat(session_id: str) -> bytes:
    return json.dumps(
        {"session_id": session_id, "messages": [{"role": "user", "content": "hello"}]}
    ).encode()


def pico(session_id: str) -> bytes:
    return factories.document("picoflow", session_id=session_id)


def test_the_agents_id_redirects_to_the_session(viewer_client):
    outcome = services.ingest_document(body=chat("run/2026 #7"))
    response = viewer_client.get("/sessions/run/2026%20%237/")
    assert response.status_code == 302
    assert response["Location"] == f"/sessions/{outcome.id}/"
    assert viewer_client.get(response["Location"]).status_code == 200


def test_an_unknown_id_is_404(viewer_client):
    assert viewer_client.get("/sessions/nobody-has-this/").status_code == 404


def test_a_uuid_that_is_the_agents_id_redirects_to_the_sessions_own(viewer_client):
    agent_id = str(uuid.uuid4())
    outcome = services.ingest_document(body=chat(agent_id))
    response = viewer_client.get(f"/sessions/{agent_id}/")
    assert response.status_code == 302 and response["Location"] == f"/sessions/{outcome.id}/"


def test_an_id_two_formats_share_goes_to_a_search(viewer_client):
    services.ingest_document(body=chat("shared-1"))
    other = services.ingest_document(body=pico("shared-1"))
    assert other.format == "picoflow"
    response = viewer_client.get("/sessions/shared-1/")
    assert response.status_code == 302 and response["Location"] == "/sessions/?q=shared-1"


def test_the_api_takes_the_agents_id(api):
    outcome = services.ingest_document(body=chat("api-ext-1"))
    response = api.get("/sessions/api-ext-1")
    assert response.status_code == 200 and response.json()["id"] == outcome.id
    document = api.get("/sessions/api-ext-1/document")
    assert document.status_code == 200 and document["ETag"] == '"1"'
    assert api.get("/sessions/api-ext-1/versions").status_code == 200


def test_the_api_refuses_an_ambiguous_agents_id(api):
    services.ingest_document(body=chat("shared-2"))
    other = services.ingest_document(body=pico("shared-2"))
    assert other.format == "picoflow"
    response = api.get("/sessions/shared-2")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "ambiguous_session_id"
    assert {s["format"] for s in body["details"]["sessions"]} == {"openai_chat", other.format}


def test_a_uuid_that_several_formats_use_as_their_id_is_404_not_an_error(viewer_client):
    agent_id = str(uuid.uuid4())
    services.ingest_document(body=chat(agent_id))
    services.ingest_document(body=pico(agent_id))
    assert viewer_client.get(f"/sessions/{agent_id}/").status_code == 404
    assert viewer_client.get(f"/sessions/{agent_id}/edit/").status_code in (403, 404)
