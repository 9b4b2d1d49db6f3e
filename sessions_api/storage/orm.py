"""The default DocumentStore: bodies in the Django database, in the index's transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db import DatabaseError, IntegrityError, OperationalError, connection
from django.db.models import Q

from sessions_api import db
from sessions_api.errors import BodyNotFound, StoreUnavailable
from sessions_api.models import DocumentBody
from sessions_api.storage.base import BodyKey, DocumentStore, StoredBody


class OrmDocumentStore(DocumentStore):
    transactional_with_index = True
    lists_bodies = True

    def put(self, *, session_id: str, version: int, body: bytes) -> None:
        # ON CONFLICT DO NOTHING (SQLite and PostgreSQL) rather than a savepoint around an
        # INSERT that may fail: the usual put, a new key, is one statement.
        try:
            if db.insert_rows(
                DocumentBody,
                ("session_id", "version", "body"),
                [(session_id, version, body)],
                if_absent=True,
            ):
                return
            # The only constraint is (session_id, version): the key is taken. Idempotent when
            # the bytes match (a retried write); versions are immutable otherwise.
            existing = self._read(session_id, version)
        except OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc
        if existing is None:
            # Taken and gone again: not a duplicate, let the caller see it.
            raise IntegrityError(f"version {version} of {session_id} was taken and deleted")
        if existing != body:
            raise ValueError(f"version {version} of {session_id} already holds different bytes")

    def get(self, *, session_id: str, version: int) -> bytes:
        try:
            body = self._read(session_id, version)
        except OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc
        if body is None:
            raise BodyNotFound(f"{session_id} v{version}")
        return body

    def _read(self, session_id: str, version: int) -> bytes | None:
        row = (
            DocumentBody.objects.filter(session_id=session_id, version=version)
            .values_list("body", flat=True)
            .first()
        )
        return None if row is None else bytes(row)

    def delete_versions(self, *, session_id: str, versions: Iterable[int]) -> int:
        deleted, _ = DocumentBody.objects.filter(
            session_id=session_id, version__in=list(versions)
        ).delete()
        return deleted

    def delete_session(self, *, session_id: str) -> int:
        deleted, _ = DocumentBody.objects.filter(session_id=session_id).delete()
        return deleted

    def list_versions(self, *, session_id: str) -> list[int]:
        return list(
            DocumentBody.objects.filter(session_id=session_id)
            .order_by("version")
            .values_list("version", flat=True)
        )

    # --- bulk methods: one statement per call, whatever the batch size --------------------------

    def find_stored(self, *, keys: Iterable[BodyKey]) -> set[BodyKey]:
        condition = _keys_condition(keys)
        if condition is None:
            return set()
        return set(DocumentBody.objects.filter(condition).values_list("session_id", "version"))

    def delete_bodies(self, *, keys: Iterable[BodyKey]) -> int:
        condition = _keys_condition(keys)
        if condition is None:
            return 0
        deleted, _ = DocumentBody.objects.filter(condition).delete()
        return deleted

    def delete_sessions(self, *, session_ids: Iterable[str]) -> int:
        wanted = list(session_ids)
        if not wanted:
            return 0
        deleted, _ = DocumentBody.objects.filter(session_id__in=wanted).delete()
        return deleted

    def list_bodies(self, *, after: BodyKey | None, limit: int) -> list[StoredBody]:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        rows = DocumentBody.objects.order_by("session_id", "version")
        if after is not None:
            after_session, after_version = after
            rows = rows.filter(
                Q(session_id__gt=after_session)
                | Q(session_id=after_session, version__gt=after_version)
            )
        # The table keeps no write time: stored_at stays None.
        return [
            StoredBody(session_id=session_id, version=version, stored_at=None)
            for session_id, version in rows.values_list("session_id", "version")[:limit]
        ]

    def ping(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseError as exc:
            raise StoreUnavailable(str(exc)) from exc


def _keys_condition(keys: Iterable[BodyKey]) -> Q | None:
    """One OR term per session (its versions IN a list), so a batch is one statement; None
    for no keys (an empty Q would match every row)."""
    versions_by_session: dict[str, list[int]] = defaultdict(list)
    for session_id, version in keys:
        versions_by_session[session_id].append(version)
    if not versions_by_session:
        return None
    condition = Q()
    for session_id, versions in versions_by_session.items():
        condition |= Q(session_id=session_id, version__in=versions)
    return condition
