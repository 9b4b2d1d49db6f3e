"""Loading the demo data set: ingest it like any client, once, in the order it would arrive.

``load_demo`` ingests through ``services.ingest_document(..., source="demo")``, each document
with its own received time and no forced format. Demo sessions are those whose first version
came from the demo source; a plain re-run leaves them alone, ``reset=True`` replaces them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sessions_api.demo.dataset import (
    DEFAULT_COUNT,
    DEFAULT_DAYS,
    DEFAULT_SEED,
    generate_documents,
)
from sessions_api.ingest import services
from sessions_api.models import DocumentVersion


@dataclass(frozen=True)
class DemoLoadResult:
    skipped: bool  # demo data was already there: nothing was ingested
    existing_sessions: int
    deleted_sessions: int = 0
    documents: int = 0
    sessions_created: int = 0
    versions_added: int = 0
    unchanged: int = 0
    sessions_by_format: dict[str, int] = field(default_factory=dict)
    sessions_by_variant: dict[str, int] = field(default_factory=dict)
    versions_by_session: dict[int, int] = field(default_factory=dict)  # versions -> sessions


def demo_session_ids() -> list[str]:
    """Sessions whose first version was loaded as demo data."""
    return [
        str(pk)
        for pk in DocumentVersion.objects.filter(
            number=1, source=DocumentVersion.Source.DEMO
        ).values_list("session_id", flat=True)
    ]


def delete_demo_sessions() -> int:
    deleted = 0
    for session_id in demo_session_ids():
        deleted += services.delete_session(session_id=session_id)
    return deleted


def load_demo(
    *,
    now: datetime,
    count: int = DEFAULT_COUNT,
    days: int = DEFAULT_DAYS,
    seed: int = DEFAULT_SEED,
    reset: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> DemoLoadResult:
    """Ingest the demo data set once. With demo data present it does nothing unless ``reset``,
    which deletes the demo sessions first and loads a fresh set relative to ``now``."""
    existing = len(demo_session_ids())
    deleted = 0
    if existing and not reset:
        return DemoLoadResult(skipped=True, existing_sessions=existing)
    if reset:
        deleted = delete_demo_sessions()
    documents = generate_documents(now=now, count=count, days=days, seed=seed)
    created = added = unchanged = 0
    by_format: Counter[str] = Counter()
    by_variant: Counter[str] = Counter()
    versions: Counter[str] = Counter()
    for index, document in enumerate(documents, start=1):
        # No forced format: the demo goes through detection like any client's document.
        outcome = services.ingest_document(
            body=document.body,
            source=DocumentVersion.Source.DEMO,
            now=document.received_at,
        )
        if outcome.created:
            created += 1
            by_format[outcome.format] += 1
            by_variant[document.variant] += 1
        if outcome.changed:
            added += 1
            versions[outcome.id] = outcome.version
        else:
            unchanged += 1
        if progress is not None:
            progress(index, len(documents))
    return DemoLoadResult(
        skipped=False,
        existing_sessions=existing,
        deleted_sessions=deleted,
        documents=len(documents),
        sessions_created=created,
        versions_added=added,
        unchanged=unchanged,
        sessions_by_format=dict(sorted(by_format.items())),
        sessions_by_variant=dict(sorted(by_variant.items())),
        versions_by_session=dict(sorted(Counter(versions.values()).items())),
    )
