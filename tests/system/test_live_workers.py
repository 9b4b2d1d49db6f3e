"""Real Celery workers and beat as subprocesses: a killed worker, a Redis restart, two beats.

A PRIVATE redis-server is started on a free port for this module (no persistence, stopped by
its PID at the end; the machine's shared Redis is never touched). Workers and beat use a temp
DATA_DIR and a file SQLite database that this process also opens (as the database alias
``integration``), so the tests observe the jobs' effects directly. Every wait is a poll with a
deadline.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
import pytest
from celery import Celery
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from sessions_api.models import (
    DocumentBody,
    DocumentVersion,
    JobRun,
    SearchEntry,
    Session,
    ToolCallRecord,
)
from tests.support.live_processes import ROOT, VENV_BIN, Proc, RedisServer, wait_for
from workers.registry import JOB_NAMES

pytestmark = pytest.mark.slow

ALIAS = "integration"

if not shutil.which("redis-server"):
    pytest.skip("redis-server is not installed", allow_module_level=True)


# --- helpers --------------------------------------------------------------------------------


def client_app(broker: str) -> Celery:
    app = Celery("integration-client", broker=broker, backend=broker)
    app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
    return app


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("jobs-integration")


@pytest.fixture(scope="module")
def shared_db(workdir, django_db_blocker) -> Iterator[str]:
    """A file SQLite database, migrated, that this process opens as alias ``integration``."""
    path = workdir / "observatory.sqlite3"
    url = f"sqlite:///{path}"
    config = dj_database_url.parse(url)
    config["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    configured = connections.configure_settings({"default": dict(config), ALIAS: config})
    connections.settings[ALIAS] = configured[ALIAS]
    with django_db_blocker.unblock():
        call_command("migrate", database=ALIAS, verbosity=0)
        yield url
        connections[ALIAS].close()
    del connections[ALIAS]
    del connections.settings[ALIAS]


@pytest.fixture(autouse=True)
def _db_access(django_db_blocker) -> Iterator[None]:
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="module")
def redis_server(workdir) -> Iterator[RedisServer]:
    server = RedisServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def base_env(*, data_dir: Path, database_url: str, redis_url: str | None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"REDIS_URL", "DATABASE_URL", "DATA_DIR", "MONGODB_URL", "SESSION_STORE"}
        and not key.startswith(("JOB_SCHEDULE_", "CELERY_", "PURGE_", "EXPIRY_", "STUCK_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATA_DIR=str(data_dir),
        DATABASE_URL=database_url,
        PYTHONUNBUFFERED="1",
        JOB_LOCK_TTL_SECONDS="4",
        CELERY_VISIBILITY_TIMEOUT="6",
        CELERY_UNACKED_RESTORE_INTERVAL="1",
        PURGE_EXPIRED_GRACE="1h",
        STUCK_AFTER_DEFAULT="30m",
        EXPIRY_IDLE_DEFAULT="never",
        LOG_LEVEL="WARNING",
    )
    for job in JOB_NAMES:  # beat only runs what a test switches on
        env[f"JOB_SCHEDULE_{job.upper()}"] = "off"
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


@pytest.fixture(scope="module")
def redis_env(workdir, shared_db, redis_server) -> dict[str, str]:
    data_dir = workdir / "data-redis"
    data_dir.mkdir(exist_ok=True)
    return base_env(data_dir=data_dir, database_url=shared_db, redis_url=redis_server.url)


def start_worker(env: dict[str, str], log_dir: Path, name: str, queue: str = "celery") -> Proc:
    return Proc(
        name,
        [
            str(VENV_BIN / "celery"),
            "-A", "workers.celery:app",
            "worker",
            "--loglevel=INFO",
            "--concurrency=1",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-Q", queue,
            "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h",
        ],
        env,
        log_dir,
    )  # fmt: skip


def start_beat(env: dict[str, str], log_dir: Path, name: str) -> Proc:
    return Proc(
        name,
        [
            str(VENV_BIN / "celery"),
            "-A", "workers.celery:app",
            "beat",
            "--loglevel=INFO",
            "--schedule", str(log_dir / f"{name}-schedule"),
            "--max-interval", "1",
        ],
        env,
        log_dir,
    )  # fmt: skip


def ping(broker: str, timeout: float) -> str:
    return client_app(broker).send_task("workers.ping").get(timeout=timeout)


@pytest.fixture(scope="module")
def worker(redis_env, redis_server, workdir) -> Iterator[Proc]:
    proc = start_worker(redis_env, workdir, "worker")
    try:
        wait_for("the worker to answer a ping", lambda: ping(redis_server.url, 5), timeout=60)
        yield proc
    finally:
        proc.stop()


def make_sessions(
    count: int, *, agent: str, status: str = "running", expired_ago: timedelta | None = None
) -> list[Session]:
    """Index rows with a version, a body and a tool call each, straight into the shared db."""
    now = timezone.now()
    sessions = [
        Session(
            format="picoflow",
            external_id=f"{agent}-{uuid.uuid4().hex}",
            status="expired" if expired_ago is not None else status,
            status_before_expiry=status if expired_ago is not None else "",
            expired_at=now - expired_ago if expired_ago is not None else None,
            agent=agent,
            started_at=now - timedelta(hours=2),
            updated_at=now - timedelta(hours=1),
            first_received_at=now - timedelta(hours=2),
            last_received_at=now - timedelta(hours=1),
            latest_version=1,
        )
        for _ in range(count)
    ]
    Session.objects.using(ALIAS).bulk_create(sessions, batch_size=500)
    DocumentVersion.objects.using(ALIAS).bulk_create(
        [
            DocumentVersion(session=s, number=1, sha256="0" * 64, size_bytes=2, received_at=now)
            for s in sessions
        ],
        batch_size=500,
    )
    DocumentBody.objects.using(ALIAS).bulk_create(
        [DocumentBody(session_id=str(s.id), version=1, body=b"{}") for s in sessions],
        batch_size=500,
    )
    ToolCallRecord.objects.using(ALIAS).bulk_create(
        [
            ToolCallRecord(
                session=s,
                message_seq=1,
                call_id="c1",
                name="search",
                status="success",
                status_source="explicit",
                occurred_at=now - timedelta(hours=1),
            )
            for s in sessions
        ],
        batch_size=500,
    )
    return sessions


def run_row(**filters: Any) -> JobRun | None:
    return JobRun.objects.using(ALIAS).filter(**filters).order_by("-id").first()


def finished_run(task_id: str, timeout: float, proc: Proc) -> JobRun:
    try:
        return wait_for(
            f"run of task {task_id} to finish",
            lambda: (
                (r := run_row(task_id=task_id))
                and r.status in ("succeeded", "failed", "skipped")
                and r
            ),
            timeout=timeout,
        )
    except AssertionError:
        print(proc.tail())
        raise


# --- tests: Redis ---------------------------------------------------------------------------


def test_jobs_enqueued_on_redis_run_and_their_effects_show(redis_server, redis_env, worker):
    due = make_sessions(2, agent="expiry-e2e", status="running")
    Session.objects.using(ALIAS).filter(id__in=[s.id for s in due]).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    (live,) = make_sessions(1, agent="expiry-e2e-live")

    task = client_app(redis_server.url).send_task(
        "expire_sessions", kwargs={"triggered_by": "test"}
    )
    run = finished_run(task.id, 60, worker)

    assert run.status == "succeeded", run.error
    assert run.counts["expired_own_expiry"] >= 2
    statuses = dict(
        Session.objects.using(ALIAS)
        .filter(agent__startswith="expiry-e2e")
        .values_list("id", "status")
    )
    assert [statuses[s.id] for s in due] == ["expired", "expired"]
    assert statuses[live.id] == "running"

    # The CLI against the same worker: enqueue, wait, print the recorded run.
    done = subprocess.run(
        [sys.executable, "manage.py", "run_job", "rollup_analytics", "--timeout", "60"],
        cwd=ROOT,
        env=redis_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rollup_analytics: SUCCEEDED" in done.stdout
    assert "on Redis" in done.stderr


def test_index_search_run_by_the_worker_fills_the_full_text_table(redis_server, redis_env, worker):
    (session,) = make_sessions(1, agent="index-e2e")
    SearchEntry.objects.using(ALIAS).bulk_create(
        SearchEntry(
            session=session,
            event_index=i,
            seq=i,
            last_seq=i,
            events=f"{i}:message",
            text=f"a cormorant counts {i} herrings",
        )
        for i in range(5)
    )

    def indexed(text: str) -> int:
        with connections[ALIAS].cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM search_entry_fts WHERE text LIKE %s", [f"%{text}%"]
            )
            return cursor.fetchone()[0]

    assert indexed("cormorant") == 0  # written, waiting for the job

    task = client_app(redis_server.url).send_task("index_search", kwargs={"triggered_by": "test"})
    run = finished_run(task.id, 60, worker)

    assert run.status == "succeeded", run.error
    assert run.counts["indexed_rows"] >= 5 and run.counts["waiting_rows"] == 0
    assert indexed("cormorant") == 5


def test_worker_logs_json_lines_under_the_id_of_the_request_that_queued_the_job(
    redis_server, redis_env, workdir
):
    """Structured JSON logs with a correlation id, in the worker too. A job queued
    while a request is served is logged under that request's id, and names its task."""
    import workers.log_context  # noqa: F401 - connects the publish signal in this process
    from config.logging import request_id_var

    proc = start_worker({**redis_env, "LOG_FORMAT": "json"}, workdir, "worker-json", "json-logs")
    try:
        wait_for(
            "the worker to answer a ping",
            lambda: (
                client_app(redis_server.url)
                .send_task("workers.ping", queue="json-logs")
                .get(timeout=5)
            ),
            timeout=60,
        )
        token = request_id_var.set("req-json-logs-1")
        try:
            task = client_app(redis_server.url).send_task(
                "detect_stuck_sessions", kwargs={"triggered_by": "test"}, queue="json-logs"
            )
        finally:
            request_id_var.reset(token)
        assert finished_run(task.id, 60, proc).status == "succeeded"
    finally:
        proc.stop()

    records = [
        json.loads(line)
        for line in proc.log.read_text(errors="replace").splitlines()
        if line.startswith("{")
    ]
    assert records, proc.tail()
    assert all({"ts", "level", "logger", "message", "request_id"} <= set(r) for r in records)
    finished = [r for r in records if r.get("job") == "detect_stuck_sessions"]
    assert finished, proc.tail()
    assert finished[0]["request_id"] == "req-json-logs-1"
    assert finished[0]["task_id"] == task.id
    assert finished[0]["task"] == "detect_stuck_sessions"
    assert finished[0]["status"] == "succeeded"
    # Nothing the worker logged came out as Celery's plain text format.
    assert not [line for line in proc.log.read_text().splitlines() if line.startswith("[20")], (
        proc.tail()
    )


def test_redis_restart_canary_completes_without_restarting_the_worker(redis_server, worker):
    """Redis restarts (losing everything) while the worker is busy with a
    purge; the purge finishes, and a canary sent afterwards completes on the same worker."""
    assert ping(redis_server.url, 20) == "pong"
    worker_pid = worker.pid
    busy = make_sessions(400, agent="busy-e2e", expired_ago=timedelta(days=2))
    in_scope = Session.objects.using(ALIAS).filter(agent="busy-e2e")
    task = client_app(redis_server.url).send_task(
        "purge_sessions",
        kwargs={"params": {"batch_size": 5, "pause_s": 0.02}, "triggered_by": "test"},
    )
    wait_for("the purge to be busy", lambda: in_scope.count() < len(busy), timeout=60)

    redis_server.stop()
    time.sleep(1.0)  # Redis stays down for a moment (not a synchronisation wait)
    redis_server.start()

    started = time.monotonic()
    answer = wait_for(
        "the canary after the Redis restart", lambda: ping(redis_server.url, 5), timeout=60
    )
    assert answer == "pong" and time.monotonic() - started < 60
    assert worker.popen.poll() is None and worker.pid == worker_pid  # the same worker
    # The busy job kept (or re-took) its lock through the restart and finished.
    run = finished_run(task.id, 60, worker)
    assert run.status == "succeeded", run.error
    assert not in_scope.exists()


def test_beat_runs_scheduled_jobs_once_per_period_even_with_two_beats(redis_env, worker, workdir):
    (stale,) = make_sessions(1, agent="stuck-e2e")
    env = {**redis_env, "JOB_SCHEDULE_DETECT_STUCK_SESSIONS": "2"}
    beats = [start_beat(env, workdir, "beat-a"), start_beat(env, workdir, "beat-b")]
    try:
        wait_for(
            "three scheduled runs",
            lambda: (
                JobRun.objects.using(ALIAS)
                .filter(job="detect_stuck_sessions", triggered_by="beat", status="succeeded")
                .count()
                >= 3
            ),
            timeout=60,
        )
    except AssertionError:
        print(beats[0].tail(), beats[1].tail(), worker.tail(), sep="\n---\n")
        raise
    finally:
        for beat in beats:
            beat.stop()

    runs = list(
        JobRun.objects.using(ALIAS)
        .filter(job="detect_stuck_sessions", triggered_by="beat")
        .order_by("started_at")
    )
    succeeded = [r.started_at for r in runs if r.status == "succeeded"]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(succeeded)]
    assert all(gap >= 1.5 for gap in gaps), gaps  # at most one run per 2 s period
    assert any(r.status == "skipped" for r in runs)  # the second beat's sends
    assert Session.objects.using(ALIAS).get(id=stale.id).stuck_since is not None


def test_kill_9_mid_purge_then_a_new_worker_finishes_it(redis_server, redis_env, workdir):
    doomed = make_sessions(3000, agent="purge-e2e", expired_ago=timedelta(days=2))
    recent = make_sessions(40, agent="purge-e2e", expired_ago=timedelta(minutes=5))
    alive = make_sessions(200, agent="purge-e2e", status="running")
    kept_ids = {s.id for s in recent + alive}
    in_scope = Session.objects.using(ALIAS).filter(agent="purge-e2e")
    total = in_scope.count()
    run = JobRun.objects.using(ALIAS).create(
        job="purge_sessions",
        status="queued",
        params={"batch_size": 10, "pause_s": 0.005},
        triggered_by="test",
        task_id=str(uuid.uuid4()),
        queued_at=timezone.now(),
    )

    # Its own queue: the module's shared worker must not pick this run up.
    first = start_worker(redis_env, workdir, "purge-a", queue="purge-e2e")
    try:
        client_app(redis_server.url).send_task(
            "purge_sessions",
            kwargs={"params": run.params, "run_id": run.id, "triggered_by": "test"},
            task_id=run.task_id,
            queue="purge-e2e",
        )
        wait_for(
            "the purge to be under way",
            lambda: total - in_scope.count() >= 300,
            timeout=60,
            interval=0.05,
        )
        first.kill9()
    except AssertionError:
        print(first.tail())
        raise
    finally:
        first.stop()
    left_after_kill = in_scope.count()
    assert len(kept_ids) < left_after_kill < total, "the kill did not land mid-purge"
    assert JobRun.objects.using(ALIAS).get(id=run.id).status == "running"

    second = start_worker(redis_env, workdir, "purge-b", queue="purge-e2e")
    try:
        # acks_late + reject_on_worker_lost: the message comes back after the visibility
        # timeout, the dead worker's lock lease has run out, and the same run finishes.
        finished = finished_run(run.task_id, 90, second)
    finally:
        second.stop()

    assert finished.id == run.id and finished.status == "succeeded", finished.error
    assert finished.details["attempt"] == 2, (finished.details, second.tail(80))
    remaining = set(in_scope.values_list("id", flat=True))
    assert remaining == kept_ids, "an unexpired session was touched, or a doomed one survived"
    for session in alive:
        assert Session.objects.using(ALIAS).get(id=session.id).status == "running"
    # No half-deleted session: every remaining one is whole, nothing of a purged one is left.
    doomed_ids = [s.id for s in doomed]
    assert not DocumentVersion.objects.using(ALIAS).filter(session_id__in=doomed_ids).exists()
    assert not ToolCallRecord.objects.using(ALIAS).filter(session_id__in=doomed_ids).exists()
    assert (
        not DocumentBody.objects.using(ALIAS)
        .filter(session_id__in=[str(i) for i in doomed_ids])
        .exists()
    )
    assert DocumentVersion.objects.using(ALIAS).filter(session_id__in=kept_ids).count() == len(
        kept_ids
    )
    assert DocumentBody.objects.using(ALIAS).filter(
        session_id__in=[str(i) for i in kept_ids]
    ).count() == len(kept_ids)


# --- tests: the embedded broker -------------------------------------------------------------


def test_embedded_filesystem_broker_runs_a_job_end_to_end(workdir, shared_db):
    data_dir = workdir / "data-embedded"
    data_dir.mkdir(exist_ok=True)
    env = base_env(data_dir=data_dir, database_url=shared_db, redis_url=None)
    (stale,) = make_sessions(1, agent="embedded-e2e")
    worker = start_worker(env, workdir, "embedded")
    try:
        done = subprocess.run(
            [sys.executable, "manage.py", "run_job", "detect_stuck_sessions", "--timeout", "90"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=150,
        )
        if done.returncode != 0:
            print(worker.tail())
        assert done.returncode == 0, done.stdout + done.stderr
        assert "detect_stuck_sessions: SUCCEEDED" in done.stdout
        assert "embedded broker" in done.stderr
    finally:
        worker.stop()
    assert Session.objects.using(ALIAS).get(id=stale.id).stuck_since is not None
    assert (data_dir / "broker" / "queue").is_dir()


# --- the Redis lock itself ------------------------------------------------------------------


def test_redis_lock_is_exclusive_and_survives_a_redis_that_lost_its_keys(redis_server, settings):
    import redis

    from workers import locks

    settings.REDIS_URL = redis_server.url
    first = locks.job_lock("prune_versions", ttl=timedelta(seconds=30))
    second = locks.job_lock("prune_versions", ttl=timedelta(seconds=30))
    assert isinstance(first, locks.RedisJobLock)
    assert first.acquire() and not second.acquire()
    assert second.holder() == first.token
    assert first.renew()

    client = redis.Redis.from_url(redis_server.url)
    client.delete(first.key)  # what a restart without persistence does
    assert first.renew()  # nobody holds it: re-taken
    assert not second.acquire()
    first.release()
    assert second.acquire()
    assert not first.renew()  # someone else's now: the lease is lost
    second.release()
    assert client.get(first.key) is None
