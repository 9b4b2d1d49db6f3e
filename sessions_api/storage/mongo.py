"""The `mongo` DocumentStore: bodies in one MongoDB collection (also DocumentDB, Cosmos DB).

The only module in the project that imports pymongo. Each body is stored as BSON Binary, never
parsed into BSON, so `$`-prefixed and dotted keys inside a document are opaque bytes here and
can never be read as operators or field paths. Filters are built only from our own session id
(str) and version (int), checked for type before use.

Writes are not part of the Django transaction (``transactional_with_index = False``): the
ingest service puts the body first and then writes the index; the ``reconcile_store`` job
repairs what a crash between the two leaves behind. See README.md beside this file.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bson.binary import Binary
from pymongo import ASCENDING, MongoClient
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError
from pymongo.write_concern import WriteConcern

from sessions_api.errors import StoreUnavailable
from sessions_api.storage import codec
from sessions_api.storage.base import BodyKey, Compaction, SharedPrefix, StoredBody
from sessions_api.storage.codec import EncodedBody
from sessions_api.storage.compact import CompactDocumentStore, Link

# A 2xx from ingestion means durably stored: acknowledged by a majority, in the journal.
DURABLE = WriteConcern(w="majority", j=True)


#: Keys per bulk command (delete_many): a purge batch of any size becomes commands of a bounded
#: size, each well under the server's 16 MB command limit and quick to answer.
BULK_BATCH = 1000


class MongoDocumentStore(CompactDocumentStore):
    """Documents ``{_id: "<session_id>:<version>", session_id, version, body, size, sha256,
    encoding, base_version, stored_at}`` in one collection, with a unique index on
    (session_id, version). ``body`` is the payload in ``encoding`` (codec.py); ``size`` and
    ``sha256`` describe the raw bytes. Documents written before encodings existed have neither
    ``encoding`` nor ``base_version`` and read as raw.

    Nothing touches the network until the first call: building the store (at settings time,
    before a fork) never fails because MongoDB is down. ``client`` injects a ready client
    (tests pass ``mongomock.MongoClient()``); otherwise one pymongo client is built on first
    use with a short server-selection timeout, so an unreachable server surfaces as
    StoreUnavailable within about two seconds, and a socket timeout, so a server
    that stops answering mid-operation does too (after ``socket_timeout_ms``). Options written
    in ``url`` (``?serverSelectionTimeoutMS=...``) win over these defaults. (Not pymongo's
    ``timeoutMS``: pymongo then uses it for server selection too, stretching the 2 s bound.)
    """

    transactional_with_index = False
    lists_bodies = True

    def __init__(
        self,
        url: str,
        database: str,
        collection: str = "session_bodies",
        client: Any | None = None,
        server_selection_timeout_ms: int = 2000,
        socket_timeout_ms: int = 10_000,
    ) -> None:
        if client is None and not url.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("MongoDocumentStore needs a mongodb:// or mongodb+srv:// url")
        self._url = url
        self._database = database
        self._collection_name = collection
        self._client: Any | None = client
        self._owns_client = client is None
        self._client_options = _defaults_not_in_url(
            url,
            {
                "serverSelectionTimeoutMS": server_selection_timeout_ms,
                "socketTimeoutMS": socket_timeout_ms,
            },
        )
        self._collection: Any | None = None
        self._lock = threading.Lock()

    # --- DocumentStore ------------------------------------------------------------------------

    def put(
        self,
        *,
        session_id: str,
        version: int,
        body: bytes,
        previous: tuple[int, bytes] | SharedPrefix | None = None,
        sha256: str | None = None,
    ) -> None:
        _key(session_id, version)
        with _unavailable_on_network_errors():
            super().put(
                session_id=session_id, version=version, body=body, previous=previous, sha256=sha256
            )

    def get(self, *, session_id: str, version: int) -> bytes:
        _key(session_id, version)
        with _unavailable_on_network_errors():
            return super().get(session_id=session_id, version=version)

    def delete_versions(self, *, session_id: str, versions: Iterable[int]) -> int:
        with _unavailable_on_network_errors():
            return super().delete_versions(session_id=session_id, versions=versions)

    def compact_session(self, *, session_id: str, dry_run: bool = False) -> Compaction:
        _check_session_id(session_id)
        with _unavailable_on_network_errors():
            return super().compact_session(session_id=session_id, dry_run=dry_run)

    # --- CompactDocumentStore: called inside the public methods' error mapping ----------------

    def _read_links(self, session_id: str, *, low: int, high: int) -> dict[int, Link]:
        _key(session_id, low)
        _key(session_id, high)
        cursor = self._ready_collection().find(
            {"session_id": session_id, "version": {"$gte": low, "$lte": high}},
            {"_id": False, "version": True, "encoding": True, "base_version": True},
        )
        return {
            int(document["version"]): Link(
                encoding=document.get("encoding") or codec.RAW,
                base_version=document.get("base_version"),
            )
            for document in cursor
        }

    def _read_records(self, session_id: str, versions: Collection[int]) -> dict[int, EncodedBody]:
        ids = [_key(session_id, version) for version in versions]
        if not ids:
            return {}
        cursor = self._ready_collection().find(
            {"_id": {"$in": ids}},
            {
                "_id": False,
                "version": True,
                "body": True,
                "encoding": True,
                "base_version": True,
                "sha256": True,
                "size": True,
            },
        )
        return {
            int(document["version"]): EncodedBody(
                encoding=document.get("encoding") or codec.RAW,
                payload=bytes(document["body"]),
                sha256=document.get("sha256") or "",
                raw_size=document.get("size"),
                base_version=document.get("base_version"),
            )
            for document in cursor
        }

    def _insert_record(self, session_id: str, version: int, record: EncodedBody) -> bool:
        document = {
            "_id": _key(session_id, version),
            "session_id": session_id,
            "version": version,
            **_record_fields(record),
            "stored_at": datetime.now(UTC),
        }
        try:
            self._ready_collection().insert_one(document)
        except DuplicateKeyError:
            return False
        return True

    def _replace_record(self, session_id: str, version: int, record: EncodedBody) -> None:
        self._ready_collection().update_one(
            {"_id": _key(session_id, version)}, {"$set": _record_fields(record)}
        )

    def _find_dependents(self, keys: Collection[BodyKey]) -> set[BodyKey]:
        versions_by_session: dict[str, list[int]] = defaultdict(list)
        for session_id, version in keys:
            _key(session_id, version)  # the type checks, before either reaches a filter
            versions_by_session[session_id].append(version)
        if not versions_by_session:
            return set()
        terms = [
            {
                "session_id": session_id,
                "base_version": {"$in": versions},
                "version": {"$nin": versions},
            }
            for session_id, versions in versions_by_session.items()
        ]
        cursor = self._ready_collection().find(
            {"$or": terms}, {"_id": False, "session_id": True, "version": True}
        )
        return {(str(document["session_id"]), int(document["version"])) for document in cursor}

    def _delete_records(self, session_id: str, versions: Collection[int]) -> int:
        ids = [_key(session_id, version) for version in versions]
        if not ids:
            return 0
        result = self._ready_collection().delete_many({"_id": {"$in": ids}})
        return int(result.deleted_count)

    def _put_raced_a_delete(self, session_id: str, version: int) -> Exception:
        return StoreUnavailable(
            f"put of {_key(session_id, version)} kept racing a concurrent delete; retry"
        )

    def delete_session(self, *, session_id: str) -> int:
        _check_session_id(session_id)
        with _unavailable_on_network_errors():
            result = self._ready_collection().delete_many({"session_id": session_id})
        return int(result.deleted_count)

    def list_versions(self, *, session_id: str) -> list[int]:
        _check_session_id(session_id)
        with _unavailable_on_network_errors():
            cursor = (
                self._ready_collection()
                .find({"session_id": session_id}, {"_id": False, "version": True})
                .sort("version", ASCENDING)
            )
            return [int(document["version"]) for document in cursor]

    def ping(self) -> None:
        with _unavailable_on_network_errors():
            self._get_client().admin.command("ping")

    # --- bulk methods: one round trip per call, whatever the batch size ------------------------

    def find_stored(self, *, keys: Iterable[BodyKey]) -> set[BodyKey]:
        ids = [_key(session_id, version) for session_id, version in keys]
        if not ids:
            return set()
        with _unavailable_on_network_errors():
            cursor = self._ready_collection().find(
                {"_id": {"$in": ids}}, {"_id": False, "session_id": True, "version": True}
            )
            return {(str(document["session_id"]), int(document["version"])) for document in cursor}

    def delete_bodies(self, *, keys: Iterable[BodyKey]) -> int:
        doomed = set(keys)
        ids = [_key(session_id, version) for session_id, version in doomed]
        if not ids:
            return 0
        deleted = 0
        with _unavailable_on_network_errors():
            # Not atomic with the delete: a crash in between leaves only extra snapshots.
            self._rebase_dependents(doomed)
            for start in range(0, len(ids), BULK_BATCH):
                chunk = ids[start : start + BULK_BATCH]
                deleted += (
                    self._ready_collection().delete_many({"_id": {"$in": chunk}}).deleted_count
                )
        return int(deleted)

    def delete_sessions(self, *, session_ids: Iterable[str]) -> int:
        wanted = list(session_ids)
        for session_id in wanted:
            _check_session_id(session_id)
        deleted = 0
        with _unavailable_on_network_errors():
            for start in range(0, len(wanted), BULK_BATCH):
                chunk = wanted[start : start + BULK_BATCH]
                result = self._ready_collection().delete_many({"session_id": {"$in": chunk}})
                deleted += result.deleted_count
        return int(deleted)

    def list_bodies(self, *, after: BodyKey | None, limit: int) -> list[StoredBody]:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")  # 0 is "no limit" here
        query: dict[str, Any] = {}
        if after is not None:
            after_session, after_version = after
            _key(after_session, after_version)  # the type checks, before either reaches a filter
            query = {
                "$or": [
                    {"session_id": {"$gt": after_session}},
                    {"session_id": after_session, "version": {"$gt": after_version}},
                ]
            }
        with _unavailable_on_network_errors():
            cursor = (
                self._ready_collection()
                .find(query, {"_id": False, "session_id": True, "version": True, "stored_at": True})
                .sort([("session_id", ASCENDING), ("version", ASCENDING)])
                .limit(limit)
            )
            return [
                StoredBody(
                    session_id=str(document["session_id"]),
                    version=int(document["version"]),
                    stored_at=_aware(document.get("stored_at")),
                )
                for document in cursor
            ]

    # --- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the client this store built (an injected client belongs to the caller)."""
        with self._lock:
            if self._owns_client and self._client is not None:
                self._client.close()
                self._client = None
            self._collection = None

    def _get_client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    # Built here, not in __init__: no network before the first call, and a
                    # client created after the web or worker process has forked.
                    self._client = MongoClient(self._url, **self._client_options)
        return self._client

    def _ready_collection(self) -> Any:
        """The collection with a durable write concern, its index ensured once per process."""
        if self._collection is None:
            client = self._get_client()
            with self._lock:
                if self._collection is None:
                    collection = client[self._database].get_collection(
                        self._collection_name, write_concern=DURABLE
                    )
                    # Idempotent on the server; also serves list_versions and delete_session.
                    collection.create_index(
                        [("session_id", ASCENDING), ("version", ASCENDING)],
                        name="session_version",
                        unique=True,
                    )
                    self._collection = collection
        return self._collection


@contextmanager
def _unavailable_on_network_errors() -> Iterator[None]:
    """Connection failures (ServerSelectionTimeoutError, AutoReconnect, NetworkTimeout, ...)
    and operation timeouts become StoreUnavailable; every other error propagates as it is."""
    try:
        yield
    except ConnectionFailure as exc:
        raise StoreUnavailable(f"MongoDB is unreachable: {exc}"[:300]) from exc
    except PyMongoError as exc:
        if exc.timeout:  # ExecutionTimeout, WTimeoutError: the server did not answer in time
            raise StoreUnavailable(f"MongoDB timed out: {exc}"[:300]) from exc
        raise


def _record_fields(record: EncodedBody) -> dict[str, Any]:
    return {
        "body": Binary(record.payload),
        "encoding": record.encoding,
        "base_version": record.base_version,
        "size": record.raw_size,
        "sha256": record.sha256,
    }


def _check_session_id(session_id: object) -> None:
    if not isinstance(session_id, str):
        raise TypeError(f"session_id must be str, not {type(session_id).__name__}")
    if not session_id:
        raise ValueError("session_id must not be empty")


def _key(session_id: object, version: object) -> str:
    """The document _id; the only values that ever reach a filter are built here."""
    _check_session_id(session_id)
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError(f"version must be int, not {type(version).__name__}")
    if version < 0:
        raise ValueError(f"version must not be negative, got {version}")
    return f"{session_id}:{version}"


def _aware(value: object) -> datetime | None:
    """``stored_at`` as an aware datetime: pymongo hands back naive UTC unless the client was
    built with ``tz_aware=True``."""
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _defaults_not_in_url(url: str, defaults: dict[str, int]) -> dict[str, int]:
    """Keep only the defaults the url does not set itself (option names are case-insensitive)."""
    in_url = {name.lower() for name, _ in parse_qsl(urlsplit(url).query)}
    return {name: value for name, value in defaults.items() if name.lower() not in in_url}
