"""AgentFlow ``FileSystemStorage`` session folders read as one export bundle each.

AgentFlow keeps a session as a folder: ``sessions/<id>/session.json``, per-node notes
``<workflow>/<node>_scratch.md`` and ``_summary.md``, and ``artifacts/<name>``. A folder becomes
one ``agentflow`` export bundle (the shape ``parse.py`` reads), serialised deterministically
(sorted files, fixed key order, no paths or file times) so that re-importing an unchanged folder
stores nothing new. JSON artifacts are embedded parsed, text as text, binary as base64 up to
``INLINE_BINARY_BYTES`` (else listed by size and sha256 with ``"omitted": true``); text over
``INLINE_TEXT_BYTES`` is listed the same way, so one huge file cannot push the whole session
over the document size limit.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from sessions_api.errors import RejectedDocument
from sessions_api.formats.decoding import DecodeLimits, check_content, parse_json_text

SESSION_FILE = "session.json"
HISTORY_FILE = "history.json"  # written by some apps beside session.json, not AgentFlow
ARTIFACTS_DIR = "artifacts"
INLINE_BINARY_BYTES = 256 * 1024
INLINE_TEXT_BYTES = 1024 * 1024
_SESSION_KEYS = frozenset({"id", "agent", "workflow", "status"})
_MAX_SESSION_JSON_BYTES = 1024 * 1024
# A fixed table (mimetypes depends on the machine's mime.types, which would make the bundle
# differ between machines).
_MEDIA_TYPES = {
    ".json": "application/json",
    ".md": "text/markdown",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".html": "text/html",
    ".xml": "application/xml",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
    ".pdf": "application/pdf",
}
# An artifact's JSON sits three levels down in the bundle (bundle > artifacts > entry > json).
_ARTIFACT_JSON_DEPTH = 3


def is_session_folder(path: Path) -> bool:
    """``sessions/<id>/`` holding a session.json that is an AgentFlow session object."""
    session_file = path / SESSION_FILE
    if path.parent.name != "sessions" or not session_file.is_file():
        return False
    try:
        if session_file.stat().st_size > _MAX_SESSION_JSON_BYTES:
            return False
        doc = json.loads(session_file.read_bytes())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and doc.keys() >= _SESSION_KEYS


def session_folders(root: Path) -> list[Path]:
    """Every AgentFlow session folder at or under ``root``, sorted."""
    candidates = {root, *(p.parent for p in root.rglob(SESSION_FILE))}
    return sorted(p for p in candidates if is_session_folder(p))


def export_bundle(session_dir: Path, *, limits: DecodeLimits) -> bytes:
    """The export bundle of one session folder, as deterministic UTF-8 JSON bytes. Raises
    RejectedDocument (or ValueError) when session.json itself is not strict JSON."""
    session = parse_json_text((session_dir / SESSION_FILE).read_bytes().decode("utf-8-sig"))
    bundle: dict[str, Any] = {
        "_kind": "agentflow-export-bundle",
        "_version": 1,
        "_note": "built by manage.py import_sessions from an AgentFlow FileSystemStorage folder",
        "session": session,
    }
    notes: dict[str, str] = {}
    artifacts: list[dict[str, Any]] = []
    other_files: list[dict[str, Any]] = []
    artifacts_dir = session_dir / ARTIFACTS_DIR
    for path in sorted(p for p in session_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(session_dir).as_posix()
        if relative == SESSION_FILE:
            continue
        data = path.read_bytes()
        if artifacts_dir in path.parents:
            artifacts.append(_artifact(path.relative_to(artifacts_dir).as_posix(), data, limits))
            continue
        text = _clean_text(data)
        if relative == HISTORY_FILE and text is not None:
            history = _strict_json(text, limits=limits, depth_used=1)
            if isinstance(history, list):
                bundle["history"] = history
                continue
        if text is not None and len(data) <= INLINE_TEXT_BYTES:
            notes[relative] = text
        else:
            other_files.append(
                {"path": relative, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            )
    bundle["notes"] = notes
    bundle["artifacts"] = artifacts
    if other_files:
        bundle["other_files"] = other_files
    return json.dumps(bundle, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8"
    )


def _artifact(name: str, data: bytes, limits: DecodeLimits) -> dict[str, Any]:
    suffix = Path(name).suffix.lower()
    text = _clean_text(data)
    media_type = _MEDIA_TYPES.get(suffix) or (
        "text/plain" if text is not None else "application/octet-stream"
    )
    entry: dict[str, Any] = {
        "name": name,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "media_type": media_type,
    }
    if text is not None and len(data) <= INLINE_TEXT_BYTES:
        if media_type == "application/json":
            parsed = _strict_json(text, limits=limits, depth_used=_ARTIFACT_JSON_DEPTH)
            if parsed is not _NOT_JSON:
                entry["json"] = parsed
                return entry
            entry["json_error"] = "not valid JSON (or nested too deep); embedded as text"
        entry["text"] = text
    elif text is None and len(data) <= INLINE_BINARY_BYTES:
        entry["base64"] = base64.b64encode(data).decode("ascii")
    else:
        entry["omitted"] = True
    return entry


_NOT_JSON = object()


def _clean_text(data: bytes) -> str | None:
    """The UTF-8 text of a file, or None when it is binary (or holds NUL, which no store
    keeps)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


def _strict_json(text: str, *, limits: DecodeLimits, depth_used: int) -> Any:
    """JSON under the ingest policy (strict, and within the depth left inside the bundle)."""
    limits = dataclasses.replace(limits, max_depth=max(1, limits.max_depth - depth_used))
    try:
        value = parse_json_text(text)
        check_content(value, limits)
    except RejectedDocument:
        return _NOT_JSON
    return value
