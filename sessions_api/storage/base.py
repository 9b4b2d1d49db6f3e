"""The DocumentStore contract: where session document bodies live.

A body is the raw bytes exactly as received, one per (session id, version number): ``get``
returns them byte for byte, however a backend keeps them (the orm and mongo stores compress
them and keep a version as a delta of the one before, see codec.py). The index
(what lists, filters and charts read) lives in the Django ORM; a store only keeps bytes. This
split follows Sentry's nodestore: a small key-value interface, a Django default backend, and one
backend-independent contract suite (tests/storage/test_document_store_contract.py) that every
backend must pass.

Backends are configured in settings.DOCUMENT_STORE as {"BACKEND": dotted path, "OPTIONS": {}}
and built lazily by :func:`sessions_api.storage.get_document_store`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

#: The key of one stored body: (session id, version number).
BodyKey = tuple[str, int]


@dataclass(frozen=True)
class StoredBody:
    """One body as :meth:`DocumentStore.list_bodies` reports it: its key, and when it was
    stored where the backend records that (None where it does not)."""

    session_id: str
    version: int
    stored_at: datetime | None


@dataclass(frozen=True)
class SharedPrefix:
    """What a caller knows of a new body without reading a stored one: its first ``length``
    bytes are those of ``version`` of the same session (checked against a digest of them)."""

    version: int
    length: int


@dataclass(frozen=True)
class StoredForm:
    """How one version is kept: ``encoding`` ("raw", "zstd" snapshot or "delta" of
    ``base_version``) and the bytes its record takes in the store (``stored_bytes``)."""

    encoding: str
    base_version: int | None
    stored_bytes: int


@dataclass(frozen=True)
class Compaction:
    """What :meth:`DocumentStore.compact_session` did (or, on a dry run, would do) for one
    session: how many bodies it holds, how many were rewritten, and their stored sizes before
    and after."""

    bodies: int = 0
    rewritten: int = 0
    bytes_before: int = 0
    bytes_after: int = 0


class DocumentStore(ABC):
    """Raw document bodies keyed by (session_id, version).

    Every method is idempotent: putting the same bytes twice, or deleting what is already gone,
    is not an error. Implementations raise StoreUnavailable when their backend is unreachable.
    """

    #: True when put() takes part in the Django database transaction around it (the ORM
    #: backend); False when the body is written first and the index second (Mongo), which the
    #: reconcile job repairs after a crash.
    transactional_with_index: bool = False

    #: True when the backend can walk every stored body in key order (list_bodies), which
    #: the reconcile job needs to find bodies that no index row points at.
    lists_bodies: bool = False

    @abstractmethod
    def put(
        self,
        *,
        session_id: str,
        version: int,
        body: bytes,
        previous: tuple[int, bytes] | SharedPrefix | None = None,
        sha256: str | None = None,
    ) -> None:
        """Store ``body`` for (session_id, version).

        Same key, same bytes again: a no-op. Different bytes at a stored key: ValueError, and the
        stored bytes stay unchanged (versions are immutable).

        ``previous``: (version, bytes) of a stored version of the session that the caller has
        already read, so a backend keeping deltas (compact.py) need not read it again; or a
        :class:`SharedPrefix`, so it can keep ``body`` as a delta of that version without reading
        it at all. Passing bytes, or a prefix length, that are not that version's is the
        caller's error (every read is still checked against the body's SHA-256); a backend may
        ignore it.

        ``sha256``: the body's hex SHA-256 when the caller has it already (ingest does), so a
        large body is not hashed twice; a wrong one makes every read of the version fail its
        check.
        """

    @abstractmethod
    def get(self, *, session_id: str, version: int) -> bytes:
        """The exact bytes stored for (session_id, version); BodyNotFound if there are none."""

    @abstractmethod
    def delete_versions(self, *, session_id: str, versions: Iterable[int]) -> int:
        """Delete those versions of one session; returns how many bodies were deleted. The
        versions kept read back exactly as before (a backend that keeps a version as a delta of
        a deleted one rewrites it first)."""

    @abstractmethod
    def delete_session(self, *, session_id: str) -> int:
        """Delete every version of one session; returns how many bodies were deleted."""

    @abstractmethod
    def list_versions(self, *, session_id: str) -> list[int]:
        """Version numbers stored for one session, ascending (the reconcile job reads this)."""

    def stored_forms(self, *, session_id: str) -> dict[int, StoredForm]:
        """Version number -> how that version is kept, for the versions a backend can describe
        (the versions page shows what each one costs). The default: a store that keeps bodies
        as they are describes none."""
        return {}

    @abstractmethod
    def ping(self) -> None:
        """Return if the backend answers; raise StoreUnavailable otherwise (for /readyz)."""

    def compact_session(self, *, session_id: str, dry_run: bool = False) -> Compaction:
        """Rewrite the bodies of one session that are still stored whole and uncompressed
        (written before the store compacted them) in the store's compact encoding; the bytes
        ``get`` returns do not change. Bodies already compact are skipped, so a conversion that
        was interrupted resumes where it stopped. ``dry_run`` reports without writing.

        The default: a store that keeps bodies as they are has nothing to convert.
        """
        return Compaction()

    # --- bulk methods for the lifecycle jobs ---------------------------------------------------
    # Purge, prune and reconcile work in batches of hundreds of sessions. These defaults loop
    # over the single-item methods above, so a new backend is correct without them; the orm and
    # mongo backends override them with one query per batch.

    def find_stored(self, *, keys: Iterable[BodyKey]) -> set[BodyKey]:
        """The keys among ``keys`` that have a stored body."""
        wanted = set(keys)
        stored: set[BodyKey] = set()
        for session_id in {session_id for session_id, _ in wanted}:
            stored.update(
                (session_id, version)
                for version in self.list_versions(session_id=session_id)
                if (session_id, version) in wanted
            )
        return stored

    def delete_bodies(self, *, keys: Iterable[BodyKey]) -> int:
        """Delete the bodies stored at ``keys`` (of any sessions); returns how many were
        deleted. Keys with nothing stored are skipped."""
        versions_by_session: dict[str, list[int]] = defaultdict(list)
        for session_id, version in keys:
            versions_by_session[session_id].append(version)
        return sum(
            self.delete_versions(session_id=session_id, versions=versions)
            for session_id, versions in versions_by_session.items()
        )

    def delete_sessions(self, *, session_ids: Iterable[str]) -> int:
        """Delete every version of each of these sessions; returns how many bodies were
        deleted."""
        return sum(self.delete_session(session_id=session_id) for session_id in session_ids)

    def list_bodies(self, *, after: BodyKey | None, limit: int) -> list[StoredBody]:
        """Up to ``limit`` (at least 1) stored bodies in (session id, version) order, starting
        after the key ``after`` (None: from the first). An empty list means the walk is done.

        Only for backends that set ``lists_bodies``: the single-item methods cannot enumerate
        sessions, so there is no default walk.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot list its bodies")
