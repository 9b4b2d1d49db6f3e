"""Look-alike ids are one session: ids are stored in NFC (with a warning when the document's
spelling differs), and ids with invisible characters are refused."""

from __future__ import annotations

import json
import unicodedata

import pytest

from sessions_api.models import Session

pytestmark = pytest.mark.django_db

NFC = unicodedata.normalize("NFC", "café-1")
NFD = unicodedata.normalize("NFD", "café-1")


def chat(session_id: str, text: str = "hi") -> bytes:
    return json.dumps(
        {"session_id": session_id, "messages": [{"role": "user", "content": text}]}
    ).encode()


def test_nfc_and_nfd_spellings_are_one_session(api):
    first = api.post("/sessions", chat(NFC))
    assert first.status_code == 201, first.json()
    assert not [w for w in first.json()["warnings"] if w["code"] == "session_id_normalized"]
    second = api.post("/sessions", chat(NFD, "again"))
    assert second.status_code == 200, second.json()
    body = second.json()
    assert body["id"] == first.json()["id"] and body["version"] == 2
    assert "session_id_normalized" in [w["code"] for w in body["warnings"]]
    assert list(Session.objects.values_list("external_id", flat=True)) == [NFC]


@pytest.mark.parametrize("invisible", ["\u200b", "\u200d", "\ufeff", "\u2060", "\u202e"])
def test_invisible_characters_in_ids_are_refused(api, stored, invisible):
    before = stored()
    response = api.post("/sessions", chat(f"abc{invisible}def"))
    assert response.status_code == 422, response.json()
    assert response.json()["code"] == "invalid_external_id"
    assert "invisible" in response.json()["message"]
    refused = api.post("/sessions", chat("plain"), external_id=f"x{invisible}")
    assert refused.status_code in (400, 422) and refused.json()["path"] == "?external_id"
    assert stored() == before


def test_an_nfd_external_id_parameter_is_stored_in_nfc(api):
    body = json.dumps([{"role": "user", "content": "hi"}]).encode()
    response = api.post("/sessions", body, external_id=NFD)
    assert response.status_code == 201, response.json()
    assert response.json()["external_id"] == NFC
