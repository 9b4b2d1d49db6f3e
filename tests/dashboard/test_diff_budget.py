"""Diffs of stored versions stay within their budget: a pair built to make a line diff
quadratic answers at once with the degraded view, alone and with many people viewing it."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client

from sessions_api import jsondiff
from sessions_api.ingest import services
from tests.ingest.test_concurrent_ingest import shared_database
from tests.support import sample_data
from tests.support.sample_data import Turn

LINES = 99_000  # under the input cap: the diff itself must refuse
VIEWERS = 8


def _version(lines: list[int], *, revision: int, now: datetime) -> bytes:
    doc = json.loads(
        sample_data.picoflow_document(
            session_id="hostile-diff",
            flow="F",
            status="running",
            model="gpt-4o",
            started=now - timedelta(minutes=5),
            turns=[Turn("question", "answer")],
            revision=revision,
        )
    )
    doc["payload"] = lines  # one short line each once pretty-printed
    return json.dumps(doc).encode()


def ingest_adversarial_pair(now: datetime) -> str:
    """Two versions of 99,000 short lines each, the second the first reversed: the same lines
    in another order, which is what costs a line diff the most."""
    first = list(range(LINES))
    services.ingest_document(body=_version(first, revision=1, now=now), now=now)
    return services.ingest_document(body=_version(first[::-1], revision=2, now=now), now=now).id


def test_an_adversarial_pair_answers_within_the_budget_with_the_degraded_view(viewer_client, now):
    session_id = ingest_adversarial_pair(now)
    cache.clear()
    started = time.thread_time()
    response = viewer_client.get(f"/sessions/{session_id}/versions/?a=1&b=2")
    cpu = time.thread_time() - started
    assert response.status_code == 200
    assert response.context["diff"].too_large
    text = response.content.decode()
    assert "Too large to diff here: download both versions" in text
    assert f"/sessions/{session_id}/raw/download/?version=1" in text
    assert f"/sessions/{session_id}/raw/download/?version=2" in text
    # Generous: the budget itself is half a second; difflib took minutes on this pair.
    assert cpu < 2.0, f"the versions page cost {cpu:.2f} s of CPU"


def test_a_small_change_in_a_large_pair_is_still_diffed(viewer_client, now):
    lines = list(range(LINES // 2))
    services.ingest_document(body=_version(lines, revision=1, now=now), now=now)
    changed = [*lines[:1000], -1, *lines[1000:]]
    session_id = services.ingest_document(body=_version(changed, revision=2, now=now), now=now).id
    diff = viewer_client.get(f"/sessions/{session_id}/versions/?a=1&b=2").context["diff"]
    assert not diff.too_large
    assert (diff.added, diff.removed) == (2, 1)  # the new line, and the revision changed


@pytest.mark.django_db(transaction=True)
def test_many_concurrent_viewers_of_an_adversarial_pair_do_not_stall_other_requests(
    viewer, tmp_path, monkeypatch
):
    now = datetime.now().astimezone()
    session_id = ingest_adversarial_pair(now)
    cache.clear()
    diffs = []
    line_diff = jsondiff.line_diff

    def counted(*args, **kwargs):
        diffs.append(1)
        return line_diff(*args, **kwargs)

    monkeypatch.setattr(jsondiff, "line_diff", counted)

    def view() -> tuple[int, bool]:
        client = Client()
        client.force_login(viewer)
        try:
            response = client.get(f"/sessions/{session_id}/versions/?a=1&b=2")
            return response.status_code, response.context["diff"].too_large
        finally:
            connection.close()

    with shared_database(tmp_path), ThreadPoolExecutor(max_workers=VIEWERS) as pool:
        started = time.monotonic()
        viewers = [pool.submit(view) for _ in range(VIEWERS)]
        probe = Client()
        probe_latencies = []
        while not all(f.done() for f in viewers):
            sent = time.perf_counter()
            assert probe.get("/healthz").status_code == 200
            probe_latencies.append(time.perf_counter() - sent)
        answers = [f.result(timeout=60) for f in viewers]
        wave = time.monotonic() - started
    assert answers == [(200, True)] * VIEWERS
    assert len(diffs) == 1  # one viewer diffed; the others waited for its answer
    # Generous bounds on a shared machine; unbudgeted, six viewers stalled everything for 43 s.
    assert wave < 20, f"{VIEWERS} viewers took {wave:.1f} s"
    assert probe_latencies and max(probe_latencies) < 2.0
