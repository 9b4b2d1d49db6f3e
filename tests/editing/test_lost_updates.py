"""No lost update, ever.

- A stateful property test (Hypothesis RuleBasedStateMachine, bounded) where several editors
  load the session, and save through the API (PUT and PATCH with If-Match) and through the
  dashboard (the JSON editor and the tags form), each from whatever version they last loaded:
  every save from the latest version succeeds with exactly +1 version, every stale save is
  refused (412 / the conflict page) and changes nothing, and the stored document always holds
  every accepted change.
- Real threads: two PUTs with the same If-Match at the same moment: one 200, one 412.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import pytest
from django.db import connection
from django.test import Client
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from sessions_api.ingest import services
from sessions_api.models import AuditEntry, DocumentVersion, Session
from tests.editing.conftest import make_user, openai_chat_body
from tests.ingest.test_concurrent_ingest import shared_database

_counter = itertools.count()
# Repetitions of the two-thread race (EDIT_RACE_ATTEMPTS=100 to hammer it locally).
RACE_ATTEMPTS = int(os.environ.get("EDIT_RACE_ATTEMPTS", "3"))


class EditorsRace(RuleBasedStateMachine):
    """One session; editors hold (version, document, index revision) snapshots and save from
    them."""

    api_key: str = ""
    dashboard: Client | None = None
    seen: ClassVar[Counter[str]] = Counter()

    snapshots = Bundle("snapshots")

    @initialize()
    def new_session(self) -> None:
        self.external_id = f"race-{next(_counter)}"
        body = openai_chat_body(self.external_id)
        self.session_id = services.ingest_document(body=body).id
        self.version = 1
        self.messages = json.loads(body)["messages"]
        self.variables = json.loads(body)["variables"]
        self.tags: list[str] = []
        self.index_revision = 0
        self.accepted = 0
        self.api = Client()

    def _headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "X-Change-Reason": "race", **extra}

    @rule(target=snapshots)
    def load(self):
        response = self.api.get(
            f"/api/v1/sessions/{self.session_id}/document", headers=self._headers()
        )
        assert response.status_code == 200
        version = int(response["ETag"].strip('"'))
        assert version == self.version
        return (version, json.loads(response.content), self.index_revision)

    @rule(snapshot=snapshots)
    def api_put_appends(self, snapshot):
        version, doc, _ = snapshot
        marker = f"put-{next(_counter)}"
        doc = json.loads(json.dumps(doc))
        doc["messages"].append({"role": "user", "content": marker})
        response = self.api.put(
            f"/api/v1/sessions/{self.session_id}/document",
            data=json.dumps(doc),
            content_type="application/json",
            headers=self._headers(**{"If-Match": f'"{version}"'}),
        )
        self._expect(response.status_code, version, ok=200, stale=412)
        if response.status_code == 200:
            assert response.json()["version"] == self.version
            self.messages = doc["messages"]
            self.variables = doc["variables"]
        else:
            assert response.json()["details"]["current_etag"] == f'"{self.version}"'

    @rule(snapshot=snapshots, key=st.sampled_from(["a", "b", "c"]))
    def api_patch_appends_and_merges(self, snapshot, key):
        version, _, _ = snapshot
        marker = f"patch-{next(_counter)}"
        response = self.api.patch(
            f"/api/v1/sessions/{self.session_id}/document",
            data=json.dumps(
                {"messages": [{"role": "user", "content": marker}], "state": {key: marker}}
            ),
            content_type="application/json",
            headers=self._headers(**{"If-Match": f'"{version}"'}),
        )
        self._expect(response.status_code, version, ok=200, stale=412)
        if response.status_code == 200:
            self.messages = [*self.messages, {"role": "user", "content": marker}]
            self.variables = {**self.variables, key: marker}

    @rule(snapshot=snapshots)
    def dashboard_edits_state(self, snapshot):
        version, doc, _ = snapshot
        value = {**(doc.get("variables") or {}), "dash": f"dash-{next(_counter)}"}
        response = self.dashboard.post(
            f"/sessions/{self.session_id}/edit/save/",
            {
                "part": "state",
                "value": json.dumps(value),
                "reason": "dashboard edit",
                "expected_version": str(version),
            },
        )
        self._expect(response.status_code, version, ok=302, stale=409)
        if response.status_code == 302:
            self.variables = value
        else:
            assert b"changed while you were editing" in response.content

    @rule(snapshot=consumes(snapshots), tag=st.sampled_from(["x", "y", "z"]))
    def dashboard_tags_from_a_snapshot(self, snapshot, tag):
        version, _, index_revision = snapshot
        tags = [*self.tags, tag] if tag not in self.tags else [t for t in self.tags if t != tag]
        response = self.dashboard.post(
            f"/sessions/{self.session_id}/edit/annotations/",
            {
                "tags": ", ".join(tags),
                "notes": "",
                "reason": "tagging",
                "expected_version": str(version),
                "expected_index_revision": str(index_revision),
            },
        )
        if version == self.version and index_revision == self.index_revision:
            assert response.status_code == 302
            if tags != self.tags:
                self.index_revision += 1
            self.tags = tags
            self.accepted += 1  # one audit entry (tags); notes stay empty: no entry
        else:
            assert response.status_code == 409

    def _expect(self, status: int, version: int, *, ok: int, stale: int) -> None:
        kind = "fresh" if version == self.version else "stale"
        event(f"{kind} save")
        EditorsRace.seen[kind] += 1
        if version == self.version:
            assert status == ok, status
            self.version += 1
            self.accepted += 1
        else:
            assert status == stale, (status, version, self.version)

    @invariant()
    def nothing_is_lost(self):
        if not hasattr(self, "session_id"):
            return
        row = Session.objects.get(id=self.session_id)
        assert row.latest_version == self.version
        assert DocumentVersion.objects.filter(session=row).count() == self.version
        stored = json.loads(
            self.api.get(
                f"/api/v1/sessions/{self.session_id}/document", headers=self._headers()
            ).content
        )
        assert stored["messages"] == self.messages
        assert stored["variables"] == self.variables
        assert row.tags == self.tags
        assert row.index_revision == self.index_revision
        assert AuditEntry.objects.filter(session=row).count() == self.accepted


@pytest.mark.django_db
def test_interleaved_api_and_dashboard_saves_lose_no_update(make_api_key):
    EditorsRace.api_key = make_api_key("read", "write")
    dashboard = Client()
    dashboard.force_login(make_user("racer", "editor"))
    EditorsRace.dashboard = dashboard
    run = EditorsRace.TestCase
    run.settings = settings(
        max_examples=25,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    EditorsRace.seen.clear()
    run().runTest()
    # The interleavings really mixed both kinds of save.
    assert EditorsRace.seen["fresh"] >= 20 and EditorsRace.seen["stale"] >= 20, EditorsRace.seen


# --- real threads ------------------------------------------------------------------------------


def _put(key: str, session_id: str, body: bytes, start: threading.Barrier) -> int:
    client = Client()
    try:
        start.wait(timeout=30)
        response = client.put(
            f"/api/v1/sessions/{session_id}/document",
            data=body,
            content_type="application/json",
            headers={
                "Authorization": f"Bearer {key}",
                "If-Match": '"1"',
                "X-Change-Reason": "race",
            },
        )
        return response.status_code
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(RACE_ATTEMPTS))
def test_two_concurrent_puts_with_the_same_if_match(make_api_key, tmp_path, attempt):
    key = make_api_key("read", "write")
    session_id = services.ingest_document(body=openai_chat_body(f"threads-{attempt}")).id
    bodies = [
        openai_chat_body(f"threads-{attempt}").replace(b"Hello!", text)
        for text in (b"first writer", b"second writer")
    ]
    with shared_database(tmp_path):
        start = threading.Barrier(2)
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(_put, key, session_id, body, start) for body in bodies]
            statuses = sorted(future.result(timeout=60) for future in futures)
        assert statuses == [200, 412]
        row = Session.objects.get(id=session_id)
        assert row.latest_version == 2
        assert DocumentVersion.objects.filter(session=row).count() == 2
        assert AuditEntry.objects.filter(session=row, action="edit_document").count() == 1
