"""The DocumentStore contract: where session document bodies live.

Bodies are the raw bytes exactly as received, one per (session id, version number). The index
(what lists, filters and charts read) lives in the Django ORM; a store only keeps bytes. This
split follows Sentry's nodestore: a small key-value interface, a Django default backend, and one
backend-independent contract suite (tests/storage/test_document_store_contract.py) that every
backend must pass.

Backends are configured in settings.DOCUMENT_STORE as {"BACKEND": dotted path, "OPTIONS": {}}
and built lazily by :func:`sessions_api.storage.get_document_store`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable


class DocumentStore(ABC):
    """Raw document bodies keyed by (session_id, version).

    Every method is idempotent: putting the same bytes twice, or deleting what is already gone,
    is not an error. Implementations raise StoreUnavailable when their backend is unreachable.
    """

    #: True when put() takes part in the Django database transaction around it (the ORM
    #: backend); False when the body is written first and the index second (Mongo), which the
    #: reconcile job repairs after a crash.
    transactional_with_index: bool = False

    @abstractmethod
    def put(self, *, session_id: str, version: int, body: bytes) -> None:
        """Store ``body`` for (session_id, version).

        Same key, same bytes again: a no-op. Different bytes at a stored key: ValueError, and the
        stored bytes stay unchanged (versions are immutable).
        """

    @abstractmethod
    def get(self, *, session_id: str, version: int) -> bytes:
        """The exact bytes stored for (session_id, version); BodyNotFound if there are none."""

    @abstractmethod
    def delete_versions(self, *, session_id: str, versions: Iterable[int]) -> int:
        """Delete those versions of one session; returns how many bodies were deleted."""

    @abstractmethod
    def delete_session(self, *, session_id: str) -> int:
        """Delete every version of one session; returns how many bodies were deleted."""

    @abstractmethod
    def list_versions(self, *, session_id: str) -> list[int]:
        """Version numbers stored for one session, ascending (the reconcile job reads this)."""

    @abstractmethod
    def ping(self) -> None:
        """Return if the backend answers; raise StoreUnavailable otherwise (for /readyz)."""
