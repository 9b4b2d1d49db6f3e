"""Editing a session in the dashboard: the JSON editor for its state, status, expiry,
hold, tags and notes; revert, checkpoint, restore, branch and delete. Editors (group
``editor``), admins (group ``admin``) and superusers edit; deleting is for admins.

Thin: every POST is one editing service call. A stale form (someone saved meanwhile) renders
the conflict page with a diff and a form that re-applies the change on top of the latest
version; nothing is ever overwritten silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from dashboard.forms.editing import (
    AnnotationsForm,
    BranchForm,
    CheckpointForm,
    DeleteForm,
    ExpiryForm,
    HoldForm,
    PartForm,
    RestoreForm,
    RevertForm,
    StatusForm,
    VersionedEditForm,
    problem_text,
)
from sessions_api.access import roles
from sessions_api.editing import annotations, document, lineage
from sessions_api.editing import selectors as editing_selectors
from sessions_api.editing.values import EditOutcome, EditRequest
from sessions_api.errors import (
    AmbiguousSessionId,
    EditError,
    IndexConflict,
    InvalidDocument,
    NotEditable,
    NotFound,
    RejectedDocument,
    RevisionConflict,
    VersionConflict,
)
from sessions_api.formats.decoding import decode_document
from sessions_api.sessions import selectors
from sessions_api.sessions.records import SessionRecord

EDIT = roles.Capability.EDIT
ADMIN = roles.Capability.ADMIN
# What an edit form shows back to the editor as a refusal (a stale version has its own page).
_REFUSALS = (EditError, NotFound, NotEditable, InvalidDocument, RejectedDocument)


# --- the editor page --------------------------------------------------------------------------


@login_required
@require_GET
def edit_page(request: HttpRequest, session_id: str) -> HttpResponse:
    record = _record(session_id)
    roles.require_user(request, EDIT, attempted="open the editor", session_id=record.id)
    view = editing_selectors.editor_view(session_id=record.id, part=request.GET.get("part"))
    if view is None:
        raise Http404("no such session")
    return _render_editor(request, record, view, text=_pretty(view.value))


def _render_editor(
    request: HttpRequest,
    record: SessionRecord,
    view: editing_selectors.EditorView,
    *,
    text: str,
    problem: str = "",
    problem_path: str = "",
    reason: str = "",
    status: int = 200,
) -> HttpResponse:
    extras = editing_selectors.session_extras(session_id=record.id)
    versions = selectors.list_versions(session_id=record.id)
    return render(
        request,
        "dashboard/edit.html",
        {
            "nav": "sessions",
            "tab": "edit",
            "record": record,
            "s": record.summary,
            "version": record.version,
            "versions_count": record.version,
            "view": view,
            "text": text,
            "problem": problem,
            "problem_path": problem_path,
            "reason": reason,
            "extras": extras,
            "versions": list(reversed(versions)),
            "can_delete": roles.user_can(request.user, ADMIN),
            "statuses": view.capabilities.statuses,
        },
        status=status,
    )


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


# --- saves ------------------------------------------------------------------------------------


@login_required
@require_POST
def save_part(request: HttpRequest, session_id: str) -> HttpResponse:
    """Save the JSON editor: one part, or the whole document."""
    record = _record(session_id)
    actor = roles.require_user(request, EDIT, attempted="edit state", session_id=record.id)
    form = PartForm(request.POST)
    part = request.POST.get("part") or ""
    view = editing_selectors.editor_view(session_id=record.id, part=part)
    if view is None:
        raise Http404("no such session")
    text = request.POST.get("value", "")
    if not form.is_valid():
        return _render_editor(
            request, record, view, text=text, problem=problem_text(form), status=422
        )
    data = form.cleaned_data
    try:
        value = decode_document(data["value"].encode("utf-8"))
    except RejectedDocument as exc:
        return _render_editor(
            request,
            record,
            view,
            text=text,
            problem=f"Not valid JSON: {exc.message}",
            reason=data["reason"],
            status=422,
        )
    try:
        edit = form.edit_request(session_id=record.id, actor=actor, now=timezone.now())
        if data["part"] == editing_selectors.DOCUMENT_PART:
            outcome = document.save_document(edit=edit, body=data["value"].encode("utf-8"))
        else:
            outcome = document.edit_state(edit=edit, part=data["part"], value=value)
    except VersionConflict as exc:
        return _part_conflict(request, record, data, value, exc)
    except _REFUSALS as exc:
        return _render_editor(
            request,
            record,
            view,
            text=text,
            problem=_refusal_text(exc),
            problem_path=getattr(exc, "path", ""),
            reason=data["reason"],
            status=422,
        )
    except RevisionConflict as exc:
        return _render_editor(
            request, record, view, text=text, problem=exc.message, reason=data["reason"], status=409
        )
    _flash_saved(request, outcome)
    editor = reverse("dashboard:session_edit", args=[record.id])
    # Part keys such as "step:0:1" stay readable in the address bar.
    return redirect(f"{editor}?{urlencode({'part': data['part']}, safe=':')}")


def _part_conflict(
    request: HttpRequest,
    record: SessionRecord,
    data: dict[str, Any],
    mine: Any,
    exc: VersionConflict,
) -> HttpResponse:
    conflict = editing_selectors.conflict_view(
        session_id=record.id,
        format_id=record.format,
        part=data["part"],
        seen_version=data["expected_version"],
        mine=mine,
    )
    current = _record(record.id)
    return render(
        request,
        "dashboard/conflict.html",
        {
            "nav": "sessions",
            "record": current,
            "s": current.summary,
            "version": current.version,
            "versions_count": current.version,
            "conflict": conflict,
            "kind": "part",
            "part": data["part"],
            "part_label": _part_label(record.id, data["part"]),
            "text": _pretty(conflict.rebased),
            "reason": data["reason"],
            "action": reverse("dashboard:edit_save", args=[record.id]),
        },
        status=409,
    )


def _part_label(session_id: str, part: str) -> str:
    view = editing_selectors.editor_view(session_id=session_id, part=part)
    return view.part_label if view else part


@login_required
@require_POST
def save_status(request: HttpRequest, session_id: str) -> HttpResponse:
    return _form_save(
        request,
        session_id,
        StatusForm,
        attempted="edit the status",
        call=lambda edit, d, form: document.edit_status(edit=edit, status=d["status"]),
    )


@login_required
@require_POST
def save_expiry(request: HttpRequest, session_id: str) -> HttpResponse:
    return _form_save(
        request,
        session_id,
        ExpiryForm,
        attempted="set the expiry",
        call=lambda edit, d, form: document.set_expiry(edit=edit, expires_at=form.expiry()),
    )


@login_required
@require_POST
def save_hold(request: HttpRequest, session_id: str) -> HttpResponse:
    return _form_save(
        request,
        session_id,
        HoldForm,
        attempted="hold or release",
        call=lambda edit, d, form: document.set_hold(edit=edit, on_hold=d["on_hold"] == "1"),
    )


@login_required
@require_POST
def save_annotations(request: HttpRequest, session_id: str) -> HttpResponse:
    def call(edit: EditRequest, d: dict[str, Any], form: forms.Form) -> EditOutcome:
        tags = annotations.set_tags(edit=edit, tags=list(d["tags"].split(",")))
        # One form, two saves: the notes follow the tags' own revision, not a stale one.
        edit = replace(edit, expected_index_revision=tags.index_revision)
        notes = annotations.set_notes(edit=edit, notes=d["notes"])
        return notes if notes.changed else tags

    return _form_save(
        request, session_id, AnnotationsForm, attempted="edit tags and notes", call=call
    )


@login_required
@require_POST
def revert(request: HttpRequest, session_id: str) -> HttpResponse:
    return _form_save(
        request,
        session_id,
        RevertForm,
        attempted="revert",
        call=lambda edit, d, form: lineage.revert_to_version(edit=edit, version=d["version"]),
    )


@login_required
@require_POST
def restore(request: HttpRequest, session_id: str) -> HttpResponse:
    return _form_save(
        request,
        session_id,
        RestoreForm,
        attempted="restore a checkpoint",
        call=lambda edit, d, form: lineage.restore_checkpoint(edit=edit, name=d["checkpoint"]),
    )


@login_required
@require_POST
def create_checkpoint(request: HttpRequest, session_id: str) -> HttpResponse:
    record = _record(session_id)
    actor = roles.require_user(request, EDIT, attempted="create a checkpoint", session_id=record.id)
    form = CheckpointForm(request.POST)
    if not form.is_valid():
        messages.error(request, problem_text(form))
        return redirect(_back(request, record))
    data = form.cleaned_data
    try:
        outcome = lineage.create_checkpoint(
            edit=form.edit_request(session_id=record.id, actor=actor, now=timezone.now()),
            name=data["name"],
            version=data.get("version"),
        )
    except (EditError, NotFound) as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Pinned version {outcome.version} as “{outcome.name}”.")
    return redirect(_back(request, record))


@login_required
@require_POST
def branch(request: HttpRequest, session_id: str) -> HttpResponse:
    record = _record(session_id)
    actor = roles.require_user(request, EDIT, attempted="branch", session_id=record.id)
    form = BranchForm(request.POST)
    if not form.is_valid():
        messages.error(request, problem_text(form))
        return redirect(_back(request, record))
    data = form.cleaned_data
    try:
        outcome = lineage.branch_session(
            edit=form.edit_request(session_id=record.id, actor=actor, now=timezone.now()),
            version=data.get("version"),
            new_id=data.get("new_id") or None,
        )
    except _REFUSALS as exc:
        messages.error(request, _refusal_text(exc))
        return redirect(_back(request, record))
    messages.success(
        request,
        f"Branched version {outcome.branched_from_version} into {outcome.external_id}.",
    )
    return redirect("dashboard:session", session_id=outcome.session_id)


@login_required
@require_POST
def delete(request: HttpRequest, session_id: str) -> HttpResponse:
    record = _record(session_id)
    actor = roles.require_user(request, ADMIN, attempted="delete a session", session_id=record.id)
    form = DeleteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a reason and tick the confirmation to delete.")
        return redirect(_back(request, record))
    lineage.delete_session(
        edit=form.edit_request(session_id=record.id, actor=actor, now=timezone.now())
    )
    messages.success(request, f"Deleted session {record.external_id} with every version.")
    return redirect("dashboard:sessions")


# --- shared -----------------------------------------------------------------------------------


def _form_save(
    request: HttpRequest,
    session_id: str,
    form_class: type[VersionedEditForm],
    *,
    attempted: str,
    call: Callable[[EditRequest, dict[str, Any], Any], EditOutcome],
) -> HttpResponse:
    """Validate a small form, call its service, and answer: back to the editor with a message,
    or the conflict page when the form was stale. ``call(edit, data, form)`` gets the
    :class:`EditRequest` the form asks for."""
    record = _record(session_id)
    actor = roles.require_user(request, EDIT, attempted=attempted, session_id=record.id)
    form = form_class(request.POST)
    if not form.is_valid():
        messages.error(request, problem_text(form))
        return redirect(_back(request, record))
    data = form.cleaned_data
    try:
        edit = form.edit_request(session_id=record.id, actor=actor, now=timezone.now())
        outcome = call(edit, data, form)
    except VersionConflict as exc:
        return _form_conflict(request, record, exc)
    except forms.ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(_back(request, record))
    except _REFUSALS as exc:
        messages.error(request, _refusal_text(exc))
        return redirect(_back(request, record))
    except RevisionConflict as exc:
        messages.error(request, exc.message)
        return redirect(_back(request, record))
    _flash_saved(request, outcome)
    return redirect(_back(request, record))


def _form_conflict(
    request: HttpRequest, record: SessionRecord, exc: VersionConflict
) -> HttpResponse:
    current = _record(record.id)
    if isinstance(exc, IndexConflict):
        conflict = None
        kind = "index"
    else:
        conflict = editing_selectors.conflict_view(
            session_id=record.id,
            format_id=record.format,
            part=editing_selectors.DOCUMENT_PART,
            seen_version=exc.expected_version,
            mine=None,
        )
        kind = "form"
    extras = editing_selectors.session_extras(session_id=record.id)
    replay = [
        (name, value)
        for name, value in request.POST.items()
        if name
        not in ("csrfmiddlewaretoken", "expected_version", "expected_index_revision", "reason")
    ]
    return render(
        request,
        "dashboard/conflict.html",
        {
            "nav": "sessions",
            "record": current,
            "s": current.summary,
            "version": current.version,
            "versions_count": current.version,
            "conflict": conflict,
            "index_conflict": exc if kind == "index" else None,
            "index_revision": extras.index_revision if extras else 0,
            "kind": kind,
            "replay": replay,
            "reason": request.POST.get("reason", ""),
            "action": request.path,
        },
        status=409,
    )


def _record(session_id: Any) -> SessionRecord:
    try:
        record = selectors.get_session(session_id=str(session_id))
    except AmbiguousSessionId:
        record = None
    if record is None:
        raise Http404("no such session")
    return record


def _back(request: HttpRequest, record: SessionRecord) -> str:
    """Back to the page the form was on (the editor or the session page)."""
    target = request.POST.get("next") or ""
    if target.startswith(reverse("dashboard:session", args=[record.id])) and "//" not in target:
        return target
    return reverse("dashboard:session_edit", args=[record.id])


def _flash_saved(request: HttpRequest, outcome: EditOutcome) -> None:
    if not outcome.changed:
        messages.info(request, "Nothing changed: the result equals the latest version.")
    elif outcome.diff and outcome.diff[0].get("path", "").startswith("/session/"):
        messages.success(request, "Saved. The change is in the audit log.")
    else:
        messages.success(
            request, f"Saved as version {outcome.version}. The change is in the audit log."
        )


def _refusal_text(exc: Exception) -> str:
    message = getattr(exc, "message", str(exc))
    path = getattr(exc, "path", "")
    if isinstance(exc, InvalidDocument | RejectedDocument):
        where = f" (at {path})" if path else ""
        return f"Refused: the edited document is not valid for its format{where}: {message}"
    return message
