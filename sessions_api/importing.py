"""Bulk import from files: single JSON documents, JSONL, and folders of them (recursively).

Each document goes through the same ingest as the API, so re-running an import stores nothing
twice (identical bytes are "unchanged"). A bad file or line is reported and never stops the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sessions_api import services
from sessions_api.formats import InvalidDocument
from sessions_api.formats.decoding import RejectedDocument
from sessions_api.models import DocumentVersion

DOCUMENT_SUFFIXES = {".json"}
LINE_SUFFIXES = {".jsonl", ".ndjson"}


@dataclass(frozen=True)
class ImportSource:
    """One document to import: where it came from (file, or file:line) and its bytes."""

    label: str
    body: bytes


@dataclass(frozen=True)
class ImportResult:
    label: str
    ok: bool
    detail: str
    created: bool = False
    changed: bool = False
    session_id: str | None = None


def find_files(paths: Iterable[Path]) -> list[Path]:
    """Every importable file under the given files and folders, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES | LINE_SUFFIXES
                )
            )
        else:
            found.append(path)
    return found


def read_sources(path: Path) -> Iterator[ImportSource]:
    """The documents in one file: the whole file, or each non-blank line of a JSONL file."""
    data = path.read_bytes()
    if path.suffix.lower() in LINE_SUFFIXES:
        for number, line in enumerate(data.splitlines(), start=1):
            if line.strip():
                yield ImportSource(label=f"{path}:{number}", body=line)
    else:
        yield ImportSource(label=str(path), body=data)


def import_source(source: ImportSource, *, format_id: str | None = None) -> ImportResult:
    try:
        outcome = services.ingest_document(
            body=source.body, format_id=format_id, source=DocumentVersion.Source.IMPORT
        )
    except RejectedDocument as exc:
        return ImportResult(source.label, ok=False, detail=_error_text(exc.code, exc.message))
    except InvalidDocument as exc:
        return ImportResult(source.label, ok=False, detail=_error_text(exc.code, exc.message))
    except services.RevisionConflict as exc:
        return ImportResult(source.label, ok=False, detail=f"revision_conflict: {exc.message}")
    if outcome.created:
        detail = f"new session ({outcome.format}, {outcome.summary.message_count} messages)"
    elif outcome.changed:
        detail = f"new version {outcome.version}"
    else:
        detail = "unchanged"
    if outcome.warnings:
        detail += f", {len(outcome.warnings)} warning(s)"
    return ImportResult(
        source.label,
        ok=True,
        detail=detail,
        created=outcome.created,
        changed=outcome.changed,
        session_id=outcome.id,
    )


def _error_text(code: str, message: str) -> str:
    return f"{code}: {message}"
