"""The DocumentStore contract, run against every backend (Sentry nodestore's test_common style).

Backends: ``orm`` (the Django database), ``mongo-mock`` (MongoDocumentStore on mongomock),
``mongo-real`` (MongoDocumentStore on the server in MONGODB_URL; skipped when it is unset) and
``loop-defaults`` (a dict that implements only the abstract methods, so the base class's
bulk defaults run the same contract as the backends' overrides). Each keeps bodies compact
(snapshots and deltas, storage/codec.py); the tests of that encoding reach one backend's
records through the small helpers ``_links``, ``_tamper`` and ``_put_legacy_raw``.
A new backend joins by adding a branch to the ``store`` fixture; the contract tests stay as
they are. Tests at the end of the file cover what only one backend has: the orm store's
statements per bulk call, and the Mongo store's document shape, argument checks and mapping of
network failures to StoreUnavailable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import mongomock
import pymongo
import pytest
import zstandard
from bson.binary import Binary
from django.db import transaction
from pymongo import errors as mongo_errors

from sessions_api.errors import BodyNotFound, StoreUnavailable
from sessions_api.models import DocumentBody
from sessions_api.storage import codec
from sessions_api.storage.base import BodyKey, DocumentStore, SharedPrefix
from sessions_api.storage.codec import CorruptBody, EncodedBody
from sessions_api.storage.compact import CompactDocumentStore, Link
from sessions_api.storage.mongo import MongoDocumentStore
from sessions_api.storage.orm import OrmDocumentStore

BACKENDS = ["orm", "mongo-mock", "mongo-real", "loop-defaults"]
NO_REAL_MONGO = "MONGODB_URL is not set: the real-MongoDB run of the contract suite needs a server"
# Nothing listens on port 1; a short selection timeout keeps the failing tests quick.
UNREACHABLE_URL = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300"


class LoopDefaultsStore(CompactDocumentStore):
    """Records in a dict, with only the single-item methods: every bulk method is the base
    class's loop over them, and the compact encoding is CompactDocumentStore's, as in the orm
    and mongo stores."""

    def __init__(self) -> None:
        self.records: dict[BodyKey, EncodedBody] = {}

    def _read_links(self, session_id: str, *, low: int, high: int) -> dict[int, Link]:
        return {
            version: Link(encoding=record.encoding, base_version=record.base_version)
            for (sid, version), record in self.records.items()
            if sid == session_id and low <= version <= high
        }

    def _read_records(self, session_id: str, versions: Collection[int]) -> dict[int, EncodedBody]:
        return {
            version: self.records[(session_id, version)]
            for version in versions
            if (session_id, version) in self.records
        }

    def _insert_record(self, session_id: str, version: int, record: EncodedBody) -> bool:
        return self.records.setdefault((session_id, version), record) is record

    def _replace_record(self, session_id: str, version: int, record: EncodedBody) -> None:
        self.records[(session_id, version)] = record

    def _find_dependents(self, keys: Collection[BodyKey]) -> set[BodyKey]:
        doomed = set(keys)
        return {
            (sid, version)
            for (sid, version), record in self.records.items()
            if record.is_delta
            and (sid, record.base_version) in doomed
            and (sid, version) not in doomed
        }

    def _delete_records(self, session_id: str, versions: Collection[int]) -> int:
        gone = [self.records.pop((session_id, version), None) for version in set(versions)]
        return sum(record is not None for record in gone)

    def delete_session(self, *, session_id: str) -> int:
        return self._delete_records(session_id, self.list_versions(session_id=session_id))

    def list_versions(self, *, session_id: str) -> list[int]:
        return sorted(version for sid, version in self.records if sid == session_id)

    def ping(self) -> None:
        return None


def _real_mongo_store() -> Iterator[MongoDocumentStore]:
    url = os.environ.get("MONGODB_URL", "")
    if not url:
        pytest.skip(NO_REAL_MONGO)
    database = f"observatory_contract_{uuid.uuid4().hex[:12]}"
    store = MongoDocumentStore(url, database)
    try:
        yield store
    finally:
        store.close()
        admin = pymongo.MongoClient(url, serverSelectionTimeoutMS=2000)
        try:
            admin.drop_database(database)
        finally:
            admin.close()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest) -> Iterator[DocumentStore]:
    if request.param == "orm":
        request.getfixturevalue("db")
        yield OrmDocumentStore()
    elif request.param == "mongo-mock":
        yield MongoDocumentStore(
            "mongodb://mongomock.invalid/", "observatory_contract", client=mongomock.MongoClient()
        )
    elif request.param == "loop-defaults":
        yield LoopDefaultsStore()
    else:
        yield from _real_mongo_store()


@pytest.fixture
def mock_store() -> MongoDocumentStore:
    return MongoDocumentStore(
        "mongodb://mongomock.invalid/", "observatory_contract", client=mongomock.MongoClient()
    )


@pytest.fixture
def session_id() -> str:
    # Unique per test, so runs against a shared real server never see each other's bodies.
    return uuid.uuid4().hex


def _large_body() -> bytes:
    """About 2 MB of JSON with non-ASCII text, the size of a long agent session."""
    messages = [
        {"role": "user" if i % 2 else "assistant", "content": f"message {i}: " + "é✓ " * 150}
        for i in range(2_600)
    ]
    body = json.dumps({"messages": messages}, ensure_ascii=False).encode("utf-8")
    assert 1.9e6 < len(body) < 2.5e6
    return body


BODIES = {
    "plain_json": b'{"messages": [{"role": "user", "content": "hi"}]}',
    # Operator-looking and dotted keys are just bytes to a store.
    "mongo_operator_keys": b'{"$where": "1", "a.b": {"$ne": 1}, "$set": {"x.$": 2}}',
    "non_ascii": '{"text": "héllo — 日本語 🚀", "nul": "\\u0000"}'.encode(),
    # Kept exactly: spacing, key order, duplicate keys are never normalised.
    "formatting_kept": b'{ "b" :1 ,\n\t"a": 2, "a": 3 }\n',
    # Bodies are UTF-8 JSON in practice, but the store must not care.
    "not_utf8": b"\xff\xfe\x00\x80 not text at all \xc3\x28",
    "empty": b"",
    "about_2_mb": _large_body(),
}


# --- the contract: every backend ---------------------------------------------------------------


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_get_returns_exactly_the_bytes_that_were_put(
    store: DocumentStore, session_id: str, body: bytes
) -> None:
    store.put(session_id=session_id, version=1, body=body)

    got = store.get(session_id=session_id, version=1)

    assert type(got) is bytes
    assert got == body


def test_get_of_a_missing_version_raises_body_not_found(
    store: DocumentStore, session_id: str
) -> None:
    store.put(session_id=session_id, version=1, body=b"{}")

    with pytest.raises(BodyNotFound):
        store.get(session_id=session_id, version=2)
    with pytest.raises(BodyNotFound):
        store.get(session_id=uuid.uuid4().hex, version=1)


def test_put_of_the_same_bytes_again_is_a_no_op(store: DocumentStore, session_id: str) -> None:
    store.put(session_id=session_id, version=1, body=b'{"a": 1}')
    store.put(session_id=session_id, version=1, body=b'{"a": 1}')

    assert store.get(session_id=session_id, version=1) == b'{"a": 1}'
    assert store.list_versions(session_id=session_id) == [1]


def test_put_of_different_bytes_at_a_stored_key_raises_and_keeps_the_stored_bytes(
    store: DocumentStore, session_id: str
) -> None:
    store.put(session_id=session_id, version=1, body=b'{"a": 1}')

    with pytest.raises(ValueError, match="different bytes"):
        store.put(session_id=session_id, version=1, body=b'{"a": 2}')

    assert store.get(session_id=session_id, version=1) == b'{"a": 1}'


def test_list_versions_is_ascending_and_scoped_to_one_session(
    store: DocumentStore, session_id: str
) -> None:
    # 10 after 3 catches a sort on text; the ":1" neighbour catches key-prefix matching.
    neighbour = f"{session_id}:1"
    for version in (3, 10, 1, 2):
        store.put(session_id=session_id, version=version, body=f"v{version}".encode())
    for version in (4, 5):
        store.put(session_id=neighbour, version=version, body=b"other")

    assert store.list_versions(session_id=session_id) == [1, 2, 3, 10]
    assert store.list_versions(session_id=neighbour) == [4, 5]
    assert store.list_versions(session_id=uuid.uuid4().hex) == []


def test_delete_versions_returns_the_count_and_leaves_the_others(
    store: DocumentStore, session_id: str
) -> None:
    other = uuid.uuid4().hex
    for version in (1, 2, 3, 4):
        store.put(session_id=session_id, version=version, body=f"v{version}".encode())
    store.put(session_id=other, version=2, body=b"other v2")

    assert store.delete_versions(session_id=session_id, versions=[2, 4, 99]) == 2

    assert store.list_versions(session_id=session_id) == [1, 3]
    assert store.get(session_id=session_id, version=3) == b"v3"
    assert store.get(session_id=other, version=2) == b"other v2"
    assert store.delete_versions(session_id=session_id, versions=[2, 4]) == 0
    assert store.delete_versions(session_id=session_id, versions=[]) == 0
    # Any iterable of versions will do, a generator included.
    assert store.delete_versions(session_id=session_id, versions=(v for v in (1,))) == 1


def test_delete_session_removes_every_version_of_that_session_only_and_is_idempotent(
    store: DocumentStore, session_id: str
) -> None:
    other = uuid.uuid4().hex
    for version in (1, 2, 3):
        store.put(session_id=session_id, version=version, body=b"{}")
    store.put(session_id=other, version=1, body=b"kept")

    assert store.delete_session(session_id=session_id) == 3
    assert store.delete_session(session_id=session_id) == 0

    assert store.list_versions(session_id=session_id) == []
    with pytest.raises(BodyNotFound):
        store.get(session_id=session_id, version=1)
    assert store.get(session_id=other, version=1) == b"kept"


def test_a_deleted_version_can_be_stored_again_with_new_bytes(
    store: DocumentStore, session_id: str
) -> None:
    store.put(session_id=session_id, version=1, body=b"old")
    store.delete_versions(session_id=session_id, versions=[1])

    store.put(session_id=session_id, version=1, body=b"new")

    assert store.get(session_id=session_id, version=1) == b"new"


def test_ping_succeeds_when_the_backend_is_up(store: DocumentStore) -> None:
    store.ping()


def test_transactional_with_index_says_whether_a_rolled_back_transaction_undoes_put(
    store: DocumentStore, session_id: str, db: None
) -> None:
    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        store.put(session_id=session_id, version=1, body=b"{}")
        raise Rollback

    if store.transactional_with_index:
        # The body left with the index rows: nothing for the reconcile job to repair.
        assert store.list_versions(session_id=session_id) == []
    else:
        # Written before the index and kept: the orphan the reconcile job looks for.
        assert store.get(session_id=session_id, version=1) == b"{}"


def test_backends_declare_how_they_order_writes_against_the_index() -> None:
    assert OrmDocumentStore.transactional_with_index is True
    assert MongoDocumentStore.transactional_with_index is False


def test_both_backends_list_their_bodies_for_the_reconcile_job() -> None:
    assert OrmDocumentStore.lists_bodies is True
    assert MongoDocumentStore.lists_bodies is True
    assert DocumentStore.lists_bodies is False  # no default walk: see list_bodies


# --- the contract's bulk methods (purge, prune and reconcile work in batches) -----------------


def _put_all(store: DocumentStore, keys: Iterable[BodyKey]) -> None:
    for session_id, version in keys:
        store.put(session_id=session_id, version=version, body=f"{session_id} v{version}".encode())


def test_find_stored_answers_which_of_the_keys_have_a_body(
    store: DocumentStore, session_id: str
) -> None:
    other = uuid.uuid4().hex
    neighbour = f"{session_id}:1"  # a key-prefix match would find its bodies
    _put_all(store, [(session_id, 1), (session_id, 2), (other, 5), (neighbour, 1)])

    asked = [(session_id, 1), (session_id, 3), (other, 5), (other, 1), (uuid.uuid4().hex, 1)]

    assert store.find_stored(keys=asked) == {(session_id, 1), (other, 5)}
    assert store.find_stored(keys=(key for key in [(session_id, 2)])) == {(session_id, 2)}
    assert store.find_stored(keys=[]) == set()


def test_delete_bodies_deletes_those_keys_across_sessions_and_returns_the_count(
    store: DocumentStore, session_id: str
) -> None:
    other = uuid.uuid4().hex
    _put_all(store, [(session_id, 1), (session_id, 2), (session_id, 3), (other, 1), (other, 2)])

    deleted = store.delete_bodies(keys=[(session_id, 1), (session_id, 3), (other, 2), (other, 9)])

    assert deleted == 3
    assert store.list_versions(session_id=session_id) == [2]
    assert store.list_versions(session_id=other) == [1]
    assert store.delete_bodies(keys=[(session_id, 1), (other, 2)]) == 0
    assert store.delete_bodies(keys=[]) == 0


def test_delete_sessions_removes_every_version_of_those_sessions_only(
    store: DocumentStore, session_id: str
) -> None:
    second, kept = uuid.uuid4().hex, uuid.uuid4().hex
    neighbour = f"{session_id}:1"
    _put_all(store, [(session_id, 1), (session_id, 2), (second, 1), (kept, 1), (neighbour, 1)])

    assert store.delete_sessions(session_ids=[session_id, second, uuid.uuid4().hex]) == 3

    assert store.list_versions(session_id=session_id) == []
    assert store.list_versions(session_id=second) == []
    assert store.get(session_id=kept, version=1) == f"{kept} v1".encode()
    assert store.list_versions(session_id=neighbour) == [1]
    assert store.delete_sessions(session_ids=[session_id, second]) == 0
    assert store.delete_sessions(session_ids=[]) == 0


def test_bulk_deletes_larger_than_one_command_remove_everything(
    store: DocumentStore, session_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessions_api.storage import mongo

    monkeypatch.setattr(mongo, "BULK_BATCH", 2)  # the Mongo store's commands; others ignore it
    sessions = [f"{session_id}-{n}" for n in range(5)]
    _put_all(store, [(s, v) for s in sessions for v in (1, 2)])

    assert store.delete_bodies(keys=[(sessions[0], 1), (sessions[1], 1), (sessions[2], 1)]) == 3
    assert store.delete_sessions(session_ids=sessions) == 7
    assert all(store.list_versions(session_id=s) == [] for s in sessions)


def _walk(store: DocumentStore, *, page_size: int) -> list[BodyKey]:
    walked: list[BodyKey] = []
    after: BodyKey | None = None
    while page := store.list_bodies(after=after, limit=page_size):
        assert len(page) <= page_size
        walked.extend((item.session_id, item.version) for item in page)
        after = walked[-1]
    return walked


def test_list_bodies_walks_every_body_in_key_order_a_page_at_a_time(
    store: DocumentStore,
) -> None:
    if not store.lists_bodies:
        with pytest.raises(NotImplementedError):
            store.list_bodies(after=None, limit=10)
        return
    # Hex ids sort the same in every collation; 10 after 3 catches a sort on text.
    first, second = sorted(uuid.uuid4().hex for _ in range(2))
    keys = [(first, 3), (second, 2), (first, 10), (first, 1), (second, 1)]
    _put_all(store, keys)

    assert _walk(store, page_size=2) == sorted(keys)
    assert _walk(store, page_size=500) == sorted(keys)
    assert [(b.session_id, b.version) for b in store.list_bodies(after=(first, 3), limit=2)] == [
        (first, 10),
        (second, 1),
    ]
    for item in store.list_bodies(after=None, limit=10):
        # When the backend records the write time at all, it is timezone-aware.
        assert item.stored_at is None or item.stored_at.tzinfo is not None
    with pytest.raises(ValueError):
        store.list_bodies(after=None, limit=0)


def test_list_bodies_of_an_empty_store_is_empty(store: DocumentStore) -> None:
    if store.lists_bodies:
        assert store.list_bodies(after=None, limit=10) == []


# --- compact bodies: snapshots, deltas, checks, rebases, conversion (every backend) ----------


def _growing(count: int, *, seed: int = 1) -> list[bytes]:
    """Versions of a chat that grows a turn at a time, now and then editing an earlier turn."""
    rng = random.Random(seed)
    messages: list[dict[str, str]] = []
    versions = []
    for turn in range(count):
        text = " ".join(rng.choice(["tool", "call", "ok", "é✓", "retry", "{}"]) for _ in range(40))
        messages.append({"role": "user" if turn % 2 else "assistant", "content": text})
        if turn % 13 == 7:
            messages[rng.randrange(len(messages))]["content"] = "edited"
        versions.append(json.dumps({"id": "s", "messages": messages}, ensure_ascii=False).encode())
    return versions


def _put_versions(store: DocumentStore, session_id: str, versions: list[bytes]) -> None:
    for number, body in enumerate(versions, start=1):
        store.put(session_id=session_id, version=number, body=body)


def _links(store: DocumentStore, session_id: str) -> dict[int, Link]:
    assert isinstance(store, CompactDocumentStore)
    return store._read_links(session_id, low=0, high=2**31 - 1)


def _chain_lengths(links: dict[int, Link]) -> dict[int, int]:
    lengths: dict[int, int] = {}
    for version in sorted(links):
        link = links[version]
        lengths[version] = lengths[link.base_version] + 1 if link.base_version else 0
    return lengths


def _tamper(store: DocumentStore, session_id: str, version: int) -> None:
    """Change one byte of what a stored payload decodes to, keeping its recorded SHA-256."""
    assert isinstance(store, CompactDocumentStore)
    record = store._read_records(session_id, [version])[version]
    assert record.encoding == codec.ZSTD
    raw = bytearray(zstandard.ZstdDecompressor().decompress(record.payload))
    raw[len(raw) // 2] ^= 1
    tampered = codec.encode_snapshot(bytes(raw)).payload
    store._replace_record(session_id, version, dataclasses.replace(record, payload=tampered))


def _put_legacy_raw(store: DocumentStore, session_id: str, version: int, body: bytes) -> None:
    """A body as the backend stored it before encodings existed."""
    if isinstance(store, OrmDocumentStore):
        DocumentBody.objects.create(session_id=session_id, version=version, body=body)
    elif isinstance(store, MongoDocumentStore):
        store._ready_collection().insert_one(
            {
                "_id": f"{session_id}:{version}",
                "session_id": session_id,
                "version": version,
                "body": Binary(body),
                "size": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
                "stored_at": datetime.now(UTC),
            }
        )
    else:
        assert isinstance(store, LoopDefaultsStore)
        store.records[(session_id, version)] = EncodedBody(codec.RAW, body, "", None)


def _assert_reads_back(store: DocumentStore, session_id: str, versions: dict[int, bytes]) -> None:
    assert store.list_versions(session_id=session_id) == sorted(versions)
    for number, body in versions.items():
        assert store.get(session_id=session_id, version=number) == body, f"v{number}"


@pytest.fixture
def small_interval(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(codec, "SNAPSHOT_INTERVAL", 8)
    return 8


def test_a_long_version_chain_reads_back_byte_for_byte(
    store: DocumentStore, session_id: str
) -> None:
    versions = _growing(codec.SNAPSHOT_INTERVAL + 30)
    _put_versions(store, session_id, versions)

    _assert_reads_back(store, session_id, dict(enumerate(versions, start=1)))
    links = _links(store, session_id)
    assert sum(link.encoding == codec.DELTA for link in links.values()) > len(versions) * 0.9
    assert max(_chain_lengths(links).values()) == codec.SNAPSHOT_INTERVAL - 1


def test_a_snapshot_is_stored_every_interval_versions(
    store: DocumentStore, session_id: str, small_interval: int
) -> None:
    versions = _growing(3 * small_interval + 2)
    _put_versions(store, session_id, versions)

    links = _links(store, session_id)
    assert [v for v, link in sorted(links.items()) if link.encoding == codec.ZSTD] == [1, 9, 17, 25]
    assert all(link.base_version == v - 1 for v, link in links.items() if link.base_version)
    _assert_reads_back(store, session_id, dict(enumerate(versions, start=1)))


def test_stored_forms_say_how_each_version_is_kept_and_what_it_takes(
    store: DocumentStore, session_id: str, small_interval: int
) -> None:
    versions = _growing(small_interval + 2)
    _put_versions(store, session_id, versions)
    store.put(session_id="another", version=1, body=versions[0])

    forms = store.stored_forms(session_id=session_id)

    links = _links(store, session_id)
    assert sorted(forms) == sorted(links) == list(range(1, len(versions) + 1))
    for version, form in forms.items():
        assert (form.encoding, form.base_version) == (
            links[version].encoding,
            links[version].base_version,
        )
    assert isinstance(store, CompactDocumentStore)
    records = store._read_records(session_id, list(forms))
    assert {v: f.stored_bytes for v, f in forms.items()} == {
        v: len(r.payload) for v, r in records.items()
    }
    # A delta of an appended turn takes a small part of its version's raw size.
    last = len(versions)
    assert forms[last].encoding == codec.DELTA
    assert forms[last].stored_bytes < len(versions[-1]) / 4
    assert store.stored_forms(session_id="nobody") == {}


def test_put_given_the_previous_bytes_stores_the_same_chain_as_reading_them(
    store: DocumentStore, session_id: str, small_interval: int
) -> None:
    versions = _growing(2 * small_interval + 3)
    for number, body in enumerate(versions, start=1):
        previous = (number - 1, versions[number - 2]) if number > 1 else None
        store.put(session_id=session_id, version=number, body=body, previous=previous)

    other = session_id + "-read"
    _put_versions(store, other, versions)
    assert _links(store, session_id) == _links(store, other)
    _assert_reads_back(store, session_id, dict(enumerate(versions, start=1)))


def test_put_given_a_shared_prefix_keeps_a_delta_without_reading_the_version_before(
    store: DocumentStore, session_id: str, small_interval: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(store, CompactDocumentStore)
    versions = _growing(3 * small_interval + 2)
    read = []
    real_read = store._read_records

    def counting_read(sid: str, numbers: Collection[int]) -> dict[int, EncodedBody]:
        read.append(sorted(numbers))
        return real_read(sid, numbers)

    monkeypatch.setattr(store, "_read_records", counting_read)
    for number, body in enumerate(versions, start=1):
        previous = None
        if number > 1:
            # What an ingest that checked a digest of the shared bytes knows: no suffix.
            shared = codec.common_prefix_length(versions[number - 2], body)
            previous = SharedPrefix(version=number - 1, length=shared)
        store.put(session_id=session_id, version=number, body=body, previous=previous)
    monkeypatch.undo()

    assert read == []
    links = _links(store, session_id)
    assert [v for v, link in sorted(links.items()) if link.encoding == codec.ZSTD] == [1, 9, 17, 25]
    assert all(link.base_version == v - 1 for v, link in links.items() if link.base_version)
    assert max(_chain_lengths(links).values()) == small_interval - 1
    _assert_reads_back(store, session_id, dict(enumerate(versions, start=1)))


def test_a_shared_prefix_of_another_version_than_the_one_before_is_not_used(
    store: DocumentStore, session_id: str
) -> None:
    versions = _growing(3)
    store.put(session_id=session_id, version=1, body=versions[0])
    store.put(session_id=session_id, version=2, body=versions[1])
    store.put(
        session_id=session_id,
        version=3,
        body=versions[2],
        previous=SharedPrefix(version=1, length=len(versions[2])),  # not the version before
    )

    _assert_reads_back(store, session_id, dict(enumerate(versions, start=1)))


def test_a_version_unlike_the_one_before_is_stored_as_a_snapshot(
    store: DocumentStore, session_id: str
) -> None:
    store.put(session_id=session_id, version=1, body=BODIES["about_2_mb"])
    store.put(session_id=session_id, version=2, body=BODIES["not_utf8"])

    assert _links(store, session_id)[2] == Link(encoding=codec.ZSTD, base_version=None)
    assert store.get(session_id=session_id, version=2) == BODIES["not_utf8"]


def test_a_tampered_body_fails_its_sha256_check_instead_of_reading_wrong_bytes(
    store: DocumentStore, session_id: str, small_interval: int
) -> None:
    versions = _growing(12)
    _put_versions(store, session_id, versions)

    _tamper(store, session_id, 9)

    for version in (9, 10, 12):  # the snapshot and the deltas built on it
        with pytest.raises(CorruptBody, match="SHA-256"):
            store.get(session_id=session_id, version=version)
    assert store.get(session_id=session_id, version=8) == versions[7]


@pytest.mark.parametrize(
    "doomed",
    [range(1, 12), [13], [9], [9, 10, 11]],
    ids=["prune-the-oldest", "a-middle-version", "a-snapshot", "a-snapshot-and-its-deltas"],
)
@pytest.mark.parametrize("how", ["delete_versions", "delete_bodies"])
def test_deleting_versions_rebases_the_kept_versions_built_on_them(
    store: DocumentStore, session_id: str, small_interval: int, doomed: Iterable[int], how: str
) -> None:
    versions = dict(enumerate(_growing(20), start=1))
    _put_versions(store, session_id, list(versions.values()))
    doomed = list(doomed)

    if how == "delete_versions":
        deleted = store.delete_versions(session_id=session_id, versions=doomed)
    else:
        deleted = store.delete_bodies(keys=[(session_id, version) for version in doomed])

    assert deleted == len(doomed)
    kept = {number: body for number, body in versions.items() if number not in doomed}
    _assert_reads_back(store, session_id, kept)
    links = _links(store, session_id)
    assert not any(link.base_version in doomed for link in links.values())
    assert max(_chain_lengths(links).values()) <= small_interval - 1
    # New versions go on top of the rebased chain.
    store.put(session_id=session_id, version=21, body=versions[20] + b" ")
    assert store.get(session_id=session_id, version=21) == versions[20] + b" "


def test_deleting_a_whole_session_needs_no_rebase(store: DocumentStore, session_id: str) -> None:
    _put_versions(store, session_id, _growing(10))

    assert store.delete_sessions(session_ids=[session_id]) == 10
    assert store.list_versions(session_id=session_id) == []


def test_bodies_stored_before_encodings_existed_read_back_and_take_new_versions(
    store: DocumentStore, session_id: str
) -> None:
    versions = _growing(4)
    for number, body in enumerate(versions[:3], start=1):
        _put_legacy_raw(store, session_id, number, body)

    store.put(session_id=session_id, version=4, body=versions[3])
    store.put(session_id=session_id, version=3, body=versions[2])  # the same bytes: a no-op

    _assert_reads_back(store, session_id, dict(enumerate(versions, start=1)))
    assert _links(store, session_id)[4] == Link(encoding=codec.DELTA, base_version=3)
    with pytest.raises(ValueError, match="different bytes"):
        store.put(session_id=session_id, version=2, body=b"{}")
    store.delete_versions(session_id=session_id, versions=[3])
    _assert_reads_back(store, session_id, {1: versions[0], 2: versions[1], 4: versions[3]})


def test_compact_session_converts_raw_bodies_and_resumes_where_it_stopped(
    store: DocumentStore, session_id: str, small_interval: int
) -> None:
    versions = dict(enumerate(_growing(20), start=1))
    for number, body in versions.items():
        if number <= 15:
            _put_legacy_raw(store, session_id, number, body)
        else:  # versions stored after the upgrade, on top of the raw ones
            store.put(session_id=session_id, version=number, body=body)

    planned = store.compact_session(session_id=session_id, dry_run=True)

    # The 15 raw ones, and v17: stored as the 2nd delta after raw v15, it would be the 8th
    # after the snapshot v9 that the conversion writes, past the interval: now a snapshot.
    assert (planned.bodies, planned.rewritten) == (20, 16)
    assert planned.bytes_after * 3 < planned.bytes_before
    assert _links(store, session_id)[1].encoding == codec.RAW  # a dry run writes nothing

    done = store.compact_session(session_id=session_id)

    assert done == planned
    links = _links(store, session_id)
    assert codec.RAW not in {link.encoding for link in links.values()}
    assert max(_chain_lengths(links).values()) <= small_interval - 1
    _assert_reads_back(store, session_id, versions)
    again = store.compact_session(session_id=session_id)
    assert (again.bodies, again.rewritten) == (20, 0)


# --- the orm store only --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "statements"),
    [
        (lambda s, ids: s.find_stored(keys=[(sid, v) for sid in ids for v in (1, 2)]), 1),
        # Which kept versions are deltas of the deleted ones (none here), then the delete.
        (lambda s, ids: s.delete_bodies(keys=[(sid, v) for sid in ids for v in (1, 2)]), 2),
        (lambda s, ids: s.delete_sessions(session_ids=ids), 1),
        (lambda s, ids: s.list_bodies(after=(ids[0], 1), limit=len(ids)), 1),
    ],
    ids=["find_stored", "delete_bodies", "delete_sessions", "list_bodies"],
)
def test_orm_store_bulk_methods_cost_a_fixed_number_of_statements_whatever_the_batch_size(
    db: None,
    django_assert_num_queries: Callable[..., Any],
    call: Callable[[OrmDocumentStore, list[str]], object],
    statements: int,
) -> None:
    store = OrmDocumentStore()
    session_ids = [uuid.uuid4().hex for _ in range(30)]
    _put_all(store, [(session_id, version) for session_id in session_ids for version in (1, 2)])

    with django_assert_num_queries(statements):
        call(store, session_ids)


def test_orm_store_put_and_get_cost_a_fixed_number_of_statements_whatever_the_chain(
    db: None, django_assert_num_queries: Callable[..., Any], session_id: str
) -> None:
    store = OrmDocumentStore()
    versions = _growing(codec.SNAPSHOT_INTERVAL - 1)
    _put_versions(store, session_id, versions[:-1])

    # The links of the chain before, its payloads, the insert.
    with django_assert_num_queries(3):
        store.put(session_id=session_id, version=len(versions), body=versions[-1])
    with django_assert_num_queries(2):
        assert store.get(session_id=session_id, version=len(versions)) == versions[-1]


# --- the Mongo store only ------------------------------------------------------------------------


def test_mongo_store_keeps_the_body_as_opaque_binary_beside_its_metadata(
    mock_store: MongoDocumentStore, session_id: str
) -> None:
    body = BODIES["mongo_operator_keys"]
    mock_store.put(session_id=session_id, version=7, body=body)

    collection = mock_store._ready_collection()
    document = collection.find_one({"_id": f"{session_id}:7"})

    assert isinstance(document["body"], Binary)
    assert zstandard.ZstdDecompressor().decompress(bytes(document["body"])) == body
    assert document["session_id"] == session_id
    assert document["version"] == 7
    assert document["size"] == len(body)
    assert len(document["sha256"]) == 64
    assert document["stored_at"] is not None
    assert document["encoding"] == codec.ZSTD
    assert document["base_version"] is None
    # The body's keys never became fields or operators.
    assert set(document) == {
        "_id",
        "session_id",
        "version",
        "body",
        "encoding",
        "base_version",
        "size",
        "sha256",
        "stored_at",
    }


def test_mongo_store_indexes_session_and_version_and_writes_durably(
    mock_store: MongoDocumentStore,
) -> None:
    mock_store.ping()  # the collection is set up on first use, not by ping
    collection = mock_store._ready_collection()

    index = collection.index_information()["session_version"]
    assert index["key"] == [("session_id", 1), ("version", 1)]
    assert index["unique"] is True
    assert collection.write_concern.document == {"w": "majority", "j": True}


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.put(session_id={"$ne": None}, version=1, body=b"{}"),
        lambda s: s.put(session_id="s", version="1", body=b"{}"),
        lambda s: s.put(session_id="s", version=True, body=b"{}"),
        lambda s: s.put(session_id="s", version=1, body="{}"),
        lambda s: s.get(session_id="s", version={"$gt": 0}),
        lambda s: s.get(session_id=["s"], version=1),
        lambda s: s.list_versions(session_id={"$regex": ".*"}),
        lambda s: s.delete_session(session_id={"$ne": ""}),
        lambda s: s.delete_versions(session_id="s", versions=[1, "2"]),
        lambda s: s.find_stored(keys=[("s", 1), ("s", {"$gt": 0})]),
        lambda s: s.delete_bodies(keys=[({"$ne": None}, 1)]),
        lambda s: s.delete_sessions(session_ids=["s", {"$ne": ""}]),
        lambda s: s.list_bodies(after=({"$gt": ""}, 1), limit=10),
        lambda s: s.list_bodies(after=("s", "1"), limit=10),
    ],
    ids=[
        "put-operator-session",
        "put-str-version",
        "put-bool-version",
        "put-str-body",
        "get-operator-version",
        "get-list-session",
        "list-regex-session",
        "delete-session-operator",
        "delete-versions-str",
        "find-stored-operator-version",
        "delete-bodies-operator-session",
        "delete-sessions-operator",
        "list-bodies-operator-session",
        "list-bodies-str-version",
    ],
)
def test_mongo_store_refuses_anything_but_a_str_session_id_and_int_versions(
    mock_store: MongoDocumentStore, call: Callable[[MongoDocumentStore], object]
) -> None:
    mock_store.put(session_id="s", version=1, body=b"{}")

    with pytest.raises(TypeError):
        call(mock_store)

    assert mock_store.get(session_id="s", version=1) == b"{}"


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.put(session_id="", version=1, body=b"{}"),
        lambda s: s.get(session_id="s", version=-1),
    ],
    ids=["empty-session", "negative-version"],
)
def test_mongo_store_refuses_an_empty_session_id_or_a_negative_version(
    mock_store: MongoDocumentStore, call: Callable[[MongoDocumentStore], object]
) -> None:
    with pytest.raises(ValueError):
        call(mock_store)


STORE_CALLS = {
    "put": lambda s: s.put(session_id="s", version=1, body=b"{}"),
    "get": lambda s: s.get(session_id="s", version=1),
    "delete_versions": lambda s: s.delete_versions(session_id="s", versions=[1]),
    "delete_session": lambda s: s.delete_session(session_id="s"),
    "list_versions": lambda s: s.list_versions(session_id="s"),
    "ping": lambda s: s.ping(),
    "find_stored": lambda s: s.find_stored(keys=[("s", 1)]),
    "delete_bodies": lambda s: s.delete_bodies(keys=[("s", 1)]),
    "delete_sessions": lambda s: s.delete_sessions(session_ids=["s"]),
    "list_bodies": lambda s: s.list_bodies(after=None, limit=10),
}


@pytest.mark.parametrize("call", STORE_CALLS.values(), ids=STORE_CALLS.keys())
def test_mongo_store_raises_store_unavailable_when_the_server_is_unreachable(
    call: Callable[[MongoDocumentStore], object],
) -> None:
    # A real pymongo client (no injection) against a port nothing listens on.
    store = MongoDocumentStore(UNREACHABLE_URL, "observatory_contract")
    try:
        with pytest.raises(StoreUnavailable) as raised:
            call(store)
        assert isinstance(raised.value.__cause__, mongo_errors.ServerSelectionTimeoutError)
    finally:
        store.close()


@pytest.mark.parametrize(
    "url",
    [UNREACHABLE_URL, "mongodb://127.0.0.1:1/", "mongodb+srv://no-such-cluster.invalid/"],
)
def test_mongo_store_construction_does_not_touch_the_network(url: str) -> None:
    # Not even the DNS lookup a mongodb+srv:// url needs: the client is built on first use.
    store = MongoDocumentStore(url, "observatory_contract")
    store.close()


def test_mongo_store_refuses_a_url_that_is_not_mongodb() -> None:
    with pytest.raises(ValueError, match="mongodb://"):
        MongoDocumentStore("postgresql://127.0.0.1/observatory", "observatory_contract")


@pytest.mark.parametrize(
    "error",
    [
        mongo_errors.AutoReconnect("primary stepped down"),
        mongo_errors.NetworkTimeout("socket timed out"),
        mongo_errors.ConnectionFailure("connection reset"),
        mongo_errors.ExecutionTimeout("operation exceeded time limit", code=50),
        mongo_errors.WTimeoutError("waiting for replication timed out", code=64),
    ],
    ids=lambda error: type(error).__name__,
)
def test_mongo_store_maps_network_failures_and_timeouts_to_store_unavailable(
    mock_store: MongoDocumentStore, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    collection = mock_store._ready_collection()

    def fail(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(collection, "find", fail)

    with pytest.raises(StoreUnavailable) as raised:
        mock_store.get(session_id="s", version=1)
    assert raised.value.__cause__ is error


def test_mongo_store_lets_other_server_errors_through(
    mock_store: MongoDocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    collection = mock_store._ready_collection()
    error = mongo_errors.OperationFailure("not authorized", code=13)

    def fail(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(collection, "find", fail)

    with pytest.raises(mongo_errors.OperationFailure):
        mock_store.get(session_id="s", version=1)


def test_mongo_store_put_survives_a_delete_racing_its_duplicate_check(
    mock_store: MongoDocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    mock_store.put(session_id="s", version=1, body=b"old")
    collection = mock_store._ready_collection()
    real_insert_one = collection.insert_one

    def deleted_after_refusing(*args: object, **kwargs: object) -> object:
        # The key is taken when we insert; another process deletes it before we read it.
        collection.delete_many({"session_id": "s"})
        monkeypatch.setattr(collection, "insert_one", real_insert_one)
        raise mongo_errors.DuplicateKeyError("E11000 duplicate key error")

    monkeypatch.setattr(collection, "insert_one", deleted_after_refusing)

    mock_store.put(session_id="s", version=1, body=b"new")

    assert mock_store.get(session_id="s", version=1) == b"new"


def test_put_given_the_body_digest_keeps_it_without_hashing_the_body_again(
    store: DocumentStore, session_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(store, CompactDocumentStore)
    body = b'{"messages": ["a given digest"]}'
    hashed: list[bytes] = []
    real_digest = codec.digest

    def counting_digest(raw: bytes) -> str:
        hashed.append(raw)
        return real_digest(raw)

    monkeypatch.setattr(codec, "digest", counting_digest)
    store.put(session_id=session_id, version=1, body=body, sha256=real_digest(body))
    store.put(session_id=session_id, version=1, body=body, sha256=real_digest(body))  # a retry
    monkeypatch.undo()

    assert hashed == []
    assert store.get(session_id=session_id, version=1) == body
