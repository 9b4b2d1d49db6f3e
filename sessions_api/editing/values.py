"""The values every editing service shares: who acts, what they ask for and what an edit
answers. Frozen, so they cross from the API, the dashboard and the admin to the services and
back unchanged."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a dashboard user, an API key, or the system."""

    label: str  # "user:alice", "key:agent-1 (ab12cd34ef56)", "system"
    user_id: int | None = None


SYSTEM = Actor(label="system")


@dataclass(frozen=True)
class EditRequest:
    """One change asked of a session: which session, who asks, why, from which version, and
    when. Every editing service takes one.

    ``expected_version`` is the version the editor started from; an edit made on any other is
    refused (locking.py). Checkpoints, branches and deletes overwrite nothing and need none. A
    checkpoint's ``reason`` is its note, and may be empty.

    ``expected_index_revision`` is the session's index revision the editor's form showed: an
    index-only edit (tags, notes, hold, an index expiry) adds no version, so this is what
    makes a stale form of those fail. Every form that shows them sends it.
    """

    session_id: str
    actor: Actor
    reason: str
    now: datetime
    expected_version: int | None = None
    expected_index_revision: int | None = None


@dataclass(frozen=True)
class EditOutcome:
    session_id: str
    external_id: str
    format: str
    version: int
    changed: bool
    audit_id: int | None = None
    diff: list[dict[str, Any]] = field(default_factory=list)
    index_revision: int | None = None
    warnings: list[dict[str, str]] = field(default_factory=list)


def is_printable(text: str) -> bool:
    """Tags, checkpoint names and branch ids are typed by people: no control characters."""
    return _CONTROL.search(text) is None
