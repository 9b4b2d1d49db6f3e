"""The default DocumentStore: bodies in the Django database, in the index's transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable

from django.db import DatabaseError, IntegrityError, OperationalError, connection, transaction
from django.db.models import Q
from django.db.models.functions import Length

from sessions_api import db
from sessions_api.errors import StoreUnavailable
from sessions_api.models import DocumentBody
from sessions_api.storage import codec
from sessions_api.storage.base import BodyKey, Compaction, SharedPrefix, StoredBody, StoredForm
from sessions_api.storage.codec import EncodedBody
from sessions_api.storage.compact import CompactDocumentStore, Link


class OrmDocumentStore(CompactDocumentStore):
    """Bodies in the ``DocumentBody`` table, kept compact (compact.py, codec.py)."""

    transactional_with_index = True
    lists_bodies = True

    def put(
        self,
        *,
        session_id: str,
        version: int,
        body: bytes,
        previous: tuple[int, bytes] | SharedPrefix | None = None,
        sha256: str | None = None,
    ) -> None:
        try:
            super().put(
                session_id=session_id, version=version, body=body, previous=previous, sha256=sha256
            )
        except OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def get(self, *, session_id: str, version: int) -> bytes:
        try:
            return super().get(session_id=session_id, version=version)
        except OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def delete_versions(self, *, session_id: str, versions: Iterable[int]) -> int:
        return self.delete_bodies(keys=[(session_id, version) for version in versions])

    def compact_session(self, *, session_id: str, dry_run: bool = False) -> Compaction:
        # One short transaction per session: an interrupted conversion loses nothing.
        with transaction.atomic():
            return super().compact_session(session_id=session_id, dry_run=dry_run)

    # --- CompactDocumentStore -----------------------------------------------------------------

    def _read_links(self, session_id: str, *, low: int, high: int) -> dict[int, Link]:
        rows = DocumentBody.objects.filter(
            session_id=session_id, version__gte=low, version__lte=high
        ).values_list("version", "encoding", "base_version")
        return {
            version: Link(encoding=encoding or codec.RAW, base_version=base_version)
            for version, encoding, base_version in rows
        }

    def _read_records(self, session_id: str, versions: Collection[int]) -> dict[int, EncodedBody]:
        rows = DocumentBody.objects.filter(
            session_id=session_id, version__in=list(versions)
        ).values_list("version", "body", "encoding", "base_version", "sha256", "raw_size")
        return {
            version: EncodedBody(
                encoding=encoding or codec.RAW,
                payload=bytes(payload),
                sha256=sha256 or "",
                raw_size=raw_size,
                base_version=base_version,
            )
            for version, payload, encoding, base_version, sha256, raw_size in rows
        }

    def _insert_record(self, session_id: str, version: int, record: EncodedBody) -> bool:
        # ON CONFLICT DO NOTHING (SQLite and PostgreSQL) rather than a savepoint around an
        # INSERT that may fail: the usual put, a new key, is one statement.
        return bool(
            db.insert_rows(
                DocumentBody,
                _RECORD_FIELDS,
                [(session_id, version, *_record_values(record))],
                if_absent=True,
            )
        )

    def _replace_record(self, session_id: str, version: int, record: EncodedBody) -> None:
        DocumentBody.objects.filter(session_id=session_id, version=version).update(
            **dict(zip(_RECORD_FIELDS[2:], _record_values(record), strict=True))
        )

    def _find_dependents(self, keys: Collection[BodyKey]) -> set[BodyKey]:
        versions_by_session = _versions_by_session(keys)
        if not versions_by_session:
            return set()
        condition = Q()
        for session_id, versions in versions_by_session.items():
            condition |= Q(session_id=session_id, base_version__in=versions) & ~Q(
                version__in=versions
            )
        return set(DocumentBody.objects.filter(condition).values_list("session_id", "version"))

    def _delete_records(self, session_id: str, versions: Collection[int]) -> int:
        deleted, _ = DocumentBody.objects.filter(
            session_id=session_id, version__in=list(versions)
        ).delete()
        return deleted

    def _put_raced_a_delete(self, session_id: str, version: int) -> Exception:
        # Taken and gone again: not a duplicate, let the caller see it.
        return IntegrityError(f"version {version} of {session_id} was taken and deleted")

    def delete_session(self, *, session_id: str) -> int:
        deleted, _ = DocumentBody.objects.filter(session_id=session_id).delete()
        return deleted

    def list_versions(self, *, session_id: str) -> list[int]:
        return list(
            DocumentBody.objects.filter(session_id=session_id)
            .order_by("version")
            .values_list("version", flat=True)
        )

    def stored_forms(self, *, session_id: str) -> dict[int, StoredForm]:
        rows = (
            DocumentBody.objects.filter(session_id=session_id)
            .annotate(stored_bytes=Length("body"))  # of the stored payload, not read back
            .values_list("version", "encoding", "base_version", "stored_bytes")
        )
        return {
            version: StoredForm(encoding or codec.RAW, base_version, stored_bytes)
            for version, encoding, base_version, stored_bytes in rows
        }

    # --- bulk methods: one statement per call, whatever the batch size --------------------------

    def find_stored(self, *, keys: Iterable[BodyKey]) -> set[BodyKey]:
        condition = _keys_condition(keys)
        if condition is None:
            return set()
        return set(DocumentBody.objects.filter(condition).values_list("session_id", "version"))

    def delete_bodies(self, *, keys: Iterable[BodyKey]) -> int:
        doomed = set(keys)
        condition = _keys_condition(doomed)
        if condition is None:
            return 0
        dependents = self._find_dependents(doomed)
        if not dependents:
            deleted, _ = DocumentBody.objects.filter(condition).delete()
            return deleted
        # Rebase and delete commit together (a savepoint inside the caller's transaction).
        with transaction.atomic():
            self._rebase(dependents)
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


_RECORD_FIELDS = ("session_id", "version", "body", "encoding", "base_version", "sha256", "raw_size")


def _record_values(record: EncodedBody) -> tuple[object, ...]:
    return (record.payload, record.encoding, record.base_version, record.sha256, record.raw_size)


def _versions_by_session(keys: Iterable[BodyKey]) -> dict[str, list[int]]:
    versions_by_session: dict[str, list[int]] = defaultdict(list)
    for session_id, version in keys:
        versions_by_session[session_id].append(version)
    return versions_by_session


def _keys_condition(keys: Iterable[BodyKey]) -> Q | None:
    """One OR term per session (its versions IN a list), so a batch is one statement; None
    for no keys (an empty Q would match every row)."""
    versions_by_session = _versions_by_session(keys)
    if not versions_by_session:
        return None
    condition = Q()
    for session_id, versions in versions_by_session.items():
        condition |= Q(session_id=session_id, version__in=versions)
    return condition
