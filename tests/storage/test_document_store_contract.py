"""The DocumentStore contract, run against every backend (Sentry nodestore's test_common style).

Backends: ``orm`` (the Django database), ``mongo-mock`` (MongoDocumentStore on mongomock) and
``mongo-real`` (MongoDocumentStore on the server in MONGODB_URL; skipped when it is unset).
A new backend joins by adding a branch to the ``store`` fixture; the contract tests stay as
they are. Tests at the end of the file cover what only the Mongo store has: its document
shape, argument checks and the mapping of network failures to StoreUnavailable.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator

import mongomock
import pymongo
import pytest
from bson.binary import Binary
from django.db import transaction
from pymongo import errors as mongo_errors

from sessions_api.storage.base import BodyNotFound, DocumentStore, StoreUnavailable
from sessions_api.storage.mongo import MongoDocumentStore
from sessions_api.storage.orm import OrmDocumentStore

BACKENDS = ["orm", "mongo-mock", "mongo-real"]
NO_REAL_MONGO = "MONGODB_URL is not set: the real-MongoDB run of the contract suite needs a server"
# Nothing listens on port 1; a short selection timeout keeps the failing tests quick.
UNREACHABLE_URL = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300"


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


# --- the Mongo store only ------------------------------------------------------------------------


def test_mongo_store_keeps_the_body_as_opaque_binary_beside_its_metadata(
    mock_store: MongoDocumentStore, session_id: str
) -> None:
    body = BODIES["mongo_operator_keys"]
    mock_store.put(session_id=session_id, version=7, body=body)

    collection = mock_store._ready_collection()
    document = collection.find_one({"_id": f"{session_id}:7"})

    assert isinstance(document["body"], Binary)
    assert bytes(document["body"]) == body
    assert document["session_id"] == session_id
    assert document["version"] == 7
    assert document["size"] == len(body)
    assert len(document["sha256"]) == 64
    assert document["stored_at"] is not None
    # The body's keys never became fields or operators.
    assert set(document) == {"_id", "session_id", "version", "body", "size", "sha256", "stored_at"}


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

    monkeypatch.setattr(collection, "find_one", fail)

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

    monkeypatch.setattr(collection, "find_one", fail)

    with pytest.raises(mongo_errors.OperationFailure):
        mock_store.get(session_id="s", version=1)


def test_mongo_store_put_survives_a_delete_racing_its_duplicate_check(
    mock_store: MongoDocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    mock_store.put(session_id="s", version=1, body=b"old")
    collection = mock_store._ready_collection()
    real_find_one = collection.find_one

    def deleted_first(*args: object, **kwargs: object) -> object:
        # Another process deletes the body between our failed insert and our read.
        collection.delete_many({"session_id": "s"})
        monkeypatch.setattr(collection, "find_one", real_find_one)
        return real_find_one(*args, **kwargs)

    monkeypatch.setattr(collection, "find_one", deleted_first)

    mock_store.put(session_id="s", version=1, body=b"new")

    assert mock_store.get(session_id="s", version=1) == b"new"
