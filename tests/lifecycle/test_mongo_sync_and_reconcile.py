"""sync_mongo_source against mongomock (and a real MongoDB when MONGODB_URL is set), and
reconcile_store with the Mongo store on mongomock and with the orm store."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import mongomock
import pytest
from bson import ObjectId, json_util

from sessions_api.ingest import mongo_sync, services
from sessions_api.lifecycle import reconcile
from sessions_api.models import DocumentBody, DocumentVersion, JobState, Session
from sessions_api.storage.mongo import MongoDocumentStore
from sessions_api.storage.orm import OrmDocumentStore
from tests.support.job_sessions import T0, picoflow_doc

pytestmark = pytest.mark.django_db
NOW = T0 + timedelta(days=1)
NO_REAL_MONGO = "MONGODB_URL is not set: the real-MongoDB sync test needs a server"


def mongo_doc(n: int, *, saved: datetime, revision: int = 1, **kwargs: Any) -> dict[str, Any]:
    """A Picoflow v1.5 document as Picoflow keeps it in MongoDB: dates are BSON dates."""
    oid = ObjectId(f"{n:024x}")
    doc = picoflow_doc(session_id=f"sess-{n}", saved=saved, revision=revision, **kwargs)
    doc["createdOn"] = T0
    doc["saveOn"] = saved
    return {"_id": oid, **doc}


@pytest.fixture
def client() -> mongomock.MongoClient:
    return mongomock.MongoClient(tz_aware=True)


@pytest.fixture
def source() -> mongo_sync.MongoSource:
    return mongo_sync.MongoSource(
        url="mongodb://user:secret@source.example:27017",
        database="picoflow",
        collection="sessions",
        format="picoflow",
    )


def sync(source, client, **kwargs):
    return mongo_sync.sync_mongo_source(now=NOW, source=source, client=client, **kwargs)


def test_initial_sync_imports_every_document_with_oid_and_date_intact(source, client):
    collection = client.picoflow.sessions
    collection.insert_many([mongo_doc(n, saved=T0 + timedelta(minutes=n)) for n in range(3)])

    result = sync(source, client)

    assert result.counts()["created"] == 3 and result.counts()["failed"] == 0
    session = Session.objects.get(external_id="sess-1")
    assert session.format == "picoflow" and session.updated_at == T0 + timedelta(minutes=1)
    version = DocumentVersion.objects.get(session=session)
    assert version.source == "sync"
    body = json.loads(services.get_document_store().get(session_id=str(session.id), version=1))
    assert body["_id"] == {"$oid": f"{1:024x}"}
    assert body["saveOn"] == {"$date": "2026-03-02T10:01:00Z"}
    assert "secret" not in json.dumps(result.details())


def test_sync_is_incremental_and_idempotent(source, client):
    collection = client.picoflow.sessions
    collection.insert_many([mongo_doc(n, saved=T0 + timedelta(minutes=n)) for n in range(3)])
    sync(source, client)

    again = sync(source, client)
    assert again.counts()["created"] == again.counts()["updated"] == 0
    assert again.counts()["seen"] <= 3  # only the overlap is re-read, and recognised unchanged

    changed = mongo_doc(1, saved=T0 + timedelta(hours=1), revision=2, extra_message="more")
    collection.replace_one({"_id": changed["_id"]}, changed)
    collection.insert_one(mongo_doc(9, saved=T0 + timedelta(hours=2)))
    result = sync(source, client)

    assert result.counts()["created"] == 1 and result.counts()["updated"] == 1
    assert Session.objects.get(external_id="sess-1").latest_version == 2
    assert Session.objects.count() == 4


def test_sync_resumes_from_its_saved_position(source, client):
    client.picoflow.sessions.insert_many(
        [mongo_doc(n, saved=T0 + timedelta(hours=n)) for n in range(5)]
    )
    first = sync(source, client, batch_size=2, max_documents=2)
    assert first.counts()["created"] == 2 and first.more_pending
    position = JobState.objects.get(name=source.state_name).value["position"]
    saved = json_util.loads(position["value"], json_options=mongo_sync.STATE_JSON)
    assert saved == T0 + timedelta(hours=1)

    second = sync(source, client, batch_size=2)
    assert second.counts()["created"] == 3
    assert Session.objects.count() == 5


def test_a_bad_document_is_counted_and_does_not_block_the_sync(source, client):
    collection = client.picoflow.sessions
    collection.insert_one(mongo_doc(1, saved=T0))
    bad = mongo_doc(3, saved=T0 + timedelta(minutes=1))
    bad["id"] = 12345  # Picoflow ids are strings: this one is refused (422)
    collection.insert_one(bad)
    collection.insert_one(mongo_doc(2, saved=T0 + timedelta(minutes=2)))

    result = sync(source, client)

    assert result.counts()["created"] == 2 and result.counts()["failed"] == 1
    assert result.details()["failures"][0]["error"]


def test_conflicting_revision_is_reported(source, client):
    collection = client.picoflow.sessions
    collection.insert_one(mongo_doc(1, saved=T0, revision=3))
    sync(source, client)
    collection.replace_one(
        {"_id": ObjectId(f"{1:024x}")},
        mongo_doc(1, saved=T0 + timedelta(minutes=5), revision=3, extra_message="other"),
    )
    result = sync(source, client)
    assert result.counts()["conflicts"] == 1


def test_dry_run_imports_nothing_and_saves_no_position(source, client):
    client.picoflow.sessions.insert_one(mongo_doc(1, saved=T0))
    result = sync(source, client, dry_run=True)
    assert result.counts()["seen"] == 1
    assert not Session.objects.exists()
    assert not JobState.objects.filter(name=source.state_name).exists()


def test_no_source_configured_is_a_clear_noop(monkeypatch):
    for name in ("MONGO_SOURCE_URL", "MONGODB_URL", "MONGO_SOURCE_COLLECTION"):
        monkeypatch.delenv(name, raising=False)
    result = mongo_sync.sync_mongo_source(now=NOW)
    assert result.counts()["seen"] == 0 and "no source attached" in result.details()["note"]


def test_source_from_environment(monkeypatch):
    monkeypatch.setenv("MONGO_SOURCE_URL", "mongodb://h:1")
    monkeypatch.setenv("MONGO_SOURCE_COLLECTION", "sessions")
    monkeypatch.setenv("MONGO_SOURCE_DB", "pf")
    source = mongo_sync.source_from_settings()
    assert (source.database, source.collection, source.format) == ("pf", "sessions", "picoflow")


@pytest.fixture
def real_mongo() -> Iterator[tuple[Any, str]]:
    url = os.environ.get("MONGODB_URL", "")
    if not url:
        print(f"\nSKIP real MongoDB sync: {NO_REAL_MONGO}")
        pytest.skip(NO_REAL_MONGO)
    import pymongo

    client = pymongo.MongoClient(url, serverSelectionTimeoutMS=3000, tz_aware=True)
    database = f"observatory_sync_{uuid.uuid4().hex[:10]}"
    try:
        yield client, database
    finally:
        client.drop_database(database)
        client.close()


def test_sync_against_a_real_mongodb(real_mongo):
    client, database = real_mongo
    source = mongo_sync.MongoSource(
        url=os.environ["MONGODB_URL"], database=database, collection="sessions", format="picoflow"
    )
    client[database].sessions.insert_many(
        [mongo_doc(n, saved=T0 + timedelta(minutes=n)) for n in range(3)]
    )
    assert sync(source, client).counts()["created"] == 3
    assert sync(source, client).counts()["created"] == 0


# --- reconcile_store ------------------------------------------------------------------------


@pytest.fixture
def mongo_store(monkeypatch) -> MongoDocumentStore:
    store = MongoDocumentStore(
        "mongodb://unused", "observatory_test", client=mongomock.MongoClient(tz_aware=True)
    )
    monkeypatch.setattr(services, "get_document_store", lambda: store)
    return store


def ingest_doc(session_id: str) -> Session:
    outcome = services.ingest_document(
        body=json.dumps(picoflow_doc(session_id=session_id)).encode(), format_id="picoflow", now=T0
    )
    return Session.objects.get(id=outcome.id)


def test_reconcile_marks_missing_bodies_and_deletes_old_orphans(mongo_store):
    kept = ingest_doc("kept")
    lost = ingest_doc("lost")
    mongo_store.delete_session(session_id=str(lost.id))  # an index row without its body
    orphan_id = str(uuid.uuid4())  # a crashed ingest: body written, index rolled back
    mongo_store.put(session_id=orphan_id, version=1, body=b"{}")
    fresh_orphan = str(uuid.uuid4())
    mongo_store.put(session_id=fresh_orphan, version=1, body=b"{}")
    collection = mongo_store._ready_collection()
    collection.update_one(
        {"_id": f"{orphan_id}:1"}, {"$set": {"stored_at": datetime.now(UTC) - timedelta(days=2)}}
    )

    result = reconcile.reconcile_store(
        now=datetime.now(UTC), store=mongo_store, orphan_min_age=timedelta(hours=1)
    )

    counts = result.counts()
    assert counts["missing_bodies"] == 1 and counts["sessions_marked"] == 1
    assert counts["orphan_bodies"] == 2 and counts["orphans_deleted"] == 1
    assert counts["orphans_too_recent"] == 1
    warnings = Session.objects.get(id=lost.id).warnings
    assert any(w["code"] == "body_missing" for w in warnings)
    assert not any(w["code"] == "body_missing" for w in Session.objects.get(id=kept.id).warnings)
    assert mongo_store.list_versions(session_id=orphan_id) == []
    assert mongo_store.list_versions(session_id=fresh_orphan) == [1]
    assert mongo_store.list_versions(session_id=str(kept.id)) == [1]

    again = reconcile.reconcile_store(now=datetime.now(UTC), store=mongo_store)
    assert again.counts()["orphans_deleted"] == 0 and again.counts()["sessions_marked"] == 1


def test_reconcile_dry_run_repairs_nothing(mongo_store):
    orphan_id = str(uuid.uuid4())
    mongo_store.put(session_id=orphan_id, version=1, body=b"{}")
    result = reconcile.reconcile_store(
        now=datetime.now(UTC) + timedelta(days=1), store=mongo_store, dry_run=True
    )
    assert result.counts()["orphan_bodies"] == 1 and result.counts()["orphans_deleted"] == 0
    assert mongo_store.list_versions(session_id=orphan_id) == [1]


def test_reconcile_with_the_orm_store_verifies_and_reports_only():
    session = ingest_doc("orm")
    DocumentBody.objects.filter(session_id=str(session.id)).delete()
    DocumentBody.objects.create(session_id=str(uuid.uuid4()), version=1, body=b"{}")

    result = reconcile.reconcile_store(now=NOW, store=OrmDocumentStore())

    assert result.counts()["missing_bodies"] == 1 and result.counts()["orphan_bodies"] == 1
    assert result.counts()["orphans_deleted"] == 0 and result.counts()["sessions_marked"] == 0
    assert not result.details()["repairs"]
    assert DocumentBody.objects.count() == 1


class UnlistedMongoStore(MongoDocumentStore):
    """Stands for a backend without list_bodies: it cannot walk its bodies."""

    lists_bodies = False


def test_reconcile_with_a_store_that_cannot_list_bodies_still_finds_missing_ones(monkeypatch):
    store = UnlistedMongoStore(
        "mongodb://unused", "observatory_test", client=mongomock.MongoClient(tz_aware=True)
    )
    monkeypatch.setattr(services, "get_document_store", lambda: store)
    lost = ingest_doc("lost")
    ingest_doc("kept")
    store.delete_session(session_id=str(lost.id))
    store.put(session_id=str(uuid.uuid4()), version=1, body=b"{}")  # an orphan it cannot see

    result = reconcile.reconcile_store(now=datetime.now(UTC), store=store)

    assert result.counts()["missing_bodies"] == 1 and result.counts()["sessions_marked"] == 1
    assert result.counts()["bodies_checked"] == 0 and result.counts()["orphan_bodies"] == 0
    assert any("cannot list its bodies" in note for note in result.details()["notes"])


def test_full_pass_imports_documents_without_the_watermark_field(source, client):
    collection = client.picoflow.sessions
    collection.insert_one(mongo_doc(1, saved=T0))
    no_save_on = mongo_doc(2, saved=T0)
    del no_save_on["saveOn"]
    collection.insert_one(no_save_on)

    first = sync(source, client)
    assert first.counts()["created"] == 1 and first.details()["without_watermark"] == 1
    position = JobState.objects.get(name=source.state_name).value["position"]

    full = sync(source, client, full=True)
    assert full.counts()["created"] == 1 and full.counts()["unchanged"] == 1
    assert Session.objects.count() == 2
    assert JobState.objects.get(name=source.state_name).value["position"] == position
