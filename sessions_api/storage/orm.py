"""The default DocumentStore: bodies in the Django database, in the index's transaction."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import DatabaseError, IntegrityError, OperationalError, connection

from sessions_api import db
from sessions_api.errors import BodyNotFound, StoreUnavailable
from sessions_api.models import DocumentBody
from sessions_api.storage.base import DocumentStore


class OrmDocumentStore(DocumentStore):
    transactional_with_index = True

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

    def ping(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseError as exc:
            raise StoreUnavailable(str(exc)) from exc
