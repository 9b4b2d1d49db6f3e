"""manage.py import_sessions: files, folders, JSONL; bad input reported, re-runs idempotent."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from sessions_api.models import DocumentVersion, Session
from tests.conftest import FIXTURES


def _run(*args: str) -> str:
    out, err = StringIO(), StringIO()
    call_command("import_sessions", *args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def _chat(session_id: str, text: str) -> dict:
    return {"id": session_id, "messages": [{"role": "user", "content": text}]}


@pytest.mark.django_db
def test_imports_a_folder_recursively_and_a_rerun_stores_nothing_twice(tmp_path: Path):
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (tmp_path / "one.json").write_text(json.dumps(_chat("c-1", "hello")))
    (nested / "two.json").write_text(json.dumps(_chat("c-2", "Grüße, 東京")))
    (nested / "notes.txt").write_text("not a session")

    first = _run(str(tmp_path))
    assert "2 new, 0 updated, 0 unchanged, 0 failed" in first
    assert Session.objects.count() == 2

    second = _run(str(tmp_path))
    assert "0 new, 0 updated, 2 unchanged, 0 failed" in second
    assert DocumentVersion.objects.count() == 2


@pytest.mark.django_db
def test_jsonl_lines_are_documents_and_a_bad_line_does_not_stop_the_rest(tmp_path: Path):
    lines = [json.dumps(_chat("l-1", "first")), "{not json", json.dumps(_chat("l-2", "second"))]
    (tmp_path / "batch.jsonl").write_text("\n".join(lines) + "\n")

    with pytest.raises(CommandError) as failure:
        _run(str(tmp_path / "batch.jsonl"))

    assert "1 document(s) failed" in str(failure.value)
    assert set(Session.objects.values_list("external_id", flat=True)) == {"l-1", "l-2"}


@pytest.mark.django_db
def test_a_later_version_of_a_file_becomes_a_new_version(tmp_path: Path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(_chat("v-1", "first")))
    _run(str(path))
    path.write_text(json.dumps(_chat("v-1", "first, edited")))

    assert "0 new, 1 updated" in _run(str(path))
    assert Session.objects.get(external_id="v-1").latest_version == 2


@pytest.mark.django_db
def test_format_can_be_forced_and_a_missing_path_is_an_error():
    output = _run(str(FIXTURES / "picoflow"), "--format", "picoflow")
    assert "failed" in output and "0 failed" in output
    with pytest.raises(CommandError, match="no such file"):
        _run("/nonexistent/place")


@pytest.mark.django_db
def test_two_documents_of_one_session_in_a_folder_do_not_add_versions_on_every_rerun(
    tmp_path: Path,
):
    # Two different documents for the same session (e.g. a thread state and its history).
    (tmp_path / "a.json").write_text(json.dumps(_chat("same", "first shape")))
    (tmp_path / "b.json").write_text(json.dumps(_chat("same", "second shape")))

    assert "1 new, 1 updated" in _run(str(tmp_path))
    assert "0 new, 0 updated, 2 unchanged" in _run(str(tmp_path))
    assert Session.objects.get(external_id="same").latest_version == 2


@pytest.mark.django_db
def test_the_api_still_stores_a_return_to_an_earlier_state_as_a_new_version(api):
    first, second = _chat("back", "one"), _chat("back", "two")
    for body in (first, second, first):
        assert api.post("/sessions", body).status_code in (200, 201)
    assert Session.objects.get(external_id="back").latest_version == 3
