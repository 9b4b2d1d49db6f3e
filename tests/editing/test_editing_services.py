"""Editing services (SQLite and PostgreSQL alike): every save needs a reason and the version it
started from, writes the framework's own shape as version N+1 (parsed again by the adapter),
and is audited with a JSON diff; reverts, checkpoints, restores, branches, deletes."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from sessions_api.editing import annotations, document, lineage
from sessions_api.editing import selectors as editing_selectors
from sessions_api.editing.values import Actor, EditRequest
from sessions_api.errors import (
    BranchExists,
    CheckpointExists,
    CheckpointNotFound,
    EditError,
    InvalidDocument,
    InvalidQuery,
    NotFound,
    ReasonRequired,
    RejectedDocument,
    RevisionConflict,
    VersionConflict,
    VersionNotFound,
)
from sessions_api.formats import editing as document_editors
from sessions_api.formats import parse_document
from sessions_api.lifecycle import prune
from sessions_api.models import AuditEntry, Checkpoint, DocumentVersion, Session
from sessions_api.sessions import selectors
from tests.editing.conftest import (
    EDITABLE_FIXTURES,
    EDITOR,
    READ_ONLY_FIXTURES,
    fixture_bytes,
    openai_chat_body,
    picoflow_body,
)

pytestmark = pytest.mark.django_db


def latest_doc(session_id: str):
    latest = editing_selectors.get_latest_document(session_id=session_id)
    return latest.version, json.loads(latest.body)


# --- every editable part of every format, parsed again by its adapter -------------------------


@pytest.mark.parametrize("name", sorted(EDITABLE_FIXTURES))
def test_every_part_edit_is_stored_in_the_framework_shape_and_reparsed(name, ingest, now):
    session_id = ingest(fixture_bytes(name))
    format_id = EDITABLE_FIXTURES[name]
    view = editing_selectors.editor_view(session_id=session_id)
    assert view.capabilities.parts, view.capabilities.reason
    for step, part in enumerate(view.capabilities.parts, start=1):
        version, doc = latest_doc(session_id)
        old = document_editors.get_part(format_id, doc, part.key)
        new = {**(old if isinstance(old, dict) else {}), "edited": {"by": "test", "n": step}}
        outcome = document.edit_state(
            edit=EditRequest(
                session_id=session_id,
                actor=EDITOR,
                reason=f"fix {part.label}",
                now=now + timedelta(seconds=step),
                expected_version=version,
            ),
            part=part.key,
            value=new,
        )
        assert outcome.changed and outcome.version == version + 1
        stored_version, stored = latest_doc(session_id)
        assert stored_version == version + 1
        # The adapter parses the stored document again, and the value sits where it was.
        parse_document(stored, format_id=format_id)
        assert document_editors.get_part(format_id, stored, part.key) == new
        entry = AuditEntry.objects.get(id=outcome.audit_id)
        assert entry.action == "edit_state" and entry.reason == f"fix {part.label}"
        assert (entry.from_version, entry.to_version) == (version, version + 1)
        assert any(
            op["path"].endswith("/edited")
            or (isinstance(op.get("value"), dict) and "edited" in op["value"])
            for op in entry.diff
        ), entry.diff
        assert entry.details == {"part": part.key}
    record = selectors.get_session(session_id=session_id)
    assert record.version == 1 + len(view.capabilities.parts)


@pytest.mark.parametrize("name", sorted(EDITABLE_FIXTURES))
def test_every_status_edit_is_reparsed_with_the_new_status(name, ingest, now):
    session_id = ingest(fixture_bytes(name))
    format_id = EDITABLE_FIXTURES[name]
    statuses = editing_selectors.editor_view(session_id=session_id).capabilities.statuses
    for offset, status in enumerate(statuses, start=1):
        version, _ = latest_doc(session_id)
        outcome = document.edit_status(
            edit=EditRequest(
                session_id=session_id,
                actor=EDITOR,
                reason="status fix",
                now=now + timedelta(seconds=offset),
                expected_version=version,
            ),
            status=status,
        )
        _, stored = latest_doc(session_id)
        _, parsed = parse_document(stored, format_id=format_id)
        assert parsed.session.status.value == status
        assert selectors.get_session(session_id=session_id).summary.status == status
        assert (
            outcome.changed or status == selectors.get_session(session_id=session_id).summary.status
        )


@pytest.mark.parametrize("name", sorted(READ_ONLY_FIXTURES))
def test_formats_without_editable_state_say_so(name, ingest, now):
    session_id = ingest(fixture_bytes(name))
    view = editing_selectors.editor_view(session_id=session_id)
    assert view.capabilities.parts == ()
    assert view.capabilities.reason
    with pytest.raises(document_editors.NotEditable) as refused:
        document.edit_state(
            edit=EditRequest(
                session_id=session_id, actor=EDITOR, reason="try", now=now, expected_version=1
            ),
            part="state",
            value={},
        )
    assert refused.value.message == view.capabilities.reason
    assert DocumentVersion.objects.filter(session_id=session_id).count() == 1
    assert not AuditEntry.objects.exists()


def test_picoflow_step_edit_keeps_save_stamp_and_bumps_revision(picoflow_session, now):
    version, doc = latest_doc(picoflow_session)
    step_key = next(
        p.key
        for p in editing_selectors.editor_view(session_id=picoflow_session).capabilities.parts
        if p.kind == "step"
    )
    later = now + timedelta(minutes=5)
    document.edit_state(
        edit=EditRequest(
            session_id=picoflow_session,
            actor=EDITOR,
            reason="unstick",
            now=later,
            expected_version=version,
        ),
        part=step_key,
        value={"turns": 9, "fixed": True},
    )
    _, stored = latest_doc(picoflow_session)
    state = stored["flow"]["steps"][0]["state"]
    assert state["turns"] == 9 and state["fixed"] is True
    assert state["_saveOn"].startswith(later.strftime("%Y-%m-%dT%H:%M:%S"))
    assert stored["revision"] == doc["revision"] + 1
    assert stored["saveOn"] == state["_saveOn"]
    # Framework-managed keys cannot be set through the editor.
    with pytest.raises(document_editors.NotEditable):
        document.edit_state(
            edit=EditRequest(
                session_id=picoflow_session,
                actor=EDITOR,
                reason="r",
                now=later,
                expected_version=version + 1,
            ),
            part=step_key,
            value={"_saveOn": "x"},
        )


def test_an_edit_that_breaks_the_document_is_refused_and_nothing_is_stored(chat_session, now):
    with pytest.raises(InvalidDocument):
        document.edit_state(
            edit=EditRequest(
                session_id=chat_session,
                actor=EDITOR,
                reason="break it",
                now=now,
                expected_version=1,
            ),
            part="state",
            value=["variables", "must", "be", "an", "object"],
        )
    with pytest.raises(InvalidDocument):
        document.save_document(
            edit=EditRequest(
                session_id=chat_session,
                actor=EDITOR,
                reason="rename it",
                now=now,
                expected_version=1,
            ),
            body=openai_chat_body("another-session-id"),
        )
    with pytest.raises(RejectedDocument):
        document.save_document(
            edit=EditRequest(
                session_id=chat_session, actor=EDITOR, reason="garbage", now=now, expected_version=1
            ),
            body=b'{"messages": [NaN]}',
        )
    assert DocumentVersion.objects.filter(session_id=chat_session).count() == 1
    assert not AuditEntry.objects.exists()


def test_a_reason_is_required(chat_session, now):
    for reason in ("", "   ", None):
        with pytest.raises(ReasonRequired):
            document.edit_state(
                edit=EditRequest(
                    session_id=chat_session,
                    actor=EDITOR,
                    reason=reason,
                    now=now,
                    expected_version=1,
                ),
                part="state",
                value={"x": 1},
            )
    assert DocumentVersion.objects.filter(session_id=chat_session).count() == 1


def test_a_stale_version_is_a_conflict_with_a_diff_and_nothing_is_written(chat_session, now):
    first = document.edit_state(
        edit=EditRequest(
            session_id=chat_session, actor=EDITOR, reason="upgrade", now=now, expected_version=1
        ),
        part="state",
        value={"plan": "pro"},
    )
    assert first.version == 2
    with pytest.raises(VersionConflict) as conflict:
        document.edit_state(
            edit=EditRequest(
                session_id=chat_session,
                actor=EDITOR,
                reason="downgrade",
                now=now,
                expected_version=1,
            ),
            part="state",
            value={"plan": "free"},
        )
    assert conflict.value.current_version == 2
    assert conflict.value.expected_version == 1
    assert conflict.value.diff == [
        {"op": "replace", "path": "/variables/plan", "value": "pro", "old": "basic"}
    ]
    assert DocumentVersion.objects.filter(session_id=chat_session).count() == 2
    assert AuditEntry.objects.count() == 1


def test_a_save_equal_to_the_latest_changes_nothing(chat_session, now):
    outcome = document.edit_state(
        edit=EditRequest(
            session_id=chat_session, actor=EDITOR, reason="no-op", now=now, expected_version=1
        ),
        part="state",
        value={"plan": "basic"},
    )
    assert not outcome.changed and outcome.version == 1
    assert not AuditEntry.objects.exists()


def test_picoflow_v15_whole_document_save_must_carry_a_new_revision(picoflow_session, now):
    _, doc = latest_doc(picoflow_session)
    doc["runStatus"] = "completed"
    with pytest.raises(RevisionConflict):
        document.save_document(
            edit=EditRequest(
                session_id=picoflow_session,
                actor=EDITOR,
                reason="same revision",
                now=now,
                expected_version=1,
            ),
            body=json.dumps(doc).encode(),
        )
    doc["revision"] += 1
    outcome = document.save_document(
        edit=EditRequest(
            session_id=picoflow_session, actor=EDITOR, reason="finish", now=now, expected_version=1
        ),
        body=json.dumps(doc).encode(),
    )
    assert outcome.version == 2
    assert selectors.get_session(session_id=picoflow_session).summary.status == "completed"


# --- patch: append messages, merge state, status ---------------------------------------------


def test_patch_picoflow_appends_to_the_current_step_and_merges_its_state(picoflow_session, now):
    _, before = latest_doc(picoflow_session)
    stamp = "2030-01-01T00:00:00.000Z"
    patch = document_editors.DocumentPatch(
        messages=[
            {"type": "human", "content": "one more", "id": f"Book|{stamp}|1234567890"},
            {"type": "ai", "content": "sure", "id": f"Book|{stamp}|1234567891"},
        ],
        state={"turns": None, "mood": "good"},
        status="completed",
    )
    outcome = document.patch_document(
        edit=EditRequest(
            session_id=picoflow_session,
            actor=EDITOR,
            reason="agent turn",
            now=now,
            expected_version=1,
        ),
        patch=patch,
    )
    assert outcome.version == 2
    _, after = latest_doc(picoflow_session)
    book = after["flow"]["memory"]["Book"]["messages"]
    assert book[-2:] == patch.messages
    assert len(book) == len(before["flow"]["memory"]["Book"]["messages"]) + 2
    state = next(s for s in after["flow"]["steps"] if s["name"] == "Book")["state"]
    assert state["mood"] == "good" and "turns" not in state and "_saveOn" in state
    assert after["runStatus"] == "completed"
    record = selectors.get_session(session_id=picoflow_session)
    assert record.summary.message_count == sum(
        len(ns["messages"]) for ns in after["flow"]["memory"].values()
    )


def test_patch_picoflow_named_step_and_namespace(picoflow_session, now):
    patch = document_editors.DocumentPatch(
        state={"note": "x"}, step="Search", namespace="Search", messages=[]
    )
    document.patch_document(
        edit=EditRequest(
            session_id=picoflow_session, actor=EDITOR, reason="r", now=now, expected_version=1
        ),
        patch=patch,
    )
    _, after = latest_doc(picoflow_session)
    assert next(s for s in after["flow"]["steps"] if s["name"] == "Search")["state"]["note"] == "x"
    with pytest.raises(document_editors.NotEditable):
        document.patch_document(
            edit=EditRequest(
                session_id=picoflow_session, actor=EDITOR, reason="r", now=now, expected_version=2
            ),
            patch=document_editors.DocumentPatch(state={"a": 1}, step="Nope"),
        )


def test_patch_openai_chat_and_langchain(ingest, chat_session, now):
    document.patch_document(
        edit=EditRequest(
            session_id=chat_session, actor=EDITOR, reason="turn", now=now, expected_version=1
        ),
        patch=document_editors.DocumentPatch(
            messages=[{"role": "user", "content": "and now?"}], state={"plan": "pro"}
        ),
    )
    _, doc = latest_doc(chat_session)
    assert doc["messages"][-1] == {"role": "user", "content": "and now?"}
    assert doc["variables"] == {"plan": "pro"}

    lc = ingest(fixture_bytes("langchain/thread_state.json"))
    _, before = latest_doc(lc)
    document.patch_document(
        edit=EditRequest(session_id=lc, actor=EDITOR, reason="turn", now=now, expected_version=1),
        patch=document_editors.DocumentPatch(
            messages=[{"type": "human", "content": "thanks", "id": "h-new"}],
            state={"reviewed": True},
        ),
    )
    _, after = latest_doc(lc)
    assert after["values"]["messages"][-1]["content"] == "thanks"
    assert len(after["values"]["messages"]) == len(before["values"]["messages"]) + 1
    assert after["values"]["reviewed"] is True
    # A status the format cannot record is refused.
    with pytest.raises(document_editors.NotEditable):
        document.patch_document(
            edit=EditRequest(session_id=lc, actor=EDITOR, reason="r", now=now, expected_version=2),
            patch=document_editors.DocumentPatch(status="completed"),
        )


def test_patched_messages_that_break_the_format_are_refused(chat_session, now):
    with pytest.raises(InvalidDocument):
        document.patch_document(
            edit=EditRequest(
                session_id=chat_session, actor=EDITOR, reason="r", now=now, expected_version=1
            ),
            patch=document_editors.DocumentPatch(messages=[{"role": 7, "content": "x"}]),
        )
    assert DocumentVersion.objects.filter(session_id=chat_session).count() == 1


# --- index-only edits --------------------------------------------------------------------------


def test_hold_tags_notes_are_audited_without_a_new_version(chat_session, now):
    document.set_hold(
        edit=EditRequest(
            session_id=chat_session,
            actor=EDITOR,
            reason="investigating",
            now=now,
            expected_version=1,
        ),
        on_hold=True,
    )
    annotations.set_tags(
        edit=EditRequest(
            session_id=chat_session, actor=EDITOR, reason="triage", now=now, expected_version=1
        ),
        tags=[" vip ", "bug-123", "vip", ""],
    )
    annotations.set_notes(
        edit=EditRequest(
            session_id=chat_session, actor=EDITOR, reason="context", now=now, expected_version=1
        ),
        notes="Customer called twice.",
    )
    row = Session.objects.get(id=chat_session)
    assert row.on_hold and row.tags == ["vip", "bug-123"] and row.notes == "Customer called twice."
    assert row.latest_version == 1
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["hold", "tag", "note"]
    tag_entry = AuditEntry.objects.get(action="tag")
    assert tag_entry.diff == [
        {"op": "replace", "path": "/session/tags", "value": ["vip", "bug-123"], "old": []}
    ]
    release = document.set_hold(
        edit=EditRequest(
            session_id=chat_session, actor=EDITOR, reason="done", now=now, expected_version=1
        ),
        on_hold=False,
    )
    assert release.changed and AuditEntry.objects.filter(action="release").count() == 1
    # Index edits check the version too.
    with pytest.raises(VersionConflict):
        annotations.set_notes(
            edit=EditRequest(
                session_id=chat_session, actor=EDITOR, reason="r", now=now, expected_version=7
            ),
            notes="stale",
        )


def test_expiry_in_the_document_for_picoflow_v1(ingest, now):
    session_id = ingest(fixture_bytes("picoflow/v1_plain_structured.json"))
    expires = now + timedelta(days=3)
    outcome = document.set_expiry(
        edit=EditRequest(
            session_id=session_id,
            actor=EDITOR,
            reason="give it three days",
            now=now,
            expected_version=1,
        ),
        expires_at=expires,
    )
    assert outcome.version == 2
    _, doc = latest_doc(session_id)
    assert doc["expireAfter"] == 3 * 86400
    assert abs(Session.objects.get(id=session_id).expires_at - expires) < timedelta(seconds=2)
    document.set_expiry(
        edit=EditRequest(
            session_id=session_id, actor=EDITOR, reason="never", now=now, expected_version=2
        ),
        expires_at=None,
    )
    _, doc = latest_doc(session_id)
    assert "expireAfter" not in doc
    assert Session.objects.get(id=session_id).expires_at is None


def test_expiry_on_the_index_survives_new_versions_and_revives_expired(chat_session, now):
    Session.objects.filter(id=chat_session).update(
        status="expired", status_before_expiry="unknown", expired_at=now
    )
    expires = now + timedelta(hours=6)
    document.set_expiry(
        edit=EditRequest(
            session_id=chat_session, actor=EDITOR, reason="more time", now=now, expected_version=1
        ),
        expires_at=expires,
    )
    row = Session.objects.get(id=chat_session)
    assert row.expires_at == expires and row.status == "unknown" and row.expired_at is None
    document.edit_state(
        edit=EditRequest(
            session_id=chat_session, actor=EDITOR, reason="r", now=now, expected_version=1
        ),
        part="state",
        value={"plan": "x"},
    )
    assert Session.objects.get(id=chat_session).expires_at == expires
    with pytest.raises(EditError):
        document.set_expiry(
            edit=EditRequest(
                session_id=chat_session, actor=EDITOR, reason="past", now=now, expected_version=2
            ),
            expires_at=now - timedelta(seconds=1),
        )


# --- revert, checkpoints, restore, prune -------------------------------------------------------


def test_revert_is_a_new_version_with_the_old_bytes(chat_session, now):
    original = editing_selectors.get_latest_document(session_id=chat_session).body
    document.edit_state(
        edit=EditRequest(
            session_id=chat_session, actor=EDITOR, reason="oops", now=now, expected_version=1
        ),
        part="state",
        value={"plan": "broken"},
    )
    outcome = lineage.revert_to_version(
        edit=EditRequest(
            session_id=chat_session, actor=EDITOR, reason="undo oops", now=now, expected_version=2
        ),
        version=1,
    )
    assert outcome.version == 3
    assert editing_selectors.get_latest_document(session_id=chat_session).body == original
    entry = AuditEntry.objects.get(id=outcome.audit_id)
    assert entry.action == "revert" and entry.details == {"reverted_to": 1}
    assert entry.diff == [
        {"op": "replace", "path": "/variables/plan", "value": "basic", "old": "broken"}
    ]
    with pytest.raises(VersionNotFound):
        lineage.revert_to_version(
            edit=EditRequest(
                session_id=chat_session, actor=EDITOR, reason="r", now=now, expected_version=3
            ),
            version=99,
        )


def test_checkpoint_restore_and_pins_survive_pruning(chat_session, now):
    checkpoint = lineage.create_checkpoint(
        edit=EditRequest(session_id=chat_session, actor=EDITOR, reason="known good", now=now),
        name="good",
        version=None,
    )
    assert checkpoint.version == 1
    with pytest.raises(CheckpointExists):
        lineage.create_checkpoint(
            edit=EditRequest(session_id=chat_session, actor=EDITOR, reason="", now=now),
            name="good",
            version=1,
        )
    for n in range(2, 6):
        document.edit_state(
            edit=EditRequest(
                session_id=chat_session,
                actor=EDITOR,
                reason=f"edit {n}",
                now=now,
                expected_version=n - 1,
            ),
            part="state",
            value={"plan": f"p{n}"},
        )
    result = prune.prune_versions(now=now, keep=2)
    assert result.versions_deleted == 2  # v2 and v3; v1 is pinned
    kept = set(
        DocumentVersion.objects.filter(session_id=chat_session).values_list("number", flat=True)
    )
    assert kept == {1, 4, 5}
    restored = lineage.restore_checkpoint(
        edit=EditRequest(
            session_id=chat_session,
            actor=EDITOR,
            reason="back to good",
            now=now,
            expected_version=5,
        ),
        name="good",
    )
    assert restored.version == 6
    assert latest_doc(chat_session)[1]["variables"] == {"plan": "basic"}
    entry = AuditEntry.objects.get(id=restored.audit_id)
    assert entry.action == "restore" and entry.details["checkpoint"] == "good"
    with pytest.raises(CheckpointNotFound):
        lineage.restore_checkpoint(
            edit=EditRequest(
                session_id=chat_session, actor=EDITOR, reason="r", now=now, expected_version=6
            ),
            name="nope",
        )
    with pytest.raises(VersionNotFound):
        lineage.create_checkpoint(
            edit=EditRequest(session_id=chat_session, actor=EDITOR, reason="", now=now),
            name="pruned",
            version=2,
        )


# --- branches ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["picoflow/v1_5_trip.json", "picoflow/v1_ext_two_flows.json", *sorted(EDITABLE_FIXTURES)[3:8]],
)
def test_branch_makes_a_linked_session_with_a_new_id(name, ingest, now):
    parent = ingest(fixture_bytes(name))
    parent_record = selectors.get_session(session_id=parent)
    outcome = lineage.branch_session(
        edit=EditRequest(session_id=parent, actor=EDITOR, reason="try a fix", now=now),
        version=None,
        new_id=None,
    )
    child = selectors.get_session(session_id=outcome.session_id)
    assert child.format == parent_record.format and child.version == 1
    assert child.external_id != parent_record.external_id
    assert "~branch-1" in child.external_id
    extras_child = editing_selectors.session_extras(session_id=child.id)
    extras_parent = editing_selectors.session_extras(session_id=parent)
    assert extras_child.parent.id == parent and extras_child.parent.version == 1
    assert [b.id for b in extras_parent.branches] == [child.id]
    # The branch is a valid document of its format, carrying its own id.
    body = editing_selectors.get_latest_document(session_id=child.id).body
    _, parsed = parse_document(json.loads(body), format_id=child.format)
    assert parsed.session.external_id in (None, child.external_id) or child.external_id.endswith(
        parsed.session.external_id
    )
    assert AuditEntry.objects.filter(action="branch").count() == 2
    # A second branch gets the next number; a taken id is refused.
    second = lineage.branch_session(
        edit=EditRequest(session_id=parent, actor=EDITOR, reason="again", now=now),
        version=1,
        new_id=None,
    )
    assert "~branch-2" in second.external_id
    raw_id = document_editors.document_session_id(
        json.loads(editing_selectors.get_latest_document(session_id=child.id).body),
        child.external_id,
    )
    if raw_id is not None:
        with pytest.raises(BranchExists):
            lineage.branch_session(
                edit=EditRequest(session_id=parent, actor=EDITOR, reason="r", now=now),
                version=1,
                new_id=raw_id,
            )


def test_branch_from_an_older_version_with_a_chosen_id(picoflow_session, now):
    document.edit_status(
        edit=EditRequest(
            session_id=picoflow_session,
            actor=EDITOR,
            reason="it broke",
            now=now,
            expected_version=1,
        ),
        status="aborted",
    )
    outcome = lineage.branch_session(
        edit=EditRequest(
            session_id=picoflow_session, actor=EDITOR, reason="retry from before the break", now=now
        ),
        version=1,
        new_id="edit-me-retry",
    )
    assert outcome.external_id == "edit-me-retry" and outcome.branched_from_version == 1
    _, doc = latest_doc(outcome.session_id)
    assert doc["id"] == "edit-me-retry" and doc["runStatus"] == "running"


def test_id_less_documents_branch_under_the_new_key(ingest, now):
    parent = ingest(fixture_bytes("openai_chat/bare_list.json"))
    outcome = lineage.branch_session(
        edit=EditRequest(session_id=parent, actor=EDITOR, reason="r", now=now),
        version=None,
        new_id="bare-copy",
    )
    assert outcome.external_id == "bare-copy"
    assert (
        editing_selectors.get_latest_document(session_id=outcome.session_id).body
        == editing_selectors.get_latest_document(session_id=parent).body
    )


# --- delete and refusals ----------------------------------------------------------------------


def test_delete_is_audited_and_the_entry_outlives_the_session(chat_session, now):
    lineage.create_checkpoint(
        edit=EditRequest(session_id=chat_session, actor=EDITOR, reason="", now=now),
        name="c",
        version=1,
    )
    assert lineage.delete_session(
        edit=EditRequest(session_id=chat_session, actor=EDITOR, reason="gdpr", now=now)
    )
    assert not Session.objects.filter(id=chat_session).exists()
    assert not Checkpoint.objects.exists()
    entry = AuditEntry.objects.get(action="delete")
    assert entry.session_id is None and entry.session_key == chat_session
    assert entry.session_external_id == "chat-edit-me"
    page = editing_selectors.list_audit(
        filters=editing_selectors.AuditFilters(session=chat_session)
    )
    assert [e.action for e in page.items] == ["delete", "checkpoint"]


def test_unknown_sessions_are_not_found(db, now):
    with pytest.raises(NotFound):
        annotations.set_notes(
            edit=EditRequest(
                session_id="not-a-uuid", actor=EDITOR, reason="r", now=now, expected_version=1
            ),
            notes="x",
        )


def test_audit_filters_and_paging(chat_session, picoflow_session, now):
    for n in range(5):
        annotations.set_notes(
            edit=EditRequest(
                session_id=chat_session,
                actor=EDITOR,
                reason=f"r{n}",
                now=now + timedelta(seconds=n),
                expected_version=1,
            ),
            notes=f"n{n}",
        )
    document.set_hold(
        edit=EditRequest(
            session_id=picoflow_session,
            actor=Actor(label="key:bot (abc)"),
            reason="bot",
            now=now,
            expected_version=1,
        ),
        on_hold=True,
    )
    all_entries = editing_selectors.list_audit(filters=editing_selectors.AuditFilters())
    assert len(all_entries.items) == 6
    page = editing_selectors.list_audit(
        filters=editing_selectors.AuditFilters(session="chat-edit-me"), limit=2
    )
    assert [e.reason for e in page.items] == ["r4", "r3"]
    page2 = editing_selectors.list_audit(
        filters=editing_selectors.AuditFilters(session="chat-edit-me"),
        cursor=page.next_cursor,
        limit=10,
    )
    assert [e.reason for e in page2.items] == ["r2", "r1", "r0"] and page2.next_cursor is None
    by_key = editing_selectors.list_audit(filters=editing_selectors.AuditFilters(actor="bot"))
    assert [e.actor for e in by_key.items] == ["key:bot (abc)"]
    by_action = editing_selectors.list_audit(filters=editing_selectors.AuditFilters(action="hold"))
    assert len(by_action.items) == 1
    in_window = editing_selectors.list_audit(
        filters=editing_selectors.AuditFilters(
            since=now + timedelta(seconds=1), until=now + timedelta(seconds=3)
        )
    )
    assert [e.reason for e in in_window.items] == ["r2", "r1"]
    with pytest.raises(InvalidQuery):
        editing_selectors.list_audit(filters=editing_selectors.AuditFilters(action="nope"))
    with pytest.raises(InvalidQuery):
        editing_selectors.list_audit(filters=editing_selectors.AuditFilters(), cursor="garbage")


def test_conflict_view_rebases_my_change_onto_theirs(chat_session, now):
    document.edit_state(
        edit=EditRequest(
            session_id=chat_session, actor=EDITOR, reason="theirs", now=now, expected_version=1
        ),
        part="state",
        value={"plan": "basic", "seats": 3},
    )
    view = editing_selectors.conflict_view(
        session_id=chat_session,
        format_id="openai_chat",
        part="state",
        seen_version=1,
        mine={"plan": "pro"},
    )
    assert view.current_version == 2
    assert view.rebased == {"plan": "pro", "seats": 3}
    assert view.conflicts == []
    assert view.theirs_diff.added == 2 and view.mine_diff.added == 1


def test_conflict_view_of_a_huge_reordered_part_answers_within_the_diff_budget(chat_session, now):
    seen = {"rows": list(range(29_000))}
    for version, value in ((1, seen), (2, {"rows": seen["rows"][::-1]})):
        document.edit_state(
            edit=EditRequest(
                session_id=chat_session,
                actor=EDITOR,
                reason="big",
                now=now,
                expected_version=version,
            ),
            part="state",
            value=value,
        )
    started = time.thread_time()
    view = editing_selectors.conflict_view(
        session_id=chat_session,
        format_id="openai_chat",
        part="state",
        seen_version=2,
        mine={"rows": [*seen["rows"], "mine"]},
    )
    cpu = time.thread_time() - started
    assert view.current_version == 3
    assert view.theirs_diff.too_large and view.theirs_diff.lines == []
    assert not view.mine_diff.too_large and view.mine_diff.added == 2  # the new row, a comma
    assert cpu < 2.0, f"the conflict page cost {cpu:.2f} s of CPU"  # generous; difflib: 14.6 s


def test_picoflow_body_helper_is_valid(now):
    doc = json.loads(picoflow_body(now=now))
    _, parsed = parse_document(doc, format_id="picoflow")
    assert [s.name for s in parsed.session.steps] == ["Search", "Book"]
