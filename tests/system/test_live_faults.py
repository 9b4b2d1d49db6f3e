"""Faults against real processes on 127.0.0.1.

- kill -9 of web workers, repeatedly, during 2,000 ingests: every acknowledged document is
  stored byte for byte, nothing is half-stored, and the database's own integrity check passes.
- Redis (broker and cache) down during ingestion: every answer 2xx within 2 s; after Redis
  returns, a job enqueued through it runs once and sees every document of the outage.
- a long rollup rebuild while clients ingest: no "database is locked" (no 5xx at all).

Each test starts its own gunicorn (production settings, DJANGO_DEBUG=0), on a database of the
suite's vendor (``live_database`` in tests/support/live_processes.py), and a private
redis-server where needed. Every process is stopped by the PID the test started; every loop is
bounded in count and time.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import random
import shutil
import signal
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.live_processes import (
    ROOT,
    VENV_BIN,
    LiveServer,
    Proc,
    RedisServer,
    create_api_key,
    live_database,
    picoflow_document,
    request,
)
from tests.system.test_live_dropped_connections import normal_id, query

pytestmark = pytest.mark.slow

CLIENT_ERRORS = (OSError, http.client.HTTPException)


def integrity_problems(database) -> list[str]:
    """The database's own consistency checks, plus ours: every session complete."""
    problems: list[str] = []
    if database.vendor == "sqlite":
        result = query(database, "PRAGMA integrity_check")
        if result != [("ok",)]:
            problems.append(f"integrity_check: {result[:5]}")
        foreign = query(database, "PRAGMA foreign_key_check")
        if foreign:
            problems.append(f"foreign_key_check: {foreign[:5]}")
    else:
        problems += postgres_index_check(database)
    incomplete = query(
        database,
        "SELECT s.id FROM sessions_api_session s WHERE s.latest_version <>"
        " (SELECT COUNT(*) FROM sessions_api_documentversion v WHERE v.session_id = s.id)",
    )
    if incomplete:
        problems.append(f"sessions whose versions do not match latest_version: {incomplete[:5]}")
    versions = query(database, "SELECT COUNT(*) FROM sessions_api_documentversion")[0][0]
    bodies = query(database, "SELECT COUNT(*) FROM sessions_api_documentbody")[0][0]
    if versions != bodies:
        problems.append(f"{versions} versions but {bodies} bodies")
    return problems


def postgres_index_check(database) -> list[str]:
    """amcheck's bt_index_check on every B-tree index of our tables, when amcheck exists."""
    import psycopg

    with psycopg.connect(database.url, autocommit=True, connect_timeout=5) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        except psycopg.Error as exc:
            print(f"amcheck is not available, index check skipped: {exc}")
            return []
        indexes = conn.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_class t ON t.oid = i.indrelid JOIN pg_am a ON a.oid = c.relam"
            " WHERE t.relname LIKE 'sessions_api_%' AND a.amname = 'btree'"
        ).fetchall()
        problems = []
        for (name,) in indexes:
            try:
                conn.execute("SELECT bt_index_check(%s::regclass, true)", (name,))
            except psycopg.Error as exc:
                problems.append(f"{name}: {exc}")
        return problems


# --- kill -9 of web workers ---------------------------------------------------------------------

KILL_DOCUMENTS = 2000
KILL_CLIENTS = 4
KILL_MAX_KILLS = 12
KILL_DEADLINE = 240  # seconds for the whole ingest loop


@pytest.fixture
def killable_server(tmp_path) -> Iterator[tuple[LiveServer, object, str]]:
    with live_database(tmp_path, "killed_workers") as database:
        key = create_api_key(database, tmp_path)
        server = LiveServer(tmp_path, database, workers=2, threads=2, name="f1-web")
        try:
            yield server, database, key
        finally:
            server.stop()


def test_kill_9_web_workers_during_2000_ingests_loses_no_acknowledged_document(killable_server):
    server, database, key = killable_server
    documents = {str(uuid.uuid4()): b"" for _ in range(KILL_DOCUMENTS)}
    for external_id in documents:
        documents[external_id] = picoflow_document(external_id, turns=3)
    acknowledged: dict[str, str] = {}  # external id -> session id from the 2xx answer
    server_errors: list[tuple[int, bytes]] = []
    dropped = 0
    lock = threading.Lock()
    done = threading.Event()
    deadline = time.monotonic() + KILL_DEADLINE

    def client(share: list[str]) -> None:
        nonlocal dropped
        for external_id in share:
            for _attempt in range(8):  # a real client retries a dropped request
                if time.monotonic() > deadline:
                    return
                try:
                    answer = request(
                        server.port, "POST", "/api/v1/sessions", documents[external_id],
                        key=key, timeout=30,
                    )  # fmt: skip
                except CLIENT_ERRORS:
                    with lock:
                        dropped += 1
                    continue
                if answer.status >= 500:
                    with lock:
                        server_errors.append((answer.status, answer.body[:200]))
                    continue
                assert answer.status in {200, 201}, answer.body[:300]
                with lock:
                    acknowledged[external_id] = answer.json()["id"]
                break

    kills: list[int] = []

    def killer() -> None:
        rng = random.Random(1)
        while not done.is_set() and len(kills) < KILL_MAX_KILLS:
            # Kill once a while into the run, at a random moment, one of our gunicorn's workers.
            if done.wait(rng.uniform(0.4, 1.2)):
                return
            workers = server.workers()
            if workers:
                victim = rng.choice(workers)
                try:
                    os.kill(victim, signal.SIGKILL)  # a child of the gunicorn this test started
                    kills.append(victim)
                except ProcessLookupError:
                    pass

    ids = list(documents)
    shares = [ids[n::KILL_CLIENTS] for n in range(KILL_CLIENTS)]
    killer_thread = threading.Thread(target=killer, daemon=True)
    started = time.monotonic()
    killer_thread.start()
    try:
        with ThreadPoolExecutor(max_workers=KILL_CLIENTS) as pool:
            for future in [pool.submit(client, share) for share in shares]:
                future.result(timeout=KILL_DEADLINE + 60)
    finally:
        done.set()
        killer_thread.join(timeout=10)
    elapsed = time.monotonic() - started
    print(
        f"kill -9: {len(acknowledged)}/{KILL_DOCUMENTS} acknowledged in {elapsed:.1f} s, "
        f"{len(kills)} workers killed, {dropped} dropped requests retried"
    )
    assert server_errors == []
    assert len(kills) >= 5, "the run ended before enough workers were killed"
    assert len(acknowledged) == KILL_DOCUMENTS, "some documents never got an answer"
    assert server.proc.alive(), server.proc.tail()

    # Every acknowledged document: stored once, version 1, the exact bytes.
    rows = query(
        database,
        "SELECT s.external_id, s.id, v.sha256 FROM sessions_api_session s"
        " JOIN sessions_api_documentversion v ON v.session_id = s.id",
    )
    by_external = {}
    for external_id, session_id, sha256 in rows:
        by_external.setdefault(external_id, []).append((normal_id(session_id), sha256))
    for external_id, session_id in acknowledged.items():
        assert by_external.get(external_id) == [
            (session_id, hashlib.sha256(documents[external_id]).hexdigest())
        ], external_id
    assert integrity_problems(database) == []


# --- Redis down ---------------------------------------------------------------------------------

F3_OUTAGE_SECONDS = 8
F3_MAX_REQUESTS = 300


@pytest.fixture
def redis_outage_stack(tmp_path) -> Iterator[tuple[LiveServer, object, str, RedisServer]]:
    if not shutil.which("redis-server"):
        pytest.skip(
            "the Redis outage needs redis-server (Debian package redis-server) to run a private one"
        )
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    try:
        with live_database(tmp_path, "redis_outage") as database:
            key = create_api_key(database, tmp_path)
            server = LiveServer(
                tmp_path, database, workers=2, env={"REDIS_URL": redis_server.url}, name="f3-web"
            )
            try:
                yield server, database, key, redis_server
            finally:
                server.stop()
    finally:
        redis_server.stop()


def test_redis_down_ingestion_answers_2xx_within_2_s_and_jobs_catch_up(
    redis_outage_stack, tmp_path
):
    server, database, key, redis_server = redis_outage_stack
    port = server.port

    def ingest() -> tuple[int, float]:
        answer = request(port, "POST", "/api/v1/sessions", picoflow_document(), key=key)
        return answer.status, answer.seconds

    known = request(port, "POST", "/api/v1/sessions", picoflow_document(), key=key).json()["id"]
    # The cache is in use: a timeline read fills it.
    assert request(port, "GET", f"/api/v1/sessions/{known}/timeline", key=key).status == 200
    for _ in range(9):
        assert ingest()[0] == 201

    redis_server.stop()
    answers: list[tuple[str, int, float]] = []
    ends = time.monotonic() + F3_OUTAGE_SECONDS
    while time.monotonic() < ends and len(answers) < F3_MAX_REQUESTS:
        status, seconds = ingest()
        answers.append(("ingest", status, seconds))
        for path in (f"/api/v1/sessions/{known}/timeline", "/api/v1/sessions?limit=5"):
            answer = request(port, "GET", path, key=key)
            answers.append((path, answer.status, answer.seconds))
    ready = request(port, "GET", "/readyz")
    assert ready.status == 503 and ready.json()["checks"]["broker"]["status"] == "down"
    assert request(port, "GET", "/healthz").status == 200
    failures = [a for a in answers if not 200 <= a[1] < 300 or a[2] >= 2.0]
    ingested_in_outage = sum(1 for a in answers if a[0] == "ingest")
    slowest = max(a[2] for a in answers)
    print(f"Redis down: {len(answers)} requests during the outage, slowest {slowest * 1000:.0f} ms")
    assert failures == []
    assert ingested_in_outage >= 10

    # Redis returns (empty, as after a restart without persistence): a job goes through it.
    redis_server.start()
    worker = Proc(
        "f3-worker",
        [
            str(VENV_BIN / "celery"), "-A", "workers.celery:app", "worker",
            "--loglevel=INFO", "--concurrency=1", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "-n", f"f3-{uuid.uuid4().hex[:6]}@%h",
        ],
        server.env,
        tmp_path,
    )  # fmt: skip
    try:
        result = subprocess.run(
            [str(VENV_BIN / "python"), "manage.py", "run_job", "rollup_analytics",
             "--timeout", "90", "--json"],
            cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=150,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr + worker.tail()
    finally:
        worker.stop()
    total = query(database, "SELECT COUNT(*) FROM sessions_api_session")[0][0]
    assert total == 10 + ingested_in_outage
    counted = query(
        database,
        "SELECT SUM(count) FROM sessions_api_rollupbucket"
        " WHERE granularity = 'hour' AND series = 'sessions_by_status'",
    )[0][0]
    assert counted == total  # the job saw every document of the outage
    runs = query(
        database,
        "SELECT status FROM sessions_api_jobrun WHERE job = 'rollup_analytics'",
    )
    assert runs == [("succeeded",)]  # its side effect, once


# --- a long rollup rebuild ----------------------------------------------------------------------

ROLLUP_SEED = 1000
F6_SECONDS = 8


def spread_document(index: int) -> bytes:
    """A document started ``index`` hours before a fixed moment: many hour buckets to roll up."""
    started = datetime(2026, 3, 2, tzinfo=UTC) - timedelta(hours=index)
    stamp = started.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return (
        picoflow_document(f"f6-seed-{index}")
        .replace(b"2026-03-02T10:00:00.000Z", stamp.encode())
        .replace(b"gpt-4o-mini", f"model-{index % 7}".encode())
    )


def test_long_rollup_during_ingestion_never_answers_database_is_locked(tmp_path):
    with live_database(tmp_path, "rollups") as database:
        key = create_api_key(database, tmp_path)
        server = LiveServer(tmp_path, database, workers=2, threads=4, name="f6-web")
        try:
            _contend(server, database, key)
        finally:
            server.stop()


def _contend(server: LiveServer, database, key: str) -> None:
    port = server.port
    for start in range(0, ROLLUP_SEED, 200):
        items = b",".join(spread_document(i) for i in range(start, min(start + 200, ROLLUP_SEED)))
        answer = request(
            port, "POST", "/api/v1/sessions/batch", b'{"documents": [' + items + b"]}",
            key=key, timeout=120,
        )  # fmt: skip
        assert answer.status == 200 and all(r["ok"] for r in answer.json()["results"])

    stop = threading.Event()
    answers: list[tuple[int, float, bytes]] = []
    lock = threading.Lock()

    def ingest_loop() -> None:
        while not stop.is_set():
            answer = request(port, "POST", "/api/v1/sessions", picoflow_document(), key=key)
            with lock:
                answers.append((answer.status, answer.seconds, answer.body[:200]))
            if len(answers) > 20_000:
                return

    rollups: list[tuple[int, float]] = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        loops = [pool.submit(ingest_loop) for _ in range(3)]
        ends = time.monotonic() + F6_SECONDS
        try:
            while time.monotonic() < ends:
                started = time.monotonic()
                result = subprocess.run(
                    [str(VENV_BIN / "python"), "manage.py", "rebuild_rollups"],
                    cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=120,
                )  # fmt: skip
                rollups.append((result.returncode, time.monotonic() - started))
                assert result.returncode == 0, result.stdout + result.stderr
        finally:
            stop.set()
            for loop in loops:
                loop.result(timeout=60)
    latencies = sorted(a[1] for a in answers)
    p95 = latencies[int(len(latencies) * 0.95)]
    print(
        f"rollups during ingestion: {len(rollups)} full rebuilds of {ROLLUP_SEED}+ sessions "
        f"({statistics.mean(r[1] for r in rollups):.1f} s each, process start included); "
        f"{len(answers)} ingests during them: p95 {p95 * 1000:.0f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms"
    )
    failures = [a for a in answers if a[0] not in (200, 201)]
    assert failures == [], failures[:5]
    assert len(answers) >= 50
    assert b"locked" not in server.proc.output().encode()
    # Chunked commits: no ingest waited anywhere near the 20 s busy timeout.
    assert latencies[-1] < 10
