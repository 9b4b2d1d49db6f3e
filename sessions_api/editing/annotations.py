"""What people write on a session: its tags and notes. They live on the session row only (no
document version) but follow the rules of every edit: a reason, the version the editor started
from, an audit entry."""

from __future__ import annotations

from sessions_api.editing.document import edit_index_column
from sessions_api.editing.values import EditOutcome, EditRequest, is_printable
from sessions_api.errors import EditError
from sessions_api.models import AuditEntry

MAX_NOTES_CHARS = 10_000
MAX_TAGS = 20
MAX_TAG_CHARS = 50


def set_tags(*, edit: EditRequest, tags: list[str]) -> EditOutcome:
    return edit_index_column(
        edit=edit, action=AuditEntry.Action.TAG, column="tags", value=clean_tags(tags)
    )


def set_notes(*, edit: EditRequest, notes: str) -> EditOutcome:
    notes = (notes or "").replace("\x00", "").strip()
    if len(notes) > MAX_NOTES_CHARS:
        raise EditError(f"notes are limited to {MAX_NOTES_CHARS} characters", path="notes")
    return edit_index_column(edit=edit, action=AuditEntry.Action.NOTE, column="notes", value=notes)


def clean_tags(tags: list[str]) -> list[str]:
    cleaned: list[str] = []
    for tag in tags:
        text = str(tag).strip()
        if not text:
            continue
        if len(text) > MAX_TAG_CHARS or not is_printable(text):
            raise EditError(
                f"a tag is 1-{MAX_TAG_CHARS} printable characters: {text[:60]!r}", path="tags"
            )
        if text not in cleaned:
            cleaned.append(text)
    if len(cleaned) > MAX_TAGS:
        raise EditError(f"at most {MAX_TAGS} tags", path="tags")
    return cleaned
