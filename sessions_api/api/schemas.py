"""Response and request shapes, as they appear in the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import Field


class ErrorOut(Schema):
    code: str
    message: str
    path: str | None = None
    details: dict[str, Any] | None = None


def error_responses(*statuses: int) -> dict[int, type[ErrorOut]]:
    """An operation's error answers for the OpenAPI schema: each status with the error body."""
    return dict.fromkeys(statuses, ErrorOut)


class WarningOut(Schema):
    code: str
    message: str
    path: str = ""


class SummaryOut(Schema):
    status: Literal["running", "completed", "aborted", "abandoned", "expired", "error", "unknown"]
    message_count: int
    tool_call_count: int
    tool_error_count: int
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    agent: str | None
    user: str | None
    models: list[str]
    started_at: datetime
    updated_at: datetime
    expires_at: datetime | None


class IngestOut(Schema):
    id: str
    external_id: str
    format: str
    version: int
    created: bool
    changed: bool
    summary: SummaryOut
    warnings: list[WarningOut]
    detected_by: str


class BatchItemOut(Schema):
    index: int
    ok: bool
    id: str | None = None
    external_id: str | None = None
    version: int | None = None
    created: bool | None = None
    changed: bool | None = None
    error: ErrorOut | None = None


class BatchOut(Schema):
    results: list[BatchItemOut]


class SearchMatchOut(Schema):
    """Where a session matched ``q``: the first timeline event holding a term (``event_index``
    as in the timeline; null when it was the session's own ids, title, agent or user), and a
    plain-text snippet of it with the matched spans as [start, end) offsets."""

    event_index: int | None
    seq: int | None
    kind: str
    snippet: str
    highlights: list[tuple[int, int]]


class SessionListItem(Schema):
    id: str
    external_id: str
    format: str
    version: int
    title: str
    has_errors: bool
    summary: SummaryOut
    match: SearchMatchOut | None = None


class SessionListOut(Schema):
    items: list[SessionListItem]
    next_cursor: str | None


class StepOut(Schema):
    name: str
    order: int
    active: bool | None
    state: Any = None
    model: str | None
    model_params: Any = None
    saved_at: datetime | None
    level: int
    flow: str | None


class SessionDetailOut(Schema):
    id: str
    external_id: str
    format: str
    format_variant: str
    detected_by: str
    version: int
    title: str
    raw_status: str
    status_before_expiry: str
    on_hold: bool
    revision: int | None
    parent_external_id: str
    first_received_at: datetime
    last_received_at: datetime
    tokens_source: str
    summary: SummaryOut
    steps: list[StepOut]
    flows: list[dict[str, Any]]
    state: Any = None
    context: Any = None
    metadata: dict[str, Any]
    log_counts: dict[str, int]
    warnings: list[WarningOut]


def deprecated_list(old_key: str) -> Any:
    """The key a list had before every list answered ``{items, next_cursor}``: still sent, for
    one release, with the same list; marked deprecated in the OpenAPI document."""
    return Field(
        description=f"Deprecated: the same list as `items`; `{old_key}` goes in the next release.",
        json_schema_extra={"deprecated": True},
    )


class TimelineOut(Schema):
    session_id: str
    version: int
    total: int
    items: list[dict[str, Any]]
    next_cursor: str | None
    events: list[dict[str, Any]] = deprecated_list("events")


class VersionOut(Schema):
    number: int
    received_at: datetime
    size_bytes: int
    sha256: str
    revision: int | None
    source: str
    stored_encoding: str | None = Field(
        description="how the store keeps it: zstd (a snapshot), delta (of stored_base_version) "
        "or raw; null where the store does not say"
    )
    stored_base_version: int | None
    stored_bytes: int | None = Field(description="what it takes in the store")


class VersionsOut(Schema):
    session_id: str
    items: list[VersionOut]
    next_cursor: str | None = Field(description="always null: every version is listed at once")
    versions: list[VersionOut] = deprecated_list("versions")
