#!/usr/bin/env python
"""The soak: sustained load at a fraction of the measured ingest maximum, with
the jobs running, then the queue drained. Run on demand, not by pytest:

    .venv/bin/python tests/system/soak.py --duration 600            # 10 minutes
    .venv/bin/python tests/system/soak.py --duration 3600 --redis   # the full hour

It starts everything itself on 127.0.0.1 in a temporary folder: a database (SQLite, or a fresh
PostgreSQL database when DATABASE_URL names one), gunicorn with production settings (2
workers, 4 threads), one Celery worker and one beat with every job scheduled every minute or
few (embedded filesystem broker, or a private redis-server with --redis). Then:

1. calibration: 4 clients ingest 20 KB documents as fast as they can for --calibrate seconds
   (the ingest benchmark's shape) -> the maximum rate;
2. soak: --fraction (0.6) of that rate, paced, for --duration seconds: 80 % ingests (new
   sessions and new versions of earlier ones), 20 % reads (list, timeline); RSS of every
   process and the queue depth sampled every 10 s;
3. drain: after the load stops, the time until the job queue is empty (bounded: 5 minutes).

Pass criteria: no errors; RSS slope <= 10 %/h; p95 drift <= 20 %; queue back
to 0 within 5 min. Results go to --output (docs/SOAK.md), with the machine and the honest
duration. Every process is stopped by the PID this script started.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

# Run as a script: the project root must be importable for tests.support.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.live_processes import (
    ROOT,
    VENV_BIN,
    LiveServer,
    Proc,
    RedisServer,
    children_of,
    create_api_key,
    live_database,
    request,
    rss_kib,
)
from tests.support.picoflow_documents import picoflow_v15

JOBS = (
    "expire_sessions",
    "detect_stuck_sessions",
    "rollup_analytics",
    "purge_sessions",
    "prune_versions",
    "reconcile_store",
    "sync_mongo_source",
)


def document(session_id: str, revision_note: str = "", size: int = 20_000) -> bytes:
    """A Picoflow v1.5 document of about ``size`` bytes (the ingest benchmark's 20 KB)."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    filler = "lorem ipsum dolor sit amet " * 20
    messages = []
    n = 0
    while len(json.dumps(messages)) < size - 1500:
        messages.append(
            {"type": "human", "content": f"q{n} {filler}", "id": f"Step|{stamp}|{n:010d}1"}
        )
        messages.append(
            {
                "type": "ai",
                "content": f"a{n} {revision_note} {filler}",
                "id": f"Step|{stamp}|{n:010d}2",
            }
        )
        n += 1
    doc = picoflow_v15(
        session_id=session_id,
        messages=messages,
        created=stamp,
        saved=stamp,
        flow="SoakFlow",
        model=random.choice(["gpt-4o", "gpt-4o-mini"]),
        tokens={"inputTokens": 1000, "outputTokens": 200, "totalTokens": 1200},
    )
    return json.dumps(doc).encode()


@dataclass
class Sample:
    t: float
    web_rss_mb: float
    worker_rss_mb: float
    beat_rss_mb: float
    queue: int


@dataclass
class Run:
    started: float = field(default_factory=time.monotonic)
    latencies: list[tuple[float, float, str]] = field(default_factory=list)  # (t, s, kind)
    errors: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def process_tree_rss_mb(pid: int) -> float:
    return sum(rss_kib(p) for p in [pid, *children_of(pid)]) / 1024


def queue_depth(data_dir: Path, redis: RedisServer | None) -> int:
    if redis is not None:
        import redis as redis_lib

        client = redis_lib.Redis.from_url(redis.url, socket_timeout=2)
        try:
            return int(client.llen("celery"))
        finally:
            client.close()
    folder = data_dir / "broker" / "queue"
    return sum(1 for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def calibrate(port: int, key: str, seconds: float, clients: int = 4) -> float:
    bodies = [document(str(uuid.uuid4())) for _ in range(200)]
    count = 0
    lock = threading.Lock()
    ends = time.monotonic() + seconds

    def loop() -> None:
        nonlocal count
        while time.monotonic() < ends:
            body = random.choice(bodies).replace(b'"id": "', f'"id": "{uuid.uuid4()}'.encode(), 1)
            answer = request(port, "POST", "/api/v1/sessions", body, key=key)
            if answer.status in (200, 201):
                with lock:
                    count += 1

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return count / seconds


def soak(port: int, key: str, rate: float, seconds: float, run: Run, clients: int) -> None:
    """Paced load: each client sends at rate/clients per second on its own schedule."""
    known: list[tuple[str, str]] = []  # (the document's own id, the session id)
    known_lock = threading.Lock()
    ends = time.monotonic() + seconds
    interval = clients / rate

    def client(n: int) -> None:
        rng = random.Random(n)
        next_at = time.monotonic() + rng.random() * interval
        while True:
            now = time.monotonic()
            if now >= ends:
                return
            if next_at > now:
                time.sleep(next_at - now)  # pacing the load, not synchronising
            next_at += interval
            roll = rng.random()
            try:
                if roll < 0.8 or not known:
                    with known_lock:
                        reuse = known and roll < 0.3
                        external = rng.choice(known)[0] if reuse else str(uuid.uuid4())
                    body = document(external, revision_note=uuid.uuid4().hex)
                    answer = request(port, "POST", "/api/v1/sessions", body, key=key)
                    kind = "ingest"
                    if answer.status == 201:
                        with known_lock:
                            known.append((external, answer.json()["id"]))
                            if len(known) > 500:
                                known.pop(0)
                elif roll < 0.9:
                    answer = request(port, "GET", "/api/v1/sessions?limit=50", key=key)
                    kind = "list"
                else:
                    with known_lock:
                        _, session_id = rng.choice(known)
                    answer = request(
                        port, "GET", f"/api/v1/sessions/{session_id}/timeline?limit=100", key=key
                    )
                    kind = "timeline"
            except Exception as exc:  # a dropped connection is an error of the run
                with run.lock:
                    run.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with run.lock:
                run.latencies.append((time.monotonic() - run.started, answer.seconds, kind))
                if not 200 <= answer.status < 300:
                    run.errors.append(f"{kind} {answer.status}: {answer.body[:200]!r}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def slope_percent_per_hour(points: list[tuple[float, float]]) -> float:
    if len(points) < 3:
        return 0.0
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    denominator = sum((x - mean_x) ** 2 for x in xs) or 1.0
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / denominator
    return slope * 3600 / mean_y * 100


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] if ordered else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="soak seconds (default 600)")
    parser.add_argument("--calibrate", type=float, default=30, help="calibration seconds")
    parser.add_argument("--fraction", type=float, default=0.6, help="of the measured maximum")
    parser.add_argument("--rate", type=float, default=None, help="requests/s (skips calibrating)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--redis", action="store_true", help="a private redis-server as broker")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "SOAK.md")
    args = parser.parse_args()
    if args.duration > 4 * 3600:
        parser.error("--duration is bounded to 4 hours")

    run = Run()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp_name:
        tmp = Path(tmp_name)
        redis = RedisServer(tmp) if args.redis else None
        if redis:
            redis.start()
        procs: list[Proc] = []
        server: LiveServer | None = None
        try:
            with live_database(tmp, "soak") as database:
                key = create_api_key(database, tmp)
                schedule = {f"JOB_SCHEDULE_{job.upper()}": "1m" for job in JOBS}
                schedule.update(JOB_SCHEDULE_PURGE_SESSIONS="5m", JOB_SCHEDULE_PRUNE_VERSIONS="5m")
                env = {
                    **schedule,
                    "API_RATE_LIMIT": "0",
                    "LOG_LEVEL": "WARNING",
                    "EXPIRY_IDLE_DEFAULT": "2m",
                    "PURGE_EXPIRED_GRACE": "3m",
                    "PRUNE_KEEP_VERSIONS": "3",
                }
                if redis:
                    env["REDIS_URL"] = redis.url
                server = LiveServer(tmp, database, workers=2, threads=4, env=env, name="soak-web")
                celery = str(VENV_BIN / "celery")
                worker = Proc(
                    "soak-worker",
                    [celery, "-A", "workers.celery:app", "worker", "--loglevel=WARNING",
                     "--concurrency=1", "-n", f"soak-{uuid.uuid4().hex[:6]}@%h"],
                    server.env, tmp,
                )  # fmt: skip
                beat = Proc(
                    "soak-beat",
                    [celery, "-A", "workers.celery:app", "beat", "--loglevel=WARNING",
                     "--schedule", str(tmp / "beat-schedule"), "--max-interval", "5"],
                    server.env, tmp,
                )  # fmt: skip
                procs += [worker, beat]

                if args.rate:
                    maximum, rate = None, args.rate
                else:
                    print(f"calibrating for {args.calibrate:.0f} s ...", flush=True)
                    maximum = calibrate(server.port, key, args.calibrate)
                    rate = maximum * args.fraction
                print(f"soaking at {rate:.1f} req/s for {args.duration:.0f} s ...", flush=True)

                run.started = time.monotonic()
                stop_sampling = threading.Event()

                def sampler() -> None:
                    while True:
                        try:
                            depth = queue_depth(server.data_dir, redis)
                        except Exception:
                            depth = -1
                        run.samples.append(
                            Sample(
                                t=time.monotonic() - run.started,
                                web_rss_mb=process_tree_rss_mb(server.proc.pid),
                                worker_rss_mb=process_tree_rss_mb(worker.pid),
                                beat_rss_mb=process_tree_rss_mb(beat.pid),
                                queue=depth,
                            )
                        )
                        if stop_sampling.wait(10):
                            return

                sampling = threading.Thread(target=sampler, daemon=True)
                sampling.start()
                soak(server.port, key, rate, args.duration, run, args.clients)
                load_stopped = time.monotonic()
                drained_after = None
                while time.monotonic() - load_stopped < 300:
                    if queue_depth(server.data_dir, redis) == 0:
                        drained_after = time.monotonic() - load_stopped
                        break
                    time.sleep(2)
                stop_sampling.set()
                sampling.join(timeout=15)
                alive = {p.name: p.alive() for p in (*procs, server.proc)}
                job_runs = _job_runs(database)
                report = _report(args, maximum, rate, run, drained_after, alive, job_runs, database)
        finally:
            for proc in procs:
                proc.stop()
            if server is not None:
                server.stop()
            if redis:
                redis.stop()
    args.output.write_text(report)
    print(report)
    return 0


def _job_runs(database) -> dict[str, dict[str, int]]:
    from test_live_i3 import query

    counts: dict[str, dict[str, int]] = {}
    for job, status, count in query(
        database, "SELECT job, status, COUNT(*) FROM sessions_api_jobrun GROUP BY job, status"
    ):
        counts.setdefault(job, {})[status] = count
    return counts


def _report(args, maximum, rate, run: Run, drained_after, alive, job_runs, database) -> str:
    warm = 60.0 if args.duration >= 300 else args.duration / 5
    steady = [s for s in run.samples if s.t >= warm and s.t <= args.duration]
    web_slope = slope_percent_per_hour([(s.t, s.web_rss_mb) for s in steady])
    worker_slope = slope_percent_per_hour([(s.t, s.worker_rss_mb) for s in steady])
    windows: dict[int, list[float]] = {}
    for t, seconds, _ in run.latencies:
        if t >= warm:
            windows.setdefault(int((t - warm) // 60), []).append(seconds)
    window_p95 = [p95(v) for _, v in sorted(windows.items()) if len(v) >= 20]
    if len(window_p95) >= 4:
        first = statistics.median(window_p95[:3])
        last = statistics.median(window_p95[-3:])
        drift = (last / first - 1) * 100 if first else 0.0
    else:
        first = last = drift = 0.0
    total = len(run.latencies)
    by_kind: dict[str, list[float]] = {}
    for _, seconds, kind in run.latencies:
        by_kind.setdefault(kind, []).append(seconds)
    checks = {
        "no errors": not run.errors and all(alive.values()),
        "RSS slope <= 10 %/h (web)": web_slope <= 10,
        "RSS slope <= 10 %/h (worker)": worker_slope <= 10,
        "p95 drift <= 20 %": drift <= 20,
        "queue back to 0 within 5 min": drained_after is not None,
    }
    lines = [
        "# Soak",
        "",
        "Produced by `tests/system/soak.py` "
        f"(`--duration {args.duration:.0f}{' --redis' if args.redis else ''}`) on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Everything ran on 127.0.0.1.",
        "",
        "**Duration.** A soak is meant to last an hour or more; this run lasted "
        f"{args.duration / 60:.0f} minutes"
        + (
            " (a shared 2-core development machine, within one working session). The slope "
            "and drift figures below are extrapolated from that window; run "
            "`soak.py --duration 3600 --redis` for the full hour before a release."
            if args.duration < 3600
            else "."
        ),
        "",
        "## Setup",
        "",
        f"- machine: {os.cpu_count()} cores, {_memory_gb():.0f} GB, {platform.platform()}",
        f"- database: {database.vendor}; broker: "
        + ("Redis (private)" if args.redis else "embedded filesystem"),
        "- web: gunicorn config.wsgi, 2 workers x 4 threads, DJANGO_DEBUG=0, no worker recycling",
        "- jobs: one Celery worker (concurrency 1) and one beat; every job scheduled every 1-5 "
        "minutes, idle expiry 2 min, purge grace 3 min, 3 versions kept",
        "- load: 20 KB Picoflow documents; 80 % ingests (30 % of them a new version of an earlier "
        "session), 10 % list pages, 10 % timeline pages; "
        f"{args.clients} paced clients",
        (
            f"- calibration: {maximum:.1f} ingests/s at most (4 clients, {args.calibrate:.0f} s); "
            f"soak rate {rate:.1f} req/s = {args.fraction:.0%} of it"
            if maximum
            else f"- rate: {rate:.1f} req/s (given)"
        ),
        "",
        "## Results",
        "",
        "| criterion | measured | pass |",
        "|---|---|---|",
        f"| no errors | {len(run.errors)} errors in {total} requests; processes alive: "
        f"{', '.join(f'{k} {v}' for k, v in alive.items())} | {_ok(checks['no errors'])} |",
        f"| RSS slope <= 10 %/h | web {web_slope:+.1f} %/h, worker {worker_slope:+.1f} %/h "
        f"(after {warm:.0f} s warm-up) | "
        f"{_ok(checks['RSS slope <= 10 %/h (web)'] and checks['RSS slope <= 10 %/h (worker)'])} |",
        f"| p95 drift <= 20 % | first 3 minutes {first * 1000:.0f} ms, last 3 minutes "
        f"{last * 1000:.0f} ms: {drift:+.1f} % | {_ok(checks['p95 drift <= 20 %'])} |",
        "| queue back to 0 within 5 min | "
        + (f"{drained_after:.0f} s after the load stopped" if drained_after is not None else "no")
        + f" | {_ok(checks['queue back to 0 within 5 min'])} |",
        "",
        "Latency by request kind (whole run):",
        "",
        "| kind | requests | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|---|",
    ]
    for kind, values in sorted(by_kind.items()):
        lines.append(
            f"| {kind} | {len(values)} | {statistics.median(values) * 1000:.0f} | "
            f"{p95(values) * 1000:.0f} | {max(values) * 1000:.0f} |"
        )
    lines += ["", "p95 per minute (ms): " + ", ".join(f"{v * 1000:.0f}" for v in window_p95), ""]
    lines += ["RSS and queue, every 10 s (MB; queue = messages waiting):", ""]
    lines += ["| t (s) | web | worker | beat | queue |", "|---|---|---|---|---|"]
    step = max(1, len(run.samples) // 30)
    for sample in run.samples[::step]:
        lines.append(
            f"| {sample.t:.0f} | {sample.web_rss_mb:.0f} | {sample.worker_rss_mb:.0f} | "
            f"{sample.beat_rss_mb:.0f} | {sample.queue} |"
        )
    lines += ["", "Job runs recorded during the soak (by status):", ""]
    for job, statuses in sorted(job_runs.items()):
        lines.append(f"- {job}: {', '.join(f'{s} {n}' for s, n in sorted(statuses.items()))}")
    if run.errors:
        lines += ["", "First errors:", ""] + [f"- `{e}`" for e in run.errors[:10]]
    lines += [
        "",
        f"Verdict: {'PASS' if all(checks.values()) else 'FAIL'} "
        f"({', '.join(k for k, v in checks.items() if not v) or 'every criterion met'}).",
        "",
    ]
    return "\n".join(lines)


def _ok(value: bool) -> str:
    return "yes" if value else "**no**"


def _memory_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


if __name__ == "__main__":
    raise SystemExit(main())
