"""The default DocumentStore: bodies in the Django database, in the index's transaction."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import DatabaseError, IntegrityError, connection, transaction

from sessions_api.models import DocumentBody
from sessions_api.storage.base import BodyNotFound, DocumentStore, StoreUnavailable


class OrmDocumentStore(DocumentStore):
    transactional_with_index = True

    def put(self, *, session_id: str, version: int, body: bytes) -> None:
        try:
            with transaction.atomic():
                DocumentBody.objects.create(session_id=session_id, version=version, body=body)
        except IntegrityError:
            # Same key again: idempotent when the bytes match (a retried write).
            existing = self.get(session_id=session_id, version=version)
            if existing != body:
                raise ValueError(
                    f"version {version} of {session_id} already holds different bytes"
                ) from None

    def get(self, *, session_id: str, version: int) -> bytes:
        row = (
            DocumentBody.objects.filter(session_id=session_id, version=version)
            .values_list("body", flat=True)
            .first()
        )
        if row is None:
            raise BodyNotFound(f"{session_id} v{version}")
        return bytes(row)

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
