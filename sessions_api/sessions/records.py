"""Frozen read models that leave the storage layer: entry points never see ORM rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sessions_api.models import DocumentVersion, Session


@dataclass(frozen=True)
class SessionSummary:
    status: str
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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SessionRecord:
    id: str
    external_id: str
    format: str
    format_variant: str
    detection_rule: str
    version: int
    title: str
    raw_status: str
    status_before_expiry: str
    on_hold: bool
    error_count: int
    warning_count: int
    has_errors: bool
    tokens_source: str
    revision: int | None
    parent_external_id: str
    first_received_at: datetime
    last_received_at: datetime
    summary: SessionSummary


@dataclass(frozen=True)
class VersionRecord:
    number: int
    received_at: datetime
    size_bytes: int
    sha256: str
    revision: int | None
    source: str
    # How the store keeps it ("zstd" snapshot, "delta" of stored_base_version, "raw") and the
    # bytes that takes; None where the store does not say.
    stored_encoding: str | None = None
    stored_base_version: int | None = None
    stored_bytes: int | None = None


def summary_from_row(row: Session) -> SessionSummary:
    return SessionSummary(
        status=row.status,
        message_count=row.message_count,
        tool_call_count=row.tool_call_count,
        tool_error_count=row.tool_error_count,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        total_tokens=row.total_tokens,
        agent=row.agent or None,
        user=row.user or None,
        models=list(row.model_names or []),
        started_at=row.started_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
    )


def record_from_row(row: Session) -> SessionRecord:
    return SessionRecord(
        id=str(row.id),
        external_id=row.external_id,
        format=row.format,
        format_variant=row.format_variant,
        detection_rule=row.detection_rule,
        version=row.latest_version,
        title=row.title,
        raw_status=row.raw_status,
        status_before_expiry=row.status_before_expiry,
        on_hold=row.on_hold,
        error_count=row.error_count,
        warning_count=row.warning_count,
        has_errors=row.has_errors,
        tokens_source=row.tokens_source,
        revision=row.revision,
        parent_external_id=row.parent_external_id,
        first_received_at=row.first_received_at,
        last_received_at=row.last_received_at,
        summary=summary_from_row(row),
    )


def version_from_row(row: DocumentVersion) -> VersionRecord:
    return VersionRecord(
        number=row.number,
        received_at=row.received_at,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        revision=row.revision,
        source=row.source,
    )
