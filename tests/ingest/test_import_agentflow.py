"""manage.py import_sessions on AgentFlow FileSystemStorage folders: each sessions/<id>/ folder
is one agentflow export bundle (session.json + notes + artifacts), never its files one by one."""

from __future__ import annotations

import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from sessions_api.formats import registry
from sessions_api.formats.agentflow import stores as agentflow_stores
from sessions_api.formats.decoding import DecodeLimits
from sessions_api.ingest import importing
from sessions_api.models import DocumentVersion, Session
from sessions_api.sessions import selectors
from tests.conftest import FIXTURES

MANIFEST = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))
FOLDER = next(e for e in MANIFEST["fixtures"] if e["path"] == "agentflow/fs_storage")
SESSION_IDS = [s["external_id"] for s in FOLDER["sessions"]]


def _run(*args: str) -> str:
    out, err = StringIO(), StringIO()
    call_command("import_sessions", *args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    """A copy of the real FileSystemStorage folder (tests may change it)."""
    root = tmp_path / "agentflow_store"
    shutil.copytree(FIXTURES / "agentflow" / "fs_storage", root)
    return root


def _canonical(external_id: str):
    row = Session.objects.get(format="agentflow", external_id=external_id)
    record = selectors.get_session(session_id=str(row.id))
    return selectors.get_parsed_version(record=record).session


@pytest.mark.django_db
def test_every_session_folder_imports_with_its_notes_and_artifacts(storage: Path):
    output = _run(str(storage))

    assert "3 file(s): 3 new, 0 updated, 0 unchanged, 0 failed" in output
    assert sorted(Session.objects.values_list("external_id", flat=True)) == sorted(SESSION_IDS)
    # Only the three bundles were stored: no session.json, no artifact JSON on its own.
    assert DocumentVersion.objects.count() == 3
    for expected in FOLDER["sessions"]:
        session = _canonical(expected["external_id"])
        assert session.format_variant == "export-bundle"
        assert session.raw_status == expected["status"]
        assert session.agent_name == expected["agent"]
        assert session.metadata["workflow"] == expected["workflow"]
        assert len(session.messages) == expected["messages"]
        assert session.tokens.is_empty
        assert [n["path"] for n in session.metadata.get("notes", [])] == expected["notes"]
        artifacts = session.metadata.get("artifacts", [])
        assert [(a["name"], a["size"], a["kind"] == "binary") for a in artifacts] == [
            (a["name"], a["bytes"], a["binary"]) for a in expected["artifacts"]
        ]


@pytest.mark.django_db
def test_notes_and_artifacts_carry_what_the_session_page_shows(storage: Path):
    _run(str(storage))

    completed = _canonical("c087f099-c5ad-434e-83c4-c47ce7ed90d7")
    artifacts = {a["name"]: a for a in completed.metadata["artifacts"]}
    assert artifacts["itinerary.json"]["json"]["warnings"] == [
        "hotel booking failed",
        "<script>alert(1)</script>",
    ]
    assert artifacts["itinerary.json"]["media_type"] == "application/json"
    assert artifacts["itinerary.md"]["kind"] == "text"
    assert len(artifacts["itinerary.md"]["text"].encode("utf-8")) == 6138
    png = artifacts["map.png"]
    assert (png["media_type"], png["size"], len(png["sha256"])) == ("image/png", 70, 64)
    assert "text" not in png and "json" not in png
    notes = {n["path"]: n for n in completed.metadata["notes"]}
    assert notes["trip_planning/research_summary.md"] == {
        "path": "trip_planning/research_summary.md",
        "workflow": "trip_planning",
        "node": "research",
        "kind": "summary",
        "text": "Sunny ☀ in 東京; hotel full; currency service down.",
    }
    assert [(s.name, s.flow) for s in completed.steps] == [
        ("research", "trip_planning"),
        ("write", "trip_planning"),
    ]
    assert completed.title == "Tokyo Grüße, 東京, émoji 🚀"
    failed = _canonical("821230ce-c473-49f7-9c30-f3f7e82b61b7")
    assert failed.status.value == "error"
    assert (
        failed.metadata["notes"][0]["text"] == "Started research for Kyoto; the provider timed out."
    )


@pytest.mark.django_db
def test_a_rerun_imports_nothing_new_and_a_changed_note_is_a_new_version(storage: Path):
    _run(str(storage))

    assert "0 new, 0 updated, 3 unchanged, 0 failed" in _run(str(storage))
    assert DocumentVersion.objects.count() == 3

    note = next(storage.rglob("chat_scratch.md"))
    note.write_text(note.read_text(encoding="utf-8") + "\n- one more turn", encoding="utf-8")
    assert "0 new, 1 updated, 2 unchanged, 0 failed" in _run(str(storage))


def test_the_bundle_is_deterministic_and_detected_as_agentflow(storage: Path, settings):
    folder = storage / "sessions" / SESSION_IDS[0]

    first = agentflow_stores.export_bundle(folder, limits=DecodeLimits())
    assert agentflow_stores.export_bundle(folder, limits=DecodeLimits()) == first
    doc = json.loads(first)
    assert list(doc) == ["_kind", "_version", "_note", "session", "notes", "artifacts"]
    assert registry.detect_format(doc).variant == "export-bundle"
    assert str(storage) not in first.decode("utf-8")  # no paths: the same folder elsewhere is
    # the same document


def test_the_walk_yields_session_folders_instead_of_their_files(storage: Path):
    found = importing.find_files([storage])

    assert found == sorted(storage / "sessions" / sid for sid in SESSION_IDS)
    # A session.json named on its own brings its folder; so does the folder itself.
    session_file = storage / "sessions" / SESSION_IDS[0] / "session.json"
    assert importing.find_files([session_file]) == [session_file.parent]
    assert importing.find_files([session_file.parent]) == [session_file.parent]


@pytest.mark.django_db
def test_a_mixed_folder_imports_in_one_command(tmp_path: Path):
    mixed = tmp_path / "mixed"
    shutil.copytree(FIXTURES / "agentflow" / "fs_storage", mixed / "agentflow")
    shutil.copytree(FIXTURES / "praisonai", mixed / "praisonai")
    (mixed / "falai").mkdir()
    shutil.copy(FIXTURES / "falai" / "session_state_v1.json", mixed / "falai")
    shutil.copy(FIXTURES / "openai_chat" / "parallel_tools.json", mixed)
    shutil.copy(FIXTURES / "agentflow" / "history.json", mixed)
    (mixed / "broken.json").write_text("{not json")
    (mixed / "readme.txt").write_text("not a session")

    with pytest.raises(CommandError, match="1 document"):
        _run(str(mixed))

    formats = sorted(Session.objects.values_list("format", flat=True))
    assert formats == sorted(["agentflow"] * 4 + ["praisonai"] * 5 + ["falai", "openai_chat"])
    assert DocumentVersion.objects.count() == 11
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("import_sessions", str(mixed), stdout=out, stderr=StringIO())
    assert "0 new, 0 updated, 11 unchanged, 1 failed" in out.getvalue()


@pytest.mark.django_db
def test_binary_limits_bad_json_and_unknown_files(storage: Path):
    folder = storage / "sessions" / SESSION_IDS[0]
    big = bytes(range(256)) * 1100  # 281,600 bytes of binary: over the 256 kB inline limit
    (folder / "artifacts" / "recording.bin").write_bytes(big)
    (folder / "artifacts" / "small.bin").write_bytes(b"\x00\x01\xff")
    (folder / "artifacts" / "broken.json").write_text("{nope", encoding="utf-8")
    (folder / "trip_planning" / "blob.dat").write_bytes(b"\xff\xfe\x00")

    _run(str(storage))
    session = _canonical(SESSION_IDS[0])

    artifacts = {a["name"]: a for a in session.metadata["artifacts"]}
    assert artifacts["recording.bin"]["omitted"] is True
    assert artifacts["recording.bin"]["size"] == len(big)
    assert artifacts["small.bin"]["size"] == 3 and "omitted" not in artifacts["small.bin"]
    assert artifacts["broken.json"]["text"] == "{nope"
    assert artifacts["broken.json"]["json_error"]
    assert session.metadata["other_files"][0]["path"] == "trip_planning/blob.dat"
    raw = json.loads(
        selectors.get_raw_body(
            session_id=str(Session.objects.get(external_id=SESSION_IDS[0]).id), version=1
        )
    )
    stored = {a["name"]: a for a in raw["artifacts"]}
    assert "base64" not in stored["recording.bin"]
    assert stored["small.bin"]["base64"] == "AAH/"


@pytest.mark.django_db
def test_a_bad_session_json_is_reported_and_does_not_stop_the_others(storage: Path):
    bad = storage / "sessions" / SESSION_IDS[1] / "session.json"
    bad.write_text(bad.read_text(encoding="utf-8").replace('"agent"', '"score": NaN, "agent"'))

    out = StringIO()
    with pytest.raises(CommandError, match="1 document"):
        call_command("import_sessions", str(storage), stdout=out, stderr=StringIO())

    printed = out.getvalue()
    assert f"FAIL {bad.parent}: non_finite_number" in printed
    assert Session.objects.count() == 2


@pytest.mark.django_db
def test_an_app_written_history_file_becomes_the_messages(storage: Path):
    folder = storage / "sessions" / "64c073f0-0330-4297-b895-bd7497d1d24d"
    shutil.copy(FIXTURES / "agentflow" / "history.json", folder / "history.json")

    _run(str(storage))
    session = _canonical("64c073f0-0330-4297-b895-bd7497d1d24d")

    assert len(session.messages) == 10
    assert "history.json" not in [n["path"] for n in session.metadata["notes"]]
