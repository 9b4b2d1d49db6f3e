"""``bin/bench`` / ``python -m bench``: run B1-B12 with their same-run baselines.

    bin/bench                      the full run (about 20-30 minutes on 2 cores)
    bin/bench --smoke              every benchmark, tiny (seconds; CI); asserts nothing on time
    bin/bench --only B1,B5         a subset
    bin/bench --sessions 100000,200000   B4/B6 scale points (the largest is the headline)
    bin/bench --write-docs         also regenerate docs/BENCHMARKS.md and docs/bench/*.svg
    bin/bench --docs-from RUN_ID   regenerate the docs from an earlier run's result files

Results: one JSON per benchmark, ``bench/results/<run id>.<B#>.json``, and
``<run id>.summary.json`` (``--out DIR`` to write elsewhere).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import pickle
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import datagen
from bench.alerts import bench_b12
from bench.common import (
    PYTHON,
    ROOT,
    git_commit,
    log,
    machine,
    median,
    now_iso,
    percentile,
    ratio,
    summary_ms,
    write_json,
)
from bench.server import Server, production_like_env, request_once, run_load

ALL = ("B1", "B2", "B3", "PG", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11", "B12")


@dataclass
class Scale:
    runs: int = 5
    b1_seconds: float = 6.0
    healthz_seconds: float = 3.0
    concurrency: int = 4
    b2_batches: int = 6
    batch_size: int = 100
    b3_docs: int = 10
    b3_bytes: int = 2 * 1024 * 1024
    sessions: tuple[int, ...] = (100_000, 1_000_000)
    days: float = 60.0
    templates: int = 400
    b4_seconds: float = 20.0
    b4_rate: float = 100.0
    b5_messages: int = 10_000
    b5_small: int = 100
    b5_requests: int = 20
    b7_expired: int = 100_000
    b7_rate: float = 50.0
    b7_idle_seconds: float = 10.0
    list_repeat: int = 15
    b9_messages: int = 2_000
    b9_save_every: int = 20
    b10_sessions: tuple[int, ...] = (100_000, 1_000_000)
    b10_http_sessions: int = 5_000
    b10_http_requests: int = 60
    b10_ingest_documents: int = 300
    b10_growing_messages: int = 2_000
    b10_growing_every: int = 20
    b11_sessions: int = 1_024
    b11_turns: int = 8
    b11_group: int = 64


SMOKE = Scale(
    runs=1,
    b1_seconds=0.8,
    healthz_seconds=0.4,
    b2_batches=1,
    batch_size=20,
    b3_docs=1,
    b3_bytes=2 * 1024 * 1024,
    sessions=(500, 1_000),
    days=30.0,
    templates=30,
    b4_seconds=1.0,
    b4_rate=20.0,
    b5_messages=500,
    b5_small=100,
    b5_requests=3,
    b7_expired=500,
    b7_rate=20.0,
    b7_idle_seconds=1.0,
    list_repeat=3,
    b9_messages=200,
    b9_save_every=20,
    b10_sessions=(300, 600),
    b10_http_sessions=300,
    b10_http_requests=5,
    b10_ingest_documents=20,
    b10_growing_messages=200,
    b10_growing_every=20,
    b11_sessions=64,
    b11_turns=4,
    b11_group=32,
)


class Context:
    def __init__(self, args: argparse.Namespace, scale: Scale) -> None:
        self.args = args
        self.scale = scale
        self.smoke = args.smoke
        self.work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-"))
        self.work.mkdir(parents=True, exist_ok=True)
        self.out = Path(args.out) if args.out else ROOT / "bench" / "results"
        self.run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + (
            "-smoke" if args.smoke else ""
        )
        self.database = args.database
        if self.database == "postgres":
            self.run_id += "-postgres"
        self.pg_base = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
        #: data dir -> the PostgreSQL database it stands for (``--database postgres``).
        self.pg_urls: dict[Path, str] = {}
        self.unique = itertools.count(1)
        self.results: dict[str, dict[str, Any]] = {}
        self.machine = machine()
        self.git = git_commit()
        self.pool: list[datagen.Template] = []
        self.keyed: list[datagen.Template] = []
        self.secrets: dict[str, str] = {}

    # --- plumbing -----------------------------------------------------------------------------

    def task(
        self,
        name: str,
        data_dir: Path,
        params: dict[str, Any] | None = None,
        env_extra: dict[str, str] | None = None,
        timeout: float = 3600,
    ) -> Any:
        out = self.work / f"task-{name}-{next(self.unique)}.json"
        env = {**os.environ, **production_like_env(), "DATA_DIR": str(data_dir)}
        env.update(self.db_env(data_dir))
        env.update(env_extra or {})
        env.pop("DJANGO_SETTINGS_MODULE", None)
        completed = subprocess.run(
            [
                PYTHON,
                "-m",
                "bench.tasks",
                name,
                "--data-dir",
                str(data_dir),
                "--params",
                json.dumps(params or {}),
                "--out",
                str(out),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"task {name} failed:\n{completed.stderr[-4000:]}")
        return json.loads(out.read_text())

    def fresh_dir(self, name: str) -> Path:
        path = self.work / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        if self.database == "postgres":
            # A copy of the migrated template database (CREATE DATABASE ... TEMPLATE).
            self.pg_urls[path] = self.pg_create(name, template=self.pg_name("template"))
        else:
            shutil.copy(
                self.work / "template" / "observatory.sqlite3", path / "observatory.sqlite3"
            )
        return path

    def db_env(self, data_dir: Path) -> dict[str, str]:
        """DATABASE_URL for the processes working on ``data_dir`` (none: its SQLite file)."""
        url = self.pg_urls.get(Path(data_dir))
        return {"DATABASE_URL": url} if url else {}

    def pg_name(self, name: str) -> str:
        text = f"{self.run_id}_{name}".lower()
        return "bench_" + "".join(c for c in text if c.isalnum() or c == "_")

    def pg_admin(self):
        import psycopg

        return psycopg.connect(f"{self.pg_base}/postgres", connect_timeout=3, autocommit=True)

    def pg_create(self, name: str, *, template: str | None = None) -> str:
        database = self.pg_name(name)
        with self.pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            admin.execute(
                f'CREATE DATABASE "{database}"' + (f' TEMPLATE "{template}"' if template else "")
            )
        return f"{self.pg_base}/{database}"

    def pg_drop_all(self) -> None:
        names = [url.rsplit("/", 1)[1] for url in self.pg_urls.values()]
        with contextlib.suppress(Exception), self.pg_admin() as admin:
            for database in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    @property
    def json_headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.secrets['api_key']}",
            "Content-Type": "application/json",
        }

    @property
    def cookie_headers(self) -> dict[str, str]:
        return {"Cookie": f"sessionid={self.secrets['session_cookie']}"}

    def ingest_factory(self, pool: list[datagen.Template]):
        def factory(_: int) -> tuple[str, str, bytes, dict[str, str]]:
            n = next(self.unique)
            template = pool[n % len(pool)]
            body, query = template.unique(n)
            return "POST", "/api/v1/sessions" + query, body, self.json_headers

        return factory

    def batch_factory(self, pool: list[datagen.Template]):
        """Batch requests of ``scale.batch_size`` documents each, every one unique."""

        def factory(_: int) -> tuple[str, str, bytes, dict[str, str]]:
            bodies = [self.unique_body(pool) for _ in range(self.scale.batch_size)]
            body = b'{"documents":[' + b",".join(bodies) + b"]}"
            return "POST", "/api/v1/sessions/batch", body, self.json_headers

        return factory

    def unique_body(self, pool: list[datagen.Template]) -> bytes:
        n = next(self.unique)
        return pool[n % len(pool)].unique(n)[0]

    def record(self, key: str, title: str, target: str, data: dict[str, Any]) -> None:
        result = {
            "benchmark": key,
            "title": title,
            "target": target,
            "run_id": self.run_id,
            "smoke": self.smoke,
            "machine": self.machine,
            "database": self.database,
            "git_commit": self.git["commit"],
            "git_dirty": self.git["dirty"],
            "finished_at": now_iso(),
            **data,
        }
        for required in ("runs", "median", "p50", "p95", "p99", "peak_rss_mb", "ratios"):
            result.setdefault(required, None)
        result.setdefault("target_met", {})
        self.results[key] = result
        write_json(self.out / f"{self.run_id}.{key}.json", result)
        log(f"{key} written: {json.dumps(result.get('headline', {}))}")

    # --- setup --------------------------------------------------------------------------------

    def prepare(self) -> None:
        log(f"work dir {self.work}")
        template = self.work / "template"
        template.mkdir(exist_ok=True)
        if self.database == "postgres":
            self.pg_urls[template] = self.pg_create("template")
        self.secrets = self.task("prepare", template)
        if self.database == "sqlite":
            db = sqlite3.connect(str(template / "observatory.sqlite3"))
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.close()
        os.environ["DATA_DIR"] = str(self.work / "main")
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        import django

        django.setup()
        self.pool = datagen.document_pool(smoke=self.smoke)
        self.keyed = [t for t in self.pool if t.key is not None]
        sizes = [len(t.body) for t in self.pool]
        log(
            f"document pool: {len(self.pool)} templates, mean {sum(sizes) / len(sizes):.0f} B "
            f"({sum(1 for t in self.pool if t.label.startswith('fixture'))} fixtures)"
        )


# --- B1 ----------------------------------------------------------------------------------------


def pool_stats(pool: list[datagen.Template]) -> dict[str, Any]:
    sizes = [len(t.body) for t in pool]
    labels: dict[str, int] = {}
    for t in pool:
        kind = t.label.split("/")[0] if t.label.startswith("demo") else "fixture"
        labels[kind] = labels.get(kind, 0) + 1
    return {
        "templates": len(pool),
        "mean_bytes": round(sum(sizes) / len(sizes)),
        "p50_bytes": percentile(sizes, 50),
        "kinds": labels,
    }


def load_summary(result, *, label: str) -> dict[str, Any]:
    return {
        "label": label,
        "requests": result.requests,
        "errors": result.errors,
        "seconds": round(result.seconds, 3),
        "rate_per_s": round(result.rate, 1),
        "latency_ms": summary_ms(result.latencies),
        "statuses": dict(result.statuses),
    }


def healthz_request(_: int) -> tuple[str, str, None, dict[str, str]]:
    return "GET", "/healthz", None, {}


def warm_up_ingest(ctx: Context, port: int) -> None:
    """A few untimed ingests, so the timed runs meet open connections and warm caches."""
    run_load(
        port,
        ctx.ingest_factory(ctx.pool),
        concurrency=ctx.scale.concurrency,
        max_seconds=1.0,
        max_requests=40,
    )


def healthz_then_ingest(ctx: Context, port: int) -> tuple[Any, Any]:
    """One run of the single-document ingest benchmark: the /healthz floor, then ingest, at the
    same concurrency, back to back (B1 and PG alternate them run by run)."""
    s = ctx.scale
    floor = run_load(
        port,
        healthz_request,
        concurrency=s.concurrency,
        max_seconds=s.healthz_seconds,
        max_requests=200_000,
    )
    ingest = run_load(
        port,
        ctx.ingest_factory(ctx.pool),
        concurrency=s.concurrency,
        max_seconds=s.b1_seconds,
        max_requests=200_000,
    )
    return floor, ingest


def bench_b1(ctx: Context) -> None:
    s = ctx.scale
    data_dir = ctx.fresh_dir("b1")
    runs = []
    latencies: list[float] = []
    with Server(data_dir, env=ctx.db_env(data_dir)) as server:
        run_load(
            server.port,
            healthz_request,
            concurrency=s.concurrency,
            max_seconds=0.5,
            max_requests=200,
        )
        warm_up_ingest(ctx, server.port)
        for _ in range(s.runs):
            h, g = healthz_then_ingest(ctx, server.port)
            latencies.extend(g.latencies)
            runs.append(
                {
                    "ingest": load_summary(g, label="POST /api/v1/sessions"),
                    "healthz": load_summary(h, label="GET /healthz"),
                    "ratio_ingest_healthz": ratio(g.rate, h.rate),
                }
            )
        memory = server.memory()
    docs_s = median(r["ingest"]["rate_per_s"] for r in runs)
    healthz_s = median(r["healthz"]["rate_per_s"] for r in runs)
    lat = summary_ms(latencies)
    errors = sum(r["ingest"]["errors"] for r in runs)
    rel = median(r["ratio_ingest_healthz"] for r in runs)
    ctx.record(
        "B1",
        "single-document ingest over loopback HTTP, 4 clients, SQLite",
        ">= 800 docs/s, p95 <= 15 ms, 0 errors; ingest/healthz req/s >= 0.5",
        {
            "params": {
                "concurrency": s.concurrency,
                "seconds_per_run": s.b1_seconds,
                "documents": pool_stats(ctx.pool),
            },
            "runs": runs,
            "median": {"docs_per_s": docs_s, "healthz_req_per_s": healthz_s},
            "p50": lat["p50"],
            "p95": lat["p95"],
            "p99": lat["p99"],
            "latency_ms": lat,
            "errors": errors,
            "peak_rss_mb": memory["max_worker_peak_rss_mb"],
            "server_memory": memory,
            "baselines": {"healthz_req_per_s": healthz_s},
            "ratios": {"ingest_over_healthz": rel},
            "target_met": {
                "docs_per_s>=800": docs_s is not None and docs_s >= 800,
                "p95<=15ms": lat["p95"] is not None and lat["p95"] <= 15,
                "0 errors": errors == 0,
                "ingest/healthz>=0.5": rel is not None and rel >= 0.5,
            },
            "headline": {"docs_per_s": docs_s, "p95_ms": lat["p95"], "ratio": rel},
        },
    )


# --- B2 ----------------------------------------------------------------------------------------


def bench_b2(ctx: Context) -> None:
    s = ctx.scale
    data_dir = ctx.fresh_dir("b2")
    pool = ctx.keyed  # id-less documents cannot take ?external_id= inside a batch
    batch_factory = ctx.batch_factory(pool)
    runs = []
    latencies: list[float] = []
    with Server(data_dir, env=ctx.db_env(data_dir)) as server:
        run_load(server.port, batch_factory, concurrency=1, max_seconds=30, max_requests=1)
        for _ in range(s.runs):
            g = run_load(
                server.port,
                batch_factory,
                concurrency=s.concurrency,
                max_seconds=120,
                max_requests=s.b2_batches,
            )
            latencies.extend(g.latencies)
            docs = g.requests * s.batch_size
            runs.append(
                {
                    "batch": load_summary(g, label="POST /api/v1/sessions/batch"),
                    "docs_per_s": round(docs / g.seconds, 1) if g.seconds else None,
                }
            )
        memory = server.memory()
    # The raw ceiling: the same kind of documents, orjson + sqlite3 executemany.
    n_raw = max(s.batch_size * s.b2_batches, 500 if ctx.smoke else 4000)
    raw_docs = [ctx.unique_body(pool) for _ in range(n_raw)]
    pickle_path = ctx.work / "raw-docs.pkl"
    pickle_path.write_bytes(pickle.dumps(raw_docs))
    raw = ctx.task("raw_ceiling", ctx.work / "raw", {"pickle": str(pickle_path), "runs": s.runs})
    docs_s = median(r["docs_per_s"] for r in runs)
    single = ctx.results.get("B1", {}).get("median", {}).get("docs_per_s")
    lat = summary_ms(latencies)
    errors = sum(r["batch"]["errors"] for r in runs)
    r_raw = ratio(docs_s, raw["docs_per_s"])
    r_single = ratio(docs_s, single)
    ctx.record(
        "B2",
        f"batch ingest, {s.batch_size} per request, SQLite",
        ">= 2,000 docs/s; ingest/raw ceiling >= 0.4; batch/single >= 2",
        {
            "params": {
                "concurrency": s.concurrency,
                "batch_size": s.batch_size,
                "batches_per_run": s.b2_batches,
                "documents": pool_stats(pool),
            },
            "runs": runs,
            "median": {"docs_per_s": docs_s},
            "p50": lat["p50"],
            "p95": lat["p95"],
            "p99": lat["p99"],
            "latency_ms_per_batch": lat,
            "errors": errors,
            "peak_rss_mb": memory["max_worker_peak_rss_mb"],
            "server_memory": memory,
            "baselines": {"raw_ceiling": raw, "single_docs_per_s_B1": single},
            "ratios": {"ingest_over_raw": r_raw, "batch_over_single": r_single},
            "target_met": {
                "docs_per_s>=2000": docs_s is not None and docs_s >= 2000,
                "ingest/raw>=0.4": r_raw is not None and r_raw >= 0.4,
                "batch/single>=2": r_single is not None and r_single >= 2,
            },
            "headline": {
                "docs_per_s": docs_s,
                "raw_docs_per_s": raw["docs_per_s"],
                "ratio_raw": r_raw,
                "ratio_single": r_single,
            },
        },
    )


# --- B3 ----------------------------------------------------------------------------------------


def bench_b3(ctx: Context) -> None:
    s = ctx.scale
    data_dir = ctx.fresh_dir("b3")
    templates = []
    for seed in range(3):
        key = f"conv_bench2mb{seed:02d}abcdef0123456789"
        body = datagen.chat_document_of_size(target_bytes=s.b3_bytes, session_id=key, seed=seed)
        templates.append(datagen.Template(body, key, "generated:openai_chat/2MB"))
    mean_bytes = sum(len(t.body) for t in templates) / len(templates)
    runs = []
    latencies: list[float] = []
    with Server(data_dir, env=ctx.db_env(data_dir)) as server:
        run_load(
            server.port,
            ctx.ingest_factory(templates),
            concurrency=1,
            max_seconds=30,
            max_requests=1,
        )
        for _ in range(s.runs):
            g = run_load(
                server.port,
                ctx.ingest_factory(templates),
                concurrency=s.concurrency,
                max_seconds=120,
                max_requests=s.b3_docs,
            )
            latencies.extend(g.latencies)
            runs.append(
                {
                    "ingest": load_summary(g, label="POST /api/v1/sessions (2 MB)"),
                    "mb_per_s": round(g.rate * mean_bytes / 2**20, 2),
                }
            )
        memory = server.memory()
    docs_s = median(r["ingest"]["rate_per_s"] for r in runs)
    mb_s = median(r["mb_per_s"] for r in runs)
    b1 = ctx.results.get("B1")
    small_mb_s = None
    if b1:
        small_mb_s = round(
            b1["median"]["docs_per_s"] * b1["params"]["documents"]["mean_bytes"] / 2**20, 3
        )
    lat = summary_ms(latencies)
    rel = ratio(mb_s, small_mb_s)
    peak = memory["max_worker_peak_rss_mb"]
    errors = sum(r["ingest"]["errors"] for r in runs)
    ctx.record(
        "B3",
        "2 MB documents",
        ">= 25 docs/s, web RSS <= 300 MB; MB/s at 2 MB / MB/s at 20 KB >= 0.3",
        {
            "params": {
                "concurrency": s.concurrency,
                "docs_per_run": s.b3_docs,
                "mean_bytes": round(mean_bytes),
                "messages_per_doc": len(json.loads(templates[0].body)["messages"]),
            },
            "runs": runs,
            "median": {"docs_per_s": docs_s, "mb_per_s": mb_s},
            "p50": lat["p50"],
            "p95": lat["p95"],
            "p99": lat["p99"],
            "errors": errors,
            "peak_rss_mb": peak,
            "server_memory": memory,
            "baselines": {"mb_per_s_at_20kb_B1": small_mb_s},
            "ratios": {"mb_s_2mb_over_20kb": rel},
            "target_met": {
                "docs_per_s>=25": docs_s is not None and docs_s >= 25,
                "web_rss<=300MB": peak is not None and peak <= 300,
                "MB/s ratio>=0.3": rel is not None and rel >= 0.3,
            },
            "headline": {
                "docs_per_s": docs_s,
                "mb_per_s": mb_s,
                "web_peak_rss_mb": peak,
                "ratio": rel,
            },
        },
    )


# --- B1/B2 on PostgreSQL ------------------------------------------------------------------------


def bench_pg(ctx: Context) -> None:
    """B1 and B2 again with DATABASE_URL on a local PostgreSQL (a database of its own, dropped
    at the end). Skipped, and said so, when no server answers."""
    s = ctx.scale
    base = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
    name = "bench_" + "".join(c for c in ctx.run_id.lower() if c.isalnum())
    try:
        import psycopg

        admin = psycopg.connect(f"{base}/postgres", connect_timeout=3, autocommit=True)
    except Exception as exc:  # no server, no driver: say so
        ctx.record("PG", "B1/B2 on PostgreSQL", "as B1 and B2", {"skipped": str(exc)})
        return
    url = f"{base}/{name}"
    data_dir = ctx.work / "pg"
    data_dir.mkdir(exist_ok=True)
    saved = ctx.secrets
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        ctx.secrets = ctx.task("prepare", data_dir, env_extra={"DATABASE_URL": url})
        batch_factory = ctx.batch_factory(ctx.keyed)
        runs = []
        single_lat: list[float] = []
        with Server(data_dir, env={"DATABASE_URL": url}) as server:
            warm_up_ingest(ctx, server.port)
            for _ in range(s.runs):
                h, g = healthz_then_ingest(ctx, server.port)
                b = run_load(
                    server.port,
                    batch_factory,
                    concurrency=s.concurrency,
                    max_seconds=120,
                    max_requests=s.b2_batches,
                )
                single_lat.extend(g.latencies)
                runs.append(
                    {
                        "ingest": load_summary(g, label="POST /api/v1/sessions"),
                        "healthz": load_summary(h, label="GET /healthz"),
                        "batch": load_summary(b, label="POST /api/v1/sessions/batch"),
                        "batch_docs_per_s": round(b.requests * s.batch_size / b.seconds, 1)
                        if b.seconds
                        else None,
                        "ratio_ingest_healthz": ratio(g.rate, h.rate),
                    }
                )
            memory = server.memory()
    finally:
        ctx.secrets = saved
        with contextlib.suppress(Exception):
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    docs_s = median(r["ingest"]["rate_per_s"] for r in runs)
    batch_s = median(r["batch_docs_per_s"] for r in runs)
    lat = summary_ms(single_lat)
    rel = median(r["ratio_ingest_healthz"] for r in runs)
    sqlite_b1 = ctx.results.get("B1", {}).get("median", {}).get("docs_per_s")
    errors = sum(r["ingest"]["errors"] + r["batch"]["errors"] for r in runs)
    ctx.record(
        "PG",
        "B1 and B2 on PostgreSQL (same server settings, DATABASE_URL=postgresql://...)",
        "as B1 (>= 800 docs/s, p95 <= 15 ms) and B2 (>= 2,000 docs/s)",
        {
            "params": {"concurrency": s.concurrency, "batch_size": s.batch_size},
            "runs": runs,
            "median": {
                "docs_per_s": docs_s,
                "batch_docs_per_s": batch_s,
                "healthz_req_per_s": median(r["healthz"]["rate_per_s"] for r in runs),
            },
            "p50": lat["p50"],
            "p95": lat["p95"],
            "p99": lat["p99"],
            "errors": errors,
            "peak_rss_mb": memory["max_worker_peak_rss_mb"],
            "baselines": {"sqlite_single_docs_per_s_B1": sqlite_b1},
            "ratios": {
                "ingest_over_healthz": rel,
                "pg_over_sqlite_single": ratio(docs_s, sqlite_b1),
                "batch_over_single": ratio(batch_s, docs_s),
            },
            "target_met": {
                "docs_per_s>=800": docs_s is not None and docs_s >= 800,
                "p95<=15ms": lat["p95"] is not None and lat["p95"] <= 15,
                "batch docs_per_s>=2000": batch_s is not None and batch_s >= 2000,
                "0 errors": errors == 0,
            },
            "headline": {
                "docs_per_s": docs_s,
                "p95_ms": lat["p95"],
                "batch_docs_per_s": batch_s,
                "ratio_healthz": rel,
            },
        },
    )


# --- B4 + B6 (same databases, one per scale point) ---------------------------------------------


def seed_templates(ctx: Context, data_dir: Path, count: int, *, pool=None) -> dict[str, Any]:
    pool = pool or ctx.pool
    items = []
    for i in range(count):
        n = next(ctx.unique)
        template = pool[i % len(pool)]
        body, query = template.unique(n)
        external = query.split("=", 1)[1] if query else None
        items.append((body, external))
    path = ctx.work / f"seed-{data_dir.name}.pkl"
    path.write_bytes(pickle.dumps(items))
    return ctx.task("ingest", data_dir, {"pickle": str(path)})


def bench_scale(ctx: Context) -> None:
    s = ctx.scale
    data_dir = ctx.fresh_dir("scale")
    seeded = seed_templates(ctx, data_dir, s.templates)
    log(f"scale: {seeded['created']} template sessions ingested in {seeded['seconds']} s")
    now = datetime.now(UTC)
    have = seeded["created"]
    points = []
    for target in sorted(s.sessions):
        if target > have:
            t0 = time.perf_counter()
            loaded = ctx.task(
                "bulk",
                data_dir,
                {
                    "count": target - have,
                    "start_index": have,
                    "now": now.isoformat(),
                    "days": s.days,
                },
            )
            log(f"scale: bulk-loaded {loaded['rows']} in {time.perf_counter() - t0:.1f} s")
            have = target
        else:
            loaded = None
        lists = ctx.task("lists", data_dir, {"repeat": s.list_repeat})
        http = list_under_ingest(ctx, data_dir, lists)
        roll = ctx.task(
            "rollups",
            data_dir,
            {"changes": 50, "incremental_repeat": 1, "chart_repeat": 2}
            if ctx.smoke
            else {"changes": 1000},
        )
        points.append(
            {
                "sessions": lists["sessions"],
                "bulk_load": loaded,
                "lists": lists,
                "http": http,
                "rollups": roll,
            }
        )
        log(f"scale: {lists['sessions']} sessions measured")
    write_b4(ctx, points)
    write_b6(ctx, points)
    ctx.scale_points = points


def list_under_ingest(ctx: Context, data_dir: Path, lists: dict[str, Any]) -> dict[str, Any]:
    """GET /api/v1/sessions (first page, 3 filters, the deep keyset page) while the ingest of
    B1 runs paced at b4_rate docs/s in the background."""
    from urllib.parse import urlencode

    s = ctx.scale
    paths = {
        name: "/api/v1/sessions?" + urlencode({**query, "limit": 50})
        for name, query in lists["http_filters"].items()
    }
    paths["deep"] = "/api/v1/sessions?" + urlencode({"cursor": lists["deep_cursor"], "limit": 50})
    latencies: dict[str, list[float]] = {name: [] for name in paths}
    errors = 0
    with Server(data_dir, env=ctx.db_env(data_dir)) as server:
        for path in paths.values():
            request_once(server.port, "GET", path, headers=ctx.json_headers)
        stop = threading.Event()
        holder: dict[str, Any] = {}

        def background() -> None:
            holder["ingest"] = run_load(
                server.port,
                ctx.ingest_factory(ctx.pool),
                concurrency=2,
                max_seconds=s.b4_seconds + 30,
                max_requests=10**6,
                rate=s.b4_rate,
                stop_event=stop,
            )

        thread = threading.Thread(target=background, daemon=True)
        thread.start()
        deadline = time.perf_counter() + s.b4_seconds
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        while time.perf_counter() < deadline:
            for name, path in paths.items():
                t0 = time.perf_counter()
                conn.request("GET", path, headers=ctx.json_headers)
                response = conn.getresponse()
                response.read()
                latencies[name].append(time.perf_counter() - t0)
                errors += response.status != 200
        conn.close()
        stop.set()
        thread.join(60)
    ingest = holder.get("ingest")
    return {
        "latency_ms": {name: summary_ms(values) for name, values in latencies.items()},
        "errors": errors,
        "background_ingest": load_summary(ingest, label="paced ingest") if ingest else None,
    }


def write_b4(ctx: Context, points: list[dict[str, Any]]) -> None:
    top = points[-1]
    http = top["http"]["latency_ms"]
    inproc = top["lists"]["inproc"]
    worst_p95 = max(v["p95"] for v in http.values() if v["p95"] is not None)
    deep_first = ratio(http["deep"]["p95"], http["first_page"]["p95"])
    offset_ratio = ratio(inproc["offset_deep"]["p50"], inproc["offset_first"]["p50"])
    keyset_inproc_ratio = ratio(inproc["keyset_deep"]["p50"], inproc["keyset_first_page"]["p50"])
    offset_vs_keyset = ratio(inproc["offset_deep"]["p50"], inproc["keyset_deep"]["p50"])
    scaling = None
    if len(points) > 1:
        a, b = points[0], points[-1]
        scaling = {
            "from_sessions": a["sessions"],
            "to_sessions": b["sessions"],
            "first_page_p95": ratio(
                b["http"]["latency_ms"]["first_page"]["p95"],
                a["http"]["latency_ms"]["first_page"]["p95"],
            ),
            "deep_p95": ratio(
                b["http"]["latency_ms"]["deep"]["p95"], a["http"]["latency_ms"]["deep"]["p95"]
            ),
            "offset_deep_p50": ratio(
                b["lists"]["inproc"]["offset_deep"]["p50"],
                a["lists"]["inproc"]["offset_deep"]["p50"],
            ),
        }
    runs = [
        {
            "sessions": p["sessions"],
            "http_latency_ms": p["http"]["latency_ms"],
            "inproc_ms": p["lists"]["inproc"],
            "depth_pages": p["lists"]["depth_pages"],
            "background_ingest": p["http"]["background_ingest"],
        }
        for p in points
    ]
    all_http = [v for v in http.values()]
    ctx.record(
        "B4",
        "session list: first page, 3 filter combinations, a deep page, while ingest runs",
        "p95 <= 50 ms server time; deep page / first page <= 1.5; show OFFSET deep / first",
        {
            "params": {
                "sessions": [p["sessions"] for p in points],
                "background_ingest_docs_per_s": ctx.scale.b4_rate,
                "seconds": ctx.scale.b4_seconds,
                "depth_pages": top["lists"]["depth_pages"],
                "filters": top["lists"]["http_filters"],
            },
            "runs": runs,
            "median": {name: v["p50"] for name, v in http.items()},
            "p50": median(v["p50"] for v in all_http),
            "p95": worst_p95,
            "p99": max(v["p99"] for v in all_http if v["p99"] is not None),
            "peak_rss_mb": top["lists"]["peak_rss_mb"],
            "baselines": {
                "offset_first_ms": inproc["offset_first"],
                "offset_deep_ms": inproc["offset_deep"],
                "keyset_equals_offset": top["lists"]["keyset_equals_offset"],
            },
            "ratios": {
                "deep_over_first_http_p95": deep_first,
                "deep_over_first_inproc_p50": keyset_inproc_ratio,
                "offset_deep_over_first": offset_ratio,
                "offset_deep_over_keyset_deep": offset_vs_keyset,
                "scaling": scaling,
            },
            "errors": top["http"]["errors"],
            "target_met": {
                "p95<=50ms (every query, HTTP)": worst_p95 <= 50,
                "deep/first<=1.5": deep_first is not None and deep_first <= 1.5,
                "at 1M sessions": top["sessions"] >= 1_000_000,
            },
            "headline": {
                "sessions": top["sessions"],
                "worst_p95_ms": worst_p95,
                "deep_over_first": deep_first,
                "offset_deep_over_first": offset_ratio,
            },
        },
    )


def write_b6(ctx: Context, points: list[dict[str, Any]]) -> None:
    top = points[-1]["rollups"]
    full = median(top["full_rebuild_s"])
    inc = median(top["incremental_s"])
    chart_p95 = top["charts"]["30d"]["overview_all_charts_ms"]["p95"]
    chart_rollup = top["charts"]["30d"]["sessions_by_status_rollup_ms"]["p95"]
    one_chart = top["charts"]["30d"]["sessions_by_status_index_ms"]["p95"]
    rel = ratio(full, inc)
    scaling = None
    if len(points) > 1:
        a, b = points[0]["rollups"], points[-1]["rollups"]
        scaling = {
            "from_sessions": a["sessions"],
            "to_sessions": b["sessions"],
            "full_rebuild": ratio(median(b["full_rebuild_s"]), median(a["full_rebuild_s"])),
            "incremental": ratio(median(b["incremental_s"]), median(a["incremental_s"])),
        }
    ctx.record(
        "B6",
        "analytics rollup",
        "full rebuild <= 10 s; incremental after 1,000 changes <= 1 s; chart endpoint <= 50 ms; "
        "full / incremental >= 50",
        {
            "params": {"sessions": [p["sessions"] for p in points], "changes": top["changes"]},
            "runs": [{"sessions": p["sessions"], **p["rollups"]} for p in points],
            "median": {"full_rebuild_s": full, "incremental_s": inc},
            "p50": top["charts"]["30d"]["overview_all_charts_ms"]["p50"],
            "p95": chart_p95,
            "p99": top["charts"]["30d"]["overview_all_charts_ms"]["p99"],
            "peak_rss_mb": top["peak_rss_mb"],
            "baselines": {"full_scan_rebuild_s": full},
            "ratios": {
                "full_over_incremental": rel,
                "scaling": scaling,
                "chart_index_over_rollup_30d": ratio(one_chart, chart_rollup),
            },
            "target_met": {
                "full<=10s": full is not None and full <= 10,
                "incremental<=1s": inc is not None and inc <= 1,
                # One chart as the page reads it: RollupBucket for whole hours, the index for
                # the live edge. The whole overview (nine figures) is reported beside it.
                "chart (one, 30d, rollups + live edge)<=50ms": chart_rollup is not None
                and chart_rollup <= 50,
                "full/incremental>=50": rel is not None and rel >= 50,
                "at 1M sessions": top["sessions"] >= 1_000_000,
            },
            "headline": {
                "sessions": top["sessions"],
                "full_s": full,
                "incremental_s": inc,
                "ratio": rel,
                "overview_30d_p95_ms": chart_p95,
                "rollup_chart_p95_ms": chart_rollup,
            },
        },
    )


# --- B5 ----------------------------------------------------------------------------------------


def bench_b5(ctx: Context) -> None:
    s = ctx.scale
    data_dir = ctx.fresh_dir("b5")
    big = datagen.chat_document(messages=s.b5_messages, session_id="conv_bench10k0000000000000001")
    small = datagen.chat_document(messages=s.b5_small, session_id="conv_bench1000000000000000001")
    ids: dict[str, str] = {}
    ingest_ms: dict[str, float] = {}
    results: dict[str, Any] = {}
    with Server(data_dir, env=ctx.db_env(data_dir)) as server:
        for label, body in (("large", big), ("small", small)):
            t0 = time.perf_counter()
            status, answer = request_once(
                server.port, "POST", "/api/v1/sessions", body, ctx.json_headers, timeout=120
            )
            ingest_ms[label] = round((time.perf_counter() - t0) * 1000, 1)
            if status not in (200, 201):
                raise RuntimeError(f"B5 ingest failed: {status} {answer[:300]!r}")
            ids[label] = json.loads(answer)["id"]
        for label, session_id in ids.items():
            api = f"/api/v1/sessions/{session_id}/timeline?limit=200"
            page = f"/sessions/{session_id}/"
            timings: dict[str, list[float]] = {"api_first": [], "page_first": []}
            cold: dict[str, float] = {}
            for name, path, headers in (
                ("api_first", api, ctx.json_headers),
                ("page_first", page, ctx.cookie_headers),
            ):
                for i in range(s.b5_requests + 2):
                    t0 = time.perf_counter()
                    status, content = request_once(
                        server.port, "GET", path, headers=headers, timeout=120
                    )
                    elapsed = time.perf_counter() - t0
                    if status != 200:
                        raise RuntimeError(f"B5 {path} answered {status}")
                    if i < 2:
                        cold[f"{name}_request{i + 1}_ms"] = round(elapsed * 1000, 1)
                    else:
                        timings[name].append(elapsed)
                    if name == "page_first":
                        results.setdefault(label, {})["page_rows"] = content.count(b'<li class="ev')
                        results[label]["page_bytes"] = len(content)
            results.setdefault(label, {}).update(
                {"warm_ms": {k: summary_ms(v) for k, v in timings.items()}, "first_requests": cold}
            )
        browser = browser_timing(ctx, server.port, ids["large"])
        memory = server.memory()
    inproc = ctx.task("timeline", data_dir, {"sessions": ids, "repeat": 2 if ctx.smoke else 3})
    large, smallr = results["large"], results["small"]
    page_p95 = large["warm_ms"]["page_first"]["p95"]
    api_p95 = large["warm_ms"]["api_first"]["p95"]
    cold_large = inproc["large"]["cold_parse_ms"]["p50"] + inproc["large"]["render_200_ms"]["p50"]
    cold_small = inproc["small"]["cold_parse_ms"]["p50"] + inproc["small"]["render_200_ms"]["p50"]
    r_warm = ratio(page_p95, smallr["warm_ms"]["page_first"]["p95"])
    r_cold = ratio(cold_large, cold_small)
    whole_vs_paged = ratio(
        inproc["large"]["render_whole_ms"]["p50"], inproc["large"]["render_200_ms"]["p50"]
    )
    interactive = browser.get("dom_content_loaded_ms", {}).get("p50") if browser else None
    rows = browser.get("timeline_rows") if browser else None
    ctx.record(
        "B5",
        f"timeline of a {s.b5_messages:,}-message session",
        "first page (header + 200 events) p95 <= 150 ms; interactive in headless Chromium <= 1 s "
        "with at most ~2,000 DOM rows; 10k / 100-message first response <= 2",
        {
            "params": {
                "messages": s.b5_messages,
                "small_messages": s.b5_small,
                "large_bytes": len(big),
                "small_bytes": len(small),
                "requests": s.b5_requests,
            },
            "ingest_ms": ingest_ms,
            "runs": results,
            "median": {
                "page_first_warm_ms": large["warm_ms"]["page_first"]["p50"],
                "api_first_warm_ms": large["warm_ms"]["api_first"]["p50"],
            },
            "p50": large["warm_ms"]["page_first"]["p50"],
            "p95": page_p95,
            "p99": large["warm_ms"]["page_first"]["p99"],
            "api_p95": api_p95,
            "inproc": inproc,
            "browser": browser,
            "peak_rss_mb": memory["max_worker_peak_rss_mb"],
            "server_memory": memory,
            "baselines": {
                "whole_session_render_ms": inproc["large"]["render_whole_ms"],
                "small_session_page_p95_ms": smallr["warm_ms"]["page_first"]["p95"],
            },
            "ratios": {
                "large_over_small_warm_p95": r_warm,
                "large_over_small_cold": r_cold,
                "whole_render_over_paged_render": whole_vs_paged,
            },
            "target_met": {
                "first page p95<=150ms (warm)": page_p95 is not None and page_p95 <= 150,
                "first page cold (parse+render)<=150ms": cold_large <= 150,
                "interactive<=1s": interactive is not None and interactive <= 1000,
                "DOM rows<=2000": rows is not None and rows <= 2000,
                "10k/100 warm<=2": r_warm is not None and r_warm <= 2,
                "10k/100 cold<=2": r_cold is not None and r_cold <= 2,
            },
            "headline": {
                "page_p95_ms": page_p95,
                "cold_ms": round(cold_large, 1),
                "interactive_ms": interactive,
                "rows": rows,
                "ratio_warm": r_warm,
                "ratio_cold": r_cold,
            },
        },
    )


def browser_timing(ctx: Context, port: int, session_id: str) -> dict[str, Any] | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"skipped": "playwright is not installed"}
    # Imported here: the browser timing is the only part of the bench that needs the test tools.
    from tests.support.chromium import CHROMIUM, launch

    if not CHROMIUM.exists():
        return {"skipped": f"no {CHROMIUM}"}
    url = f"http://127.0.0.1:{port}/sessions/{session_id}/"
    dcl, load, wall = [], [], []
    rows = nodes = None
    with sync_playwright() as p:
        browser = launch(p)
        try:
            context = browser.new_context()
            context.add_cookies(
                [
                    {
                        "name": "sessionid",
                        "value": ctx.secrets["session_cookie"],
                        "url": f"http://127.0.0.1:{port}",
                    }
                ]
            )
            for _ in range(1 if ctx.smoke else 5):
                page = context.new_page()
                t0 = time.perf_counter()
                page.goto(url, wait_until="load", timeout=60_000)
                page.wait_for_selector("#timeline li.ev", timeout=60_000)
                wall.append(time.perf_counter() - t0)
                nav = page.evaluate(
                    "() => { const n = performance.getEntriesByType('navigation')[0];"
                    " return [n.domContentLoadedEventEnd, n.loadEventEnd]; }"
                )
                dcl.append(nav[0] / 1000)
                load.append(nav[1] / 1000)
                rows = page.evaluate("() => document.querySelectorAll('#timeline li.ev').length")
                nodes = page.evaluate("() => document.getElementsByTagName('*').length")
                page.close()
        finally:
            browser.close()
    return {
        "dom_content_loaded_ms": summary_ms(dcl),
        "load_event_ms": summary_ms(load),
        "wall_until_rows_visible_ms": summary_ms(wall),
        "timeline_rows": rows,
        "dom_elements": nodes,
    }


# --- B7 ----------------------------------------------------------------------------------------


def bench_b7(ctx: Context) -> None:
    s = ctx.scale
    data_dir = ctx.fresh_dir("b7")
    seeded = seed_templates(ctx, data_dir, min(s.templates, 100))
    now = datetime.now(UTC)
    ctx.task(
        "bulk",
        data_dir,
        {
            "count": s.b7_expired,
            "start_index": seeded["created"],
            "now": now.isoformat(),
            "days": s.days,
            "expire": True,
            "with_bodies": True,
        },
    )
    keep = s.b7_expired // 5
    ctx.task(
        "bulk",
        data_dir,
        {
            "count": keep,
            "start_index": seeded["created"] + s.b7_expired,
            "now": now.isoformat(),
            "days": s.days,
            "expire": False,
            "with_bodies": True,
        },
    )
    with Server(data_dir, env=ctx.db_env(data_dir)) as server:
        run_load(
            server.port, ctx.ingest_factory(ctx.pool), concurrency=2, max_seconds=1, max_requests=20
        )
        idle_runs = []
        idle_lat: list[float] = []
        for _ in range(1 if ctx.smoke else 3):
            idle = run_load(
                server.port,
                ctx.ingest_factory(ctx.pool),
                concurrency=2,
                max_seconds=s.b7_idle_seconds,
                max_requests=10**6,
                rate=s.b7_rate,
            )
            idle_lat.extend(idle.latencies)
            idle_runs.append(load_summary(idle, label="paced ingest, idle"))
        out = ctx.work / "cleanup.json"
        env = {**os.environ, **production_like_env(), "DATA_DIR": str(data_dir)}
        env.update(ctx.db_env(data_dir))
        env.pop("DJANGO_SETTINGS_MODULE", None)
        stop = threading.Event()
        holder: dict[str, Any] = {}

        def background() -> None:
            holder["during"] = run_load(
                server.port,
                ctx.ingest_factory(ctx.pool),
                concurrency=2,
                max_seconds=900,
                max_requests=10**6,
                rate=s.b7_rate,
                stop_event=stop,
            )

        thread = threading.Thread(target=background, daemon=True)
        thread.start()
        time.sleep(0.5)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                PYTHON,
                "-m",
                "bench.tasks",
                "cleanup",
                "--data-dir",
                str(data_dir),
                "--params",
                "{}",
                "--out",
                str(out),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        wall = time.perf_counter() - t0
        stop.set()
        thread.join(60)
        if proc.returncode != 0:
            raise RuntimeError(f"cleanup failed:\n{proc.stderr[-3000:]}")
        cleanup = json.loads(out.read_text())
    during = holder["during"]
    idle_p95 = summary_ms(idle_lat)["p95"]
    during_lat = summary_ms(during.latencies)
    rel = ratio(during_lat["p95"], idle_p95)
    max_hold = cleanup["lock_hold_ms"]["max"]
    expired = cleanup["expired"]["expired"]
    ctx.record(
        "B7",
        f"expiry + cleanup of {s.b7_expired:,} expired sessions",
        "<= 60 s; ingest p95 during <= 2x idle; no lock held > 200 ms",
        {
            "params": {
                "expired_sessions": s.b7_expired,
                "kept_sessions": keep,
                "ingest_rate_docs_per_s": s.b7_rate,
                "expire_batch": 500,
                "purge_batch": 200,
            },
            "runs": {
                "idle": idle_runs,
                "during": load_summary(during, label="paced ingest, during"),
                "cleanup": cleanup,
                "cleanup_wall_s": round(wall, 2),
            },
            "median": {"cleanup_s": cleanup["total_s"]},
            "p50": during_lat["p50"],
            "p95": during_lat["p95"],
            "p99": during_lat["p99"],
            "peak_rss_mb": cleanup["peak_rss_mb"],
            "baselines": {"idle_ingest_p95_ms": idle_p95},
            "ratios": {"p95_during_over_idle": rel},
            "target_met": {
                "cleanup<=60s": cleanup["total_s"] <= 60,
                "p95 during/idle<=2": rel is not None and rel <= 2,
                "no lock>200ms": max_hold is not None and max_hold <= 200,
                # >=: template sessions whose own expiry has passed expire too.
                "all expired and purged": expired >= s.b7_expired
                and cleanup["purged"]["purged"] >= expired,
            },
            "headline": {
                "cleanup_s": cleanup["total_s"],
                "ratio": rel,
                "max_lock_ms": max_hold,
                "expired": expired,
                "purged": cleanup["purged"]["purged"],
            },
        },
    )


# --- B8 ----------------------------------------------------------------------------------------


def bench_b8(ctx: Context) -> None:
    b3 = ctx.results.get("B3", {})
    b7 = ctx.results.get("B7", {})
    points = getattr(ctx, "scale_points", [])
    web = b3.get("peak_rss_mb")
    job_peaks = {}
    if b7:
        job_peaks["expire+purge (B7)"] = b7.get("peak_rss_mb")
    for p in points:
        job_peaks[f"rollup rebuild at {p['sessions']:,}"] = p["rollups"]["peak_rss_mb_after_full"]
    worker = max((v for v in job_peaks.values() if v is not None), default=None)
    flat = None
    if len(points) > 1:
        flat = ratio(
            points[-1]["rollups"]["peak_rss_mb_after_full"],
            points[0]["rollups"]["peak_rss_mb_after_full"],
        )
    ctx.record(
        "B8",
        "memory",
        "web worker <= 300 MB under B3; Celery worker <= 250 MB; rollup memory flat in N "
        "(RSS at 1M / at 100k <= 1.2)",
        {
            "params": {"sessions": [p["sessions"] for p in points]},
            "runs": {"web_worker_peak_under_B3_mb": web, "job_process_peaks_mb": job_peaks},
            "median": {"web_worker_peak_mb": web, "job_peak_mb": worker},
            "p50": None,
            "p95": None,
            "p99": None,
            "peak_rss_mb": max(v for v in (web, worker) if v is not None)
            if (web or worker)
            else None,
            "baselines": {},
            "ratios": {
                "rollup_rss_large_over_small": flat,
                "scale": [p["sessions"] for p in points[:1] + points[-1:]],
            },
            "target_met": {
                "web<=300MB": web is not None and web <= 300,
                "job process<=250MB": worker is not None and worker <= 250,
                "rollup RSS ratio<=1.2": flat is not None and flat <= 1.2,
            },
            "headline": {"web_mb": web, "job_mb": worker, "rollup_ratio": flat},
        },
    )


# --- B9 ----------------------------------------------------------------------------------------


def bench_b9(ctx: Context) -> None:
    """A session that grows: saved whole after every few turns, as agents save it today. Each
    run is a fresh process and a fresh database; the ratios are each run's own."""
    s = ctx.scale
    runs = []
    for _ in range(s.runs):
        runs.append(
            ctx.task(
                "growing_session",
                ctx.fresh_dir("b9"),
                {"messages": s.b9_messages, "every": s.b9_save_every},
            )
        )
    saves = len(runs[0]["saves"])
    latest_bytes = runs[0]["latest_bytes"]
    stored_bytes = round(median(r["stored_bytes"] for r in runs))
    r_stored = ratio(stored_bytes, latest_bytes)
    r_cpu = median(ratio(r["last_save_cpu_ms"], r["first_save_cpu_ms"]) for r in runs)
    total_cpu_ms = median(r["total_save_cpu_ms"] for r in runs)
    reads = {
        version: {
            reader: median(r["reads"][version][reader]["ms"]["p50"] for r in runs)
            for reader in ("store_get", "selectors_get_raw_body")
        }
        for version in runs[0]["reads"]
    }
    byte_for_byte = all(r["byte_for_byte"] for r in runs)
    ctx.record(
        "B9",
        f"a session that grows to {s.b9_messages:,} messages, saved whole every "
        f"{s.b9_save_every} ({saves} saves), SQLite, in-process",
        f"all versions together <= 0.5x the latest raw size; last save CPU <= 3x the first; "
        f"total CPU of the {saves} saves < 1 s",
        {
            "params": {
                "messages": s.b9_messages,
                "save_every": s.b9_save_every,
                "saves": saves,
                "store": "orm",
            },
            "runs": runs,
            "median": {
                "stored_bytes": stored_bytes,
                "first_save_cpu_ms": median(r["first_save_cpu_ms"] for r in runs),
                "last_save_cpu_ms": median(r["last_save_cpu_ms"] for r in runs),
                "total_save_cpu_ms": total_cpu_ms,
                "read_p50_ms": reads,
            },
            "p50": None,
            "p95": None,
            "p99": None,
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "baselines": {
                "latest_raw_bytes": latest_bytes,
                "first_save_cpu_ms": median(r["first_save_cpu_ms"] for r in runs),
            },
            "ratios": {
                "stored_over_latest_raw": r_stored,
                "last_over_first_save_cpu": r_cpu,
            },
            "target_met": {
                "stored/latest<=0.5": r_stored is not None and r_stored <= 0.5,
                "last/first save CPU<=3": r_cpu is not None and r_cpu <= 3,
                f"{saves} saves CPU<1s": total_cpu_ms is not None and total_cpu_ms < 1000,
                "versions read back byte for byte": byte_for_byte,
            },
            "headline": {
                "saves": saves,
                "latest_bytes": latest_bytes,
                "stored_bytes": stored_bytes,
                "ratio_stored": r_stored,
                "ratio_cpu": r_cpu,
                "total_cpu_s": None if total_cpu_ms is None else round(total_cpu_ms / 1000, 3),
                "read_latest_ms": reads[str(saves)]["store_get"],
            },
        },
    )


# --- B10 ---------------------------------------------------------------------------------------

# Rare texts planted into every Nth cloned session (the templates say none of them).
B10_PLANTS = {"quokka ledger mismatch": 25_000, "注文番号の照合に失敗しました": 5_000}
B10_QUERIES = {
    "miss": {"q": "zebra quantum nowhere"},
    "rare_phrase": {"q": '"quokka ledger mismatch"'},
    "common_word": {"q": "order"},
    "cjk_substring": {"q": "照合に失"},
    "phrase_status_since": {"q": '"order number"', "status": ["completed"], "since_days": 7},
}


def bench_b10(ctx: Context) -> None:
    """Full-text search: in-process server time of a page of results with snippets at each
    scale point; over HTTP at a few thousand sessions against a plain first page; and the
    ingest CPU the index adds (the same documents into two fresh databases)."""
    s = ctx.scale
    data_dir = ctx.fresh_dir("b10")
    seeded = seed_templates(ctx, data_dir, s.templates)
    have = seeded["created"]
    now = datetime.now(UTC)
    points = []
    for target in sorted(s.b10_sessions):
        loaded = None
        if target > have:
            loaded = ctx.task(
                "bulk",
                data_dir,
                {
                    "count": target - have,
                    "start_index": have,
                    "now": now.isoformat(),
                    "days": s.days,
                    "with_search": True,
                    "plants": B10_PLANTS,
                },
                timeout=6 * 3600,  # 1M sessions with their search rows: about an hour
            )
            log(f"B10: bulk-loaded {loaded['rows']} in {loaded['total_s']} s")
            have = target
        recall = {
            "planted": {
                text: planted_in(every, s.templates, have) for text, every in B10_PLANTS.items()
            },
            "clones": sorted({have - 1, have // 2 + 7, have // 10 + 3}),
        }
        measured = ctx.task(
            "search",
            data_dir,
            {"queries": B10_QUERIES, "repeat": s.list_repeat, "recall": recall},
        )
        measured["bulk_load"] = loaded
        points.append(measured)
        log(f"B10: {measured['sessions']:,} sessions measured; recall {measured['recall']}")

    http_dir = ctx.fresh_dir("b10-http")
    seed_templates(ctx, http_dir, s.templates)
    ctx.task(
        "bulk",
        http_dir,
        {
            "count": max(0, s.b10_http_sessions - s.templates),
            "start_index": s.templates,
            "now": now.isoformat(),
            "days": s.days,
            "with_search": True,
            "plants": B10_PLANTS,
        },
    )
    http = b10_http(ctx, http_dir)

    items = []
    for i in range(s.b10_ingest_documents):
        body, query = ctx.pool[i % len(ctx.pool)].unique(next(ctx.unique))
        items.append((body, query.split("=", 1)[1] if query else None))
    pickled = ctx.work / "b10-ingest.pkl"
    pickled.write_bytes(pickle.dumps(items))
    cpu_runs = []
    for _ in range(max(1, min(s.runs, 3))):
        cpu_runs.append(
            {
                flag: ctx.task(
                    "ingest_cpu",
                    ctx.fresh_dir(f"b10-cpu-{flag}"),
                    {"pickle": str(pickled), "search": flag == "with"},
                )
                for flag in ("without", "with")
            }
        )
    cpu_with = median(r["with"]["cpu_s"] for r in cpu_runs)
    cpu_without = median(r["without"]["cpu_s"] for r in cpu_runs)
    cpu_added = ratio(cpu_with - cpu_without, cpu_without)
    # The index_search job's CPU for the same rows (on SQLite; nothing on PostgreSQL), apart:
    # what indexing costs in all, wherever it runs.
    job_cpu = median(r["with"].get("index_job_cpu_s", 0.0) for r in cpu_runs)
    cpu_added_with_job = ratio(cpu_with + job_cpu - cpu_without, cpu_without)
    # On PostgreSQL, with its server process's CPU for the same connection (the indexes are
    # computed there), both sides.
    cpu_added_with_server = None
    if all(r["with"].get("server_cpu_s") is not None for r in cpu_runs):
        both_with = median(r["with"]["cpu_s"] + r["with"]["server_cpu_s"] for r in cpu_runs)
        both_without = median(
            r["without"]["cpu_s"] + r["without"]["server_cpu_s"] for r in cpu_runs
        )
        cpu_added_with_server = ratio(both_with - both_without, both_without)
    # A session that grows (saved whole after every turn, as B9): appended saves are merged and
    # index only their new events.
    growing = {"messages": s.b10_growing_messages, "every": s.b10_growing_every}
    growing_runs = []
    for _ in range(max(1, min(s.runs, 3))):
        growing_runs.append(
            {
                flag: ctx.task(
                    "ingest_cpu",
                    ctx.fresh_dir(f"b10-grow-{flag}"),
                    {"growing": growing, "search": flag == "with"},
                )
                for flag in ("without", "with")
            }
        )
    grow_with = median(r["with"]["cpu_s"] for r in growing_runs)
    grow_without = median(r["without"]["cpu_s"] for r in growing_runs)
    grow_added = ratio(grow_with - grow_without, grow_without)
    grow_job = median(r["with"].get("index_job_cpu_s", 0.0) for r in growing_runs)
    grow_added_with_job = ratio(grow_with + grow_job - grow_without, grow_without)

    top = points[-1]
    queries = {k: v for k, v in top["inproc"].items() if k != "plain_first_page"}
    worst_p95 = max(v["p95"] for v in queries.values())
    http_ratios = {
        name: ratio(http[name]["p95"], http["plain_first_page"]["p95"]) for name in ("miss", "hit")
    }
    ctx.record(
        "B10",
        f"search at {top['sessions']:,} sessions ("
        + ("SQLite FTS5 trigram" if top["vendor"] == "sqlite" else "PostgreSQL pg_trgm")
        + f"), in-process; over HTTP at "
        f"{s.b10_http_sessions:,}",
        "every query p95 <= 100 ms server time; search p95 / plain first page p95 <= 2 over HTTP "
        "(miss and hit); the index adds <= 25 % ingest CPU",
        {
            "params": {
                "sessions": [p["sessions"] for p in points],
                "queries": B10_QUERIES,
                "plants": B10_PLANTS,
                "http_sessions": s.b10_http_sessions,
                "ingest_documents": s.b10_ingest_documents,
                "growing_session": growing,
            },
            "runs": {
                "points": points,
                "http": http,
                "ingest_cpu": cpu_runs,
                "growing_ingest_cpu": growing_runs,
            },
            "median": {name: v["p50"] for name, v in queries.items()},
            "p50": {name: v["p50"] for name, v in queries.items()},
            "p95": {name: v["p95"] for name, v in queries.items()},
            "p99": None,
            "peak_rss_mb": max(p["peak_rss_mb"] for p in points),
            "baselines": {
                "plain_first_page_p95_ms": top["inproc"]["plain_first_page"]["p95"],
                "ingest_cpu_without_search_s": cpu_without,
                "growing_ingest_cpu_without_search_s": grow_without,
            },
            "ratios": {
                **{f"http_{k}_over_plain_p95": v for k, v in http_ratios.items()},
                "ingest_cpu_added": cpu_added,
                "ingest_cpu_added_with_job": cpu_added_with_job,
                "ingest_cpu_added_with_server": cpu_added_with_server,
                "growing_ingest_cpu_added": grow_added,
                "growing_ingest_cpu_added_with_job": grow_added_with_job,
            },
            "target_met": {
                "every query p95<=100ms": worst_p95 <= 100,
                "planted texts and clone ids all found": all(
                    p["recall"]["complete"] for p in points
                ),
                "http miss/plain p95<=2": http_ratios["miss"] is not None
                and http_ratios["miss"] <= 2,
                "http hit/plain p95<=2": http_ratios["hit"] is not None and http_ratios["hit"] <= 2,
                "ingest CPU added<=25%": cpu_added is not None and cpu_added <= 0.25,
                "ingest CPU added with the index job<=25%": cpu_added_with_job is not None
                and cpu_added_with_job <= 0.25,
            },
            "headline": {
                "sessions": top["sessions"],
                "worst_p95_ms": worst_p95,
                "index_mb": round(sum(top["index_bytes"].values()) / 1e6, 1),
                "http_ratios": http_ratios,
                "ingest_cpu_added": cpu_added,
                "ingest_cpu_added_with_job": cpu_added_with_job,
                "ingest_cpu_added_with_server": cpu_added_with_server,
                "growing_ingest_cpu_added": grow_added,
                "growing_ingest_cpu_added_with_job": grow_added_with_job,
            },
        },
    )


# --- B11 ---------------------------------------------------------------------------------------

OTLP_BATCH = 512


def bench_b11(ctx: Context) -> None:
    """OTLP/protobuf exports of 512 spans, 4 exporters at once, against the same sessions sent
    as whole documents (one POST /api/v1/sessions each), each on a fresh database. Every run
    sends new conversations (an id prefix of its own), so nothing is a resent duplicate."""
    from bench import otlp

    s = ctx.scale
    headers = {**ctx.json_headers, "Content-Type": "application/x-protobuf"}
    runs = []
    latencies: list[float] = []
    for run in range(s.runs):
        spans = otlp.span_stream(
            prefix=f"b11-{run}", sessions=s.b11_sessions, turns=s.b11_turns, group=s.b11_group
        )
        bodies = otlp.export_bodies(spans, batch=OTLP_BATCH)
        documents = otlp.session_documents(spans)
        data_dir = ctx.fresh_dir(f"b11-otlp-{run}")
        warm = otlp.export_bodies(
            otlp.span_stream(prefix=f"b11-warm-{run}", sessions=8, turns=1, group=8), batch=32
        )
        with Server(data_dir) as server:
            for body in warm * 2:  # both web workers import and connect before the clock
                request_once(server.port, "POST", "/v1/traces", body, headers)
            g = run_load(
                server.port,
                lambda i, bodies=bodies: ("POST", "/v1/traces", bodies[i], headers),
                concurrency=s.concurrency,
                max_seconds=600,
                max_requests=len(bodies),
            )
            memory = server.memory()
        # What the fold_otel_spans job then does with them, in one worker process.
        fold = ctx.task("otlp_fold", data_dir)
        stored = fold.pop("stored")
        latencies.extend(g.latencies)
        doc_dir = ctx.fresh_dir(f"b11-docs-{run}")
        with Server(doc_dir) as server:
            for body in otlp.session_documents(
                otlp.span_stream(prefix=f"b11-warm-{run}", sessions=4, turns=1, group=4)
            ):
                request_once(
                    server.port, "POST", "/api/v1/sessions?format=otel", body, ctx.json_headers
                )
            d = run_load(
                server.port,
                lambda i, documents=documents: (
                    "POST",
                    "/api/v1/sessions?format=otel",
                    documents[i],
                    ctx.json_headers,
                ),
                concurrency=s.concurrency,
                max_seconds=600,
                max_requests=len(documents),
            )
        runs.append(
            {
                "otlp": load_summary(g, label="POST /v1/traces (512 spans)"),
                "documents": load_summary(d, label="POST /api/v1/sessions (whole session)"),
                "spans": len(spans),
                "sessions": len(documents),
                "stored": stored,
                "otlp_spans_per_s": round(len(spans) / g.seconds, 1) if g.seconds else None,
                "otlp_sessions_per_s": round(len(documents) / g.seconds, 1) if g.seconds else None,
                "document_sessions_per_s": round(d.rate, 1),
                "document_spans_per_s": round(len(spans) / d.seconds, 1) if d.seconds else None,
                "web_peak_rss_mb": memory["max_worker_peak_rss_mb"],
                "fold": fold,
            }
        )
    spans_s = median(r["otlp_spans_per_s"] for r in runs)
    sessions_s = median(r["otlp_sessions_per_s"] for r in runs)
    doc_sessions_s = median(r["document_sessions_per_s"] for r in runs)
    doc_spans_s = median(r["document_spans_per_s"] for r in runs)
    fold_spans_s = median(r["fold"]["spans_per_s"] for r in runs)
    fold_sessions_s = median(r["fold"]["sessions_per_s"] for r in runs)
    lat = summary_ms(latencies)
    errors = sum(r["otlp"]["errors"] + r["documents"]["errors"] for r in runs)
    # Each run's server also holds the 8 one-turn warm-up sessions.
    warm = {"sessions": 8, "spans": 8 * otlp.SPANS_PER_TURN}
    complete = all(
        r["stored"]
        == {"sessions": r["sessions"] + warm["sessions"], "spans": r["spans"] + warm["spans"]}
        for r in runs
    )
    rel = ratio(spans_s, doc_spans_s)
    ctx.record(
        "B11",
        f"OpenTelemetry in: OTLP/protobuf exports of {OTLP_BATCH} spans, {s.concurrency} "
        "exporters, SQLite",
        ">= 5,000 spans/s acknowledged (durably stored); every span in its session after the fold",
        {
            "params": {
                "batch_spans": OTLP_BATCH,
                "sessions": s.b11_sessions,
                "turns_per_session": s.b11_turns,
                "spans_per_turn": otlp.SPANS_PER_TURN,
                "sessions_at_once": s.b11_group,
                "concurrency": s.concurrency,
            },
            "runs": runs,
            "median": {
                "otlp_spans_per_s": spans_s,
                "otlp_sessions_per_s": sessions_s,
                "document_sessions_per_s": doc_sessions_s,
                "document_spans_per_s": doc_spans_s,
                "fold_spans_per_s": fold_spans_s,
                "fold_sessions_per_s": fold_sessions_s,
            },
            "p50": lat["p50"],
            "p95": lat["p95"],
            "p99": lat["p99"],
            "latency_ms_per_export": lat,
            "errors": errors,
            "peak_rss_mb": max(r["web_peak_rss_mb"] for r in runs),
            "baselines": {"document_spans_per_s": doc_spans_s},
            "ratios": {"otlp_over_documents": rel},
            "target_met": {
                "spans_per_s>=5000": spans_s is not None and spans_s >= 5000,
                "every span stored": complete,
                "0 errors": errors == 0,
            },
            "headline": {
                "spans_per_s": spans_s,
                "sessions_per_s": sessions_s,
                "document_sessions_per_s": doc_sessions_s,
                "fold_spans_per_s": fold_spans_s,
                "fold_sessions_per_s": fold_sessions_s,
                "ratio_documents": rel,
            },
        },
    )


def planted_in(every: int, first: int, end: int) -> int:
    """How many clones numbered ``first`` to ``end - 1`` a text planted in every ``every``th
    one went into (datagen: the numbers ``n`` with ``n % every == every // 2``)."""
    return sum(1 for n in range(first, end) if n % every == every // 2)


def b10_http(ctx: Context, data_dir: Path) -> dict[str, Any]:
    """GET /api/v1/sessions (limit 50) one request at a time: the plain first page, a miss and
    a hit (a common word), interleaved so each sees the same machine."""
    import http.client
    from urllib.parse import urlencode

    paths = {
        "plain_first_page": "/api/v1/sessions?limit=50",
        "miss": "/api/v1/sessions?" + urlencode({"q": B10_QUERIES["miss"]["q"], "limit": 50}),
        "hit": "/api/v1/sessions?" + urlencode({"q": B10_QUERIES["common_word"]["q"], "limit": 50}),
    }
    latencies: dict[str, list[float]] = {name: [] for name in paths}
    errors = 0
    with Server(data_dir, env=ctx.db_env(data_dir)) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        for _ in range(ctx.scale.b10_http_requests):
            for name, path in paths.items():
                t0 = time.perf_counter()
                conn.request("GET", path, headers=ctx.json_headers)
                response = conn.getresponse()
                response.read()
                latencies[name].append(time.perf_counter() - t0)
                errors += response.status != 200
        conn.close()
    return {**{name: summary_ms(values) for name, values in latencies.items()}, "errors": errors}


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bin/bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny and fast; no time asserted")
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="the database every benchmark runs on (postgres: BENCH_POSTGRES_URL, default "
        "postgresql://postgres@127.0.0.1:5432; a database per benchmark, dropped at the end)",
    )
    parser.add_argument("--only", default="", help="comma-separated subset, e.g. B1,B5")
    parser.add_argument("--runs", type=int, help="runs per benchmark (default 5; smoke 2)")
    parser.add_argument("--sessions", help="B4/B6 scale points, e.g. 100000,1000000")
    parser.add_argument("--b7-expired", type=int, help="B7: expired sessions (default 100000)")
    parser.add_argument("--b5-messages", type=int, help="B5: messages (default 10000)")
    parser.add_argument("--b10-sessions", help="B10 scale points, e.g. 100000,1000000")
    parser.add_argument("--out", help="result directory (default bench/results)")
    parser.add_argument("--workdir", help="scratch directory (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--docs-from",
        metavar="RUN_ID",
        help="only regenerate docs/BENCHMARKS.md and the charts from an earlier run's files",
    )
    parser.add_argument(
        "--compare",
        metavar="RUN_A,RUN_B",
        help="print B4, B6 and B7 of two runs side by side (e.g. SQLite and PostgreSQL)",
    )
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="regenerate docs/BENCHMARKS.md and docs/bench/*.svg from this run",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The benchmarks define their own databases (a temporary SQLite per benchmark; PG makes a
    # database of its own): settings inherited from a test run or a shell must not leak in.
    for name in ("DATABASE_URL", "SESSION_STORE", "REDIS_URL", "MONGODB_URL", "DATA_DIR"):
        os.environ.pop(name, None)
    if args.compare:
        from bench.report import compare_databases

        first, second = args.compare.split(",")
        print(
            compare_databases(
                Path(args.out) if args.out else ROOT / "bench" / "results", first, second
            )
        )
        return 0
    if args.docs_from:
        from bench.report import write_docs

        path = write_docs(
            Path(args.out) if args.out else ROOT / "bench" / "results", args.docs_from
        )
        log(f"wrote {path}")
        return 0
    scale = Scale(**asdict(SMOKE)) if args.smoke else Scale()
    if args.runs:
        scale.runs = args.runs
    if args.sessions:
        scale.sessions = tuple(int(x) for x in args.sessions.split(","))
    if args.b7_expired:
        scale.b7_expired = args.b7_expired
    if args.b5_messages:
        scale.b5_messages = args.b5_messages
    if args.b10_sessions:
        scale.b10_sessions = tuple(int(x) for x in args.b10_sessions.split(","))
    only = {x.strip().upper() for x in args.only.split(",") if x.strip()} or set(ALL)
    ctx = Context(args, scale)
    started = time.perf_counter()
    failures: dict[str, str] = {}
    try:
        ctx.prepare()
        steps = [
            ("B1", bench_b1),
            ("B2", bench_b2),
            ("B3", bench_b3),
            ("PG", bench_pg),
            ("B5", bench_b5),
            ("B7", bench_b7),
            ("B9", bench_b9),
            ("B10", bench_b10),
            ("B11", bench_b11),
            ("B12", bench_b12),
        ]
        for key, fn in steps:
            if key == "PG" and ctx.database == "postgres":
                continue  # B1 and B2 themselves run on PostgreSQL then
            if key in only:
                log(f"{key} ...")
                run_step(key, fn, ctx, failures)
        if only & {"B4", "B6", "B8"}:
            log("B4/B6 (scale points) ...")
            run_step("B4/B6", bench_scale, ctx, failures)
        if "B8" in only:
            run_step("B8", bench_b8, ctx, failures)
    finally:
        summary = {
            "run_id": ctx.run_id,
            "smoke": ctx.smoke,
            "scale": asdict(scale),
            "machine": ctx.machine,
            "database": ctx.database,
            "git": ctx.git,
            "finished_at": now_iso(),
            "duration_s": round(time.perf_counter() - started, 1),
            "failures": failures,
            "headlines": {k: v.get("headline") for k, v in ctx.results.items()},
            "target_met": {k: v.get("target_met") for k, v in ctx.results.items()},
            "files": sorted(f"{ctx.run_id}.{k}.json" for k in ctx.results),
        }
        write_json(ctx.out / f"{ctx.run_id}.summary.json", summary)
        if not args.keep:
            shutil.rmtree(ctx.work, ignore_errors=True)
            ctx.pg_drop_all()
    if args.write_docs:
        from bench.report import write_docs

        write_docs(ctx.out, ctx.run_id)
    log(f"done in {time.perf_counter() - started:.0f} s; results in {ctx.out}/{ctx.run_id}.*")
    return 1 if failures else 0


def run_step(key: str, fn, ctx: Context, failures: dict[str, str]) -> None:
    import traceback

    try:
        fn(ctx)
    except Exception as exc:  # a failed benchmark is reported, the others still run
        failures[key] = f"{type(exc).__name__}: {exc}"
        log(f"{key} FAILED: {exc}")
        traceback.print_exc()


_ = timedelta  # re-exported for tasks that compute windows
