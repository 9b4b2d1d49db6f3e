"""The session editing forms: the JSON editor, status, expiry, hold, tags and notes; revert,
checkpoint, restore, branch and delete. They check fields only; the editing services decide
everything else (what a format allows, stale versions, lineage)."""

from __future__ import annotations

from datetime import datetime

from django import forms

from dashboard.forms.common import check_moment_range, parse_moment
from sessions_api.editing.annotations import MAX_NOTES_CHARS
from sessions_api.editing.audit import MAX_REASON_CHARS
from sessions_api.editing.values import Actor, EditRequest

MAX_VERSION = 2**31 - 1  # larger numbers cannot be versions (32-bit columns)


class EditForm(forms.Form):
    """A form that asks for one change to a session, and says why."""

    reason = forms.CharField(max_length=MAX_REASON_CHARS)

    def edit_request(self, *, session_id: str, actor: Actor, now: datetime) -> EditRequest:
        """The edit this valid form asks for."""
        return EditRequest(
            session_id=session_id,
            actor=actor,
            reason=self.cleaned_data["reason"],
            now=now,
            expected_version=self.cleaned_data.get("expected_version"),
            expected_index_revision=self.cleaned_data.get("expected_index_revision"),
        )


class VersionedEditForm(EditForm):
    """What every edit of the session's state carries: why, and the version it was made on (a
    stale one gets the conflict page, never a silent overwrite)."""

    expected_version = forms.IntegerField(min_value=1, max_value=MAX_VERSION)


class IndexEditForm(VersionedEditForm):
    """An edit of what lives on the session row only (expiry, hold, tags, notes): it adds no
    version, so it also carries the index revision the form showed."""

    expected_index_revision = forms.IntegerField(min_value=0, max_value=MAX_VERSION)


class PartForm(VersionedEditForm):
    part = forms.CharField(max_length=100)
    value = forms.CharField(strip=False, max_length=20_000_000)


class StatusForm(VersionedEditForm):
    status = forms.CharField(max_length=32)


class ExpiryForm(IndexEditForm):
    expires_at = forms.CharField(required=False, max_length=40)
    no_expiry = forms.BooleanField(required=False)

    def expiry(self) -> datetime | None:
        if self.cleaned_data.get("no_expiry"):
            return None
        text = (self.cleaned_data.get("expires_at") or "").strip()
        if not text:
            raise forms.ValidationError("Pick a time, or tick “no expiry”.")
        moment = parse_moment(text)
        if moment is None:
            raise forms.ValidationError("Not a date and time.")
        return check_moment_range(moment)


class HoldForm(IndexEditForm):
    on_hold = forms.TypedChoiceField(choices=[("1", "hold"), ("0", "release")], coerce=str)


class AnnotationsForm(IndexEditForm):
    tags = forms.CharField(required=False, max_length=2000)
    notes = forms.CharField(required=False, max_length=MAX_NOTES_CHARS, strip=False)


class RevertForm(VersionedEditForm):
    version = forms.IntegerField(min_value=1, max_value=MAX_VERSION)


class RestoreForm(VersionedEditForm):
    checkpoint = forms.CharField(max_length=100)


class CheckpointForm(forms.Form):
    name = forms.CharField(max_length=100)
    version = forms.IntegerField(min_value=1, max_value=MAX_VERSION, required=False)
    note = forms.CharField(required=False, max_length=MAX_REASON_CHARS)

    def edit_request(self, *, session_id: str, actor: Actor, now: datetime) -> EditRequest:
        """The checkpoint this valid form asks for; its note is the reason (and optional)."""
        return EditRequest(
            session_id=session_id,
            actor=actor,
            reason=self.cleaned_data.get("note") or "",
            now=now,
        )


class BranchForm(EditForm):
    version = forms.IntegerField(min_value=1, max_value=MAX_VERSION, required=False)
    new_id = forms.CharField(required=False, max_length=200)


class DeleteForm(EditForm):
    confirm = forms.BooleanField()


def problem_text(form: forms.Form) -> str:
    """A refused form's errors on one line, each after the field it is about."""
    parts = []
    for name, errors in form.errors.items():
        label = "" if name == "__all__" else f"{name.replace('_', ' ')}: "
        parts.append(label + " ".join(errors))
    return "; ".join(parts) or "The form is incomplete."
