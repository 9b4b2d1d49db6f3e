"""Sync from an existing MongoDB session collection (such as the one Picoflow writes to).

The source is attached by configuration: a URL, a database, a collection and a format
(MONGO_SOURCE_URL, MONGO_SOURCE_DB, MONGO_SOURCE_COLLECTION, MONGO_SOURCE_FORMAT; the URL falls
back to MONGODB_URL). Each run reads documents in order of a watermark field (``saveOn`` by
default; MONGO_SOURCE_WATERMARK may name another field that grows with every save, such as
``revision`` where a store keeps a global counter) and ingests them through the ordinary ingest
service with ``source="sync"``.

- Documents become bytes as MongoDB extended JSON in relaxed mode (``bson.json_util``), the
  shape ``mongoexport`` and Picoflow's own exports use: ``{"$oid": ...}``, ``{"$date": ISO}``.
  So the stored body keeps every BSON type recognisably and the Picoflow adapter reads it.
- Incremental: the position (watermark value and ``_id``) is saved in JobState after every
  batch, so a run that dies resumes where it stopped. Each run starts a little before the
  saved position (MONGO_SOURCE_OVERLAP, for saves that landed out of order); re-reading a
  document is harmless because ingest is idempotent, and an unchanged document (same bytes as
  the latest version) is recognised before it is even parsed.
- A bad document never blocks the sync: it is counted and listed, and the watermark moves on.
  An unreachable server raises :class:`SourceUnavailable`, which the task retries.
- Filters are built only from our own values (the watermark read back from the source), so
  nothing a document contains is ever interpreted as an operator.

The only module besides storage/mongo.py that imports pymongo (ruff banned-api).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bson import json_util
from bson.json_util import JSONMode, JSONOptions
from django.conf import settings
from django.db.models import F
from pymongo import ASCENDING, MongoClient
from pymongo.errors import ConnectionFailure, PyMongoError

from sessions_api import conf
from sessions_api.errors import (
    InvalidDocument,
    RejectedDocument,
    RevisionConflict,
    SourceUnavailable,
)
from sessions_api.ingest import services
from sessions_api.models import DocumentVersion
from sessions_api.state import read_state, write_state

Checkpoint = Callable[[], None]
MAX_LISTED = 100

#: How bodies are written: relaxed extended JSON, key order as stored, UTC dates.
BODY_JSON = JSONOptions(json_mode=JSONMode.RELAXED, tz_aware=True, tzinfo=UTC)
#: How the saved position is written: canonical, so every BSON type comes back as it was.
STATE_JSON = JSONOptions(json_mode=JSONMode.CANONICAL, tz_aware=True, tzinfo=UTC)


@dataclass(frozen=True)
class MongoSource:
    url: str
    database: str
    collection: str
    format: str = ""  # empty: detect per document
    watermark_field: str = "saveOn"

    @property
    def state_name(self) -> str:
        # Keyed by where the data lives, never by credentials in the URL.
        digest = hashlib.sha256(_redacted(self.url).encode()).hexdigest()[:12]
        return f"mongo_source:{digest}:{self.database}.{self.collection}"[:128]

    def describe(self) -> dict[str, str]:
        return {
            "url": _redacted(self.url),
            "database": self.database,
            "collection": self.collection,
            "format": self.format or "(detect)",
            "watermark": self.watermark_field,
        }


def source_from_settings() -> MongoSource | None:
    """The configured source, or None when none is attached."""

    def read(name: str, default: str = "") -> str:
        value = getattr(settings, name, None)
        return str(value) if value is not None else os.environ.get(name, default)

    url = read("MONGO_SOURCE_URL") or read("MONGODB_URL")
    collection = read("MONGO_SOURCE_COLLECTION")
    if not url or not collection:
        return None
    return MongoSource(
        url=url,
        database=read("MONGO_SOURCE_DB") or read("MONGODB_DB", "session_observatory"),
        collection=collection,
        format=read("MONGO_SOURCE_FORMAT", "picoflow"),
        watermark_field=read("MONGO_SOURCE_WATERMARK", "saveOn") or "saveOn",
    )


@dataclass(frozen=True)
class SyncResult:
    dry_run: bool
    configured: bool
    seen: int
    created: int
    updated: int
    unchanged: int
    failed: int
    conflicts: int
    without_watermark: int
    more_pending: bool
    position: dict[str, Any] | None
    failures: tuple[dict[str, Any], ...]
    source: dict[str, str]

    def counts(self) -> dict[str, int]:
        return {
            "seen": self.seen,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "conflicts": self.conflicts,
            "more_pending": int(self.more_pending),
        }

    @property
    def nothing_to_do(self) -> str:
        """Why the run did nothing at all (the run is recorded skipped), or ""."""
        if self.configured:
            return ""
        return (
            "no source attached: set MONGO_SOURCE_URL (or MONGODB_URL) and MONGO_SOURCE_COLLECTION"
        )

    def details(self) -> dict[str, Any]:
        details: dict[str, Any] = {"source": self.source, "failures": list(self.failures)}
        if not self.configured:
            details["note"] = self.nothing_to_do
        if self.position is not None:
            details["position"] = self.position
        if self.without_watermark:
            details["without_watermark"] = self.without_watermark
        return details


def serialize_document(document: dict[str, Any]) -> bytes:
    """A MongoDB document as relaxed extended JSON bytes (``$oid``/``$date`` round-trip)."""
    return json_util.dumps(document, json_options=BODY_JSON).encode("utf-8")


def sync_mongo_source(
    *,
    now: datetime,
    source: MongoSource | None = None,
    client: Any | None = None,
    batch_size: int = 200,
    max_documents: int = 5000,
    full: bool = False,
    dry_run: bool = False,
    checkpoint: Checkpoint = lambda: None,
) -> SyncResult:
    """Import new and changed documents since the saved position (at most ``max_documents``
    per run; ``more_pending`` says the next run has more). ``full`` starts from the beginning
    (ingest skips what is already stored). ``client`` injects a MongoClient (tests pass
    ``mongomock.MongoClient()``)."""
    source = source or source_from_settings()
    if source is None:
        return _result(dry_run=dry_run, configured=False, source={})
    field = source.watermark_field
    owns_client = client is None
    if client is None:
        client = MongoClient(
            source.url, serverSelectionTimeoutMS=5000, timeoutMS=60_000, tz_aware=True
        )
    counts = dict.fromkeys(("seen", "created", "updated", "unchanged", "failed", "conflicts"), 0)
    failures: list[dict[str, Any]] = []
    position = read_state(name=source.state_name).get("position")
    start = _start_value(position, field)
    try:
        collection = client[source.database][source.collection]
        after: tuple[Any, Any] | None = None
        more_pending = False
        without = 0
        if position is None:
            # Once, on the first run: documents the watermark cannot see (no such field).
            without = collection.count_documents({field: {"$exists": False}}, limit=1000)
        while True:
            remaining = max_documents - counts["seen"]
            if remaining <= 0:
                more_pending = True
                break
            query, order = _page(field, full=full, after=after, start=start)
            documents = list(collection.find(query).sort(order).limit(min(batch_size, remaining)))
            if not documents:
                break
            for document in documents:
                counts["seen"] += 1
                outcome = "would_import" if dry_run else _import(document, source)
                if outcome in counts:
                    counts[outcome] += 1
                elif outcome != "would_import":
                    counts["failed"] += 1
                    if outcome.startswith("conflict"):
                        counts["conflicts"] += 1
                    if len(failures) < MAX_LISTED:
                        failures.append({"_id": _show_id(document.get("_id")), "error": outcome})
            last = documents[-1]
            after = (last.get(field), last.get("_id"))
            if not dry_run and not full:
                position = {
                    "value": json_util.dumps(after[0], json_options=STATE_JSON),
                    "_id": json_util.dumps(after[1], json_options=STATE_JSON),
                    "saved_at": now.isoformat(),
                }
                write_state(name=source.state_name, value={"position": position})
            checkpoint()
    except ConnectionFailure as exc:
        raise SourceUnavailable(f"source MongoDB unreachable: {exc}"[:300]) from exc
    except PyMongoError as exc:
        if getattr(exc, "timeout", False):
            raise SourceUnavailable(f"source MongoDB timed out: {exc}"[:300]) from exc
        raise
    finally:
        if owns_client:
            client.close()
    return _result(
        dry_run=dry_run,
        configured=True,
        source=source.describe(),
        counts=counts,
        failures=failures,
        more_pending=more_pending,
        position=position,
        without_watermark=without,
    )


def _page(
    field: str, *, full: bool, after: tuple[Any, Any] | None, start: Any
) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    """The next page's filter and order. Incremental: by (watermark, _id), from the saved
    position. ``full``: every document by ``_id`` (also those without the watermark field);
    a full pass leaves the incremental position alone."""
    if full:
        return ({"_id": {"$gt": after[1]}} if after is not None else {}), [("_id", ASCENDING)]
    order = [(field, ASCENDING), ("_id", ASCENDING)]
    if after is not None:
        keyset = [{field: {"$gt": after[0]}}, {field: after[0], "_id": {"$gt": after[1]}}]
        return {"$or": keyset}, order
    if start is not None:
        return {field: {"$gte": start}}, order
    return {field: {"$exists": True}}, order


def _import(document: dict[str, Any], source: MongoSource) -> str:
    """Ingest one document; returns created/updated/unchanged or a short error text."""
    try:
        body = serialize_document(document)
    except (TypeError, ValueError) as exc:
        return f"not serialisable: {exc}"[:300]
    external_id = None if "id" in document else _show_id(document.get("_id"))
    if source.format and external_id is None and isinstance(document.get("id"), str):
        # Cheap skip: the latest stored version already holds exactly these bytes.
        digest = hashlib.sha256(body).hexdigest()
        if DocumentVersion.objects.filter(
            session__format=source.format,
            session__external_id=document["id"],
            number=F("session__latest_version"),
            sha256=digest,
        ).exists():
            return "unchanged"
    try:
        try:
            outcome = services.ingest_document(
                body=body,
                format_id=source.format or None,
                external_id=external_id,
                source=DocumentVersion.Source.SYNC,
            )
        except InvalidDocument as exc:
            if external_id is None or exc.code != "external_id_conflict":
                raise
            # The document carries its own id elsewhere: let the format adapter find it.
            outcome = services.ingest_document(
                body=body, format_id=source.format or None, source=DocumentVersion.Source.SYNC
            )
    except RevisionConflict as exc:
        return f"conflict: {exc.message}"[:300]
    except (InvalidDocument, RejectedDocument) as exc:
        return f"{exc.code}: {exc.message}"[:300]
    if outcome.created:
        return "created"
    return "updated" if outcome.changed else "unchanged"


def _start_value(position: dict[str, Any] | None, field: str) -> Any:
    """Where a run starts: the saved value, minus the overlap when it is a date."""
    if not position or "value" not in position:
        return None
    value = json_util.loads(position["value"], json_options=STATE_JSON)
    if isinstance(value, datetime):
        return value - conf.mongo_source_overlap()
    return value


def _result(
    *,
    dry_run: bool,
    configured: bool,
    source: dict[str, str],
    counts: dict[str, int] | None = None,
    failures: list[dict[str, Any]] | None = None,
    more_pending: bool = False,
    position: dict[str, Any] | None = None,
    without_watermark: int = 0,
) -> SyncResult:
    counts = counts or {}
    return SyncResult(
        dry_run=dry_run,
        configured=configured,
        seen=counts.get("seen", 0),
        created=counts.get("created", 0),
        updated=counts.get("updated", 0),
        unchanged=counts.get("unchanged", 0),
        failed=counts.get("failed", 0),
        conflicts=counts.get("conflicts", 0),
        without_watermark=without_watermark,
        more_pending=more_pending,
        position=position,
        failures=tuple(failures or ()),
        source=source,
    )


def _show_id(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)[:200]


def _redacted(url: str) -> str:
    """The URL without user and password."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    at = rest.rfind("@", 0, rest.find("/") if "/" in rest else len(rest))
    return f"{scheme}://{rest[at + 1 :]}" if at >= 0 else url
