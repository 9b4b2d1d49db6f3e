"""B12: alert latency, from the commit of a session's aborting save to its webhook arriving.

gunicorn and a Celery worker as bin/run starts them (``--concurrency=2``), once on the embedded
filesystem broker and once on a private redis-server (a free port; the machine's shared Redis is
never touched), a rule on ``session_ended``/``aborted`` pointing at a local HTTP receiver in
this process, then N aborting saves one after another. The latency of one is the time from the
API's answer (the save has committed when it answers) to the webhook's arrival.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.common import ROOT, median, percentile
from bench.server import HOST, Server, free_port, production_like_env, request_once

TARGET_S = 5.0


class Receiver:
    """Records when each webhook arrived, by the session's external id."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.signed = 0
        self._ready = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrived = time.perf_counter()
                payload = json.loads(body)
                with receiver._ready:
                    receiver.arrivals[payload["session"]["external_id"]] = arrived
                    receiver.signed += self.headers.get("X-Observatory-Signature", "").startswith(
                        "sha256="
                    )
                    receiver._ready.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}/hook"

    def wait(self, external_id: str, timeout: float) -> float | None:
        with self._ready:
            self._ready.wait_for(lambda: external_id in self.arrivals, timeout=timeout)
            return self.arrivals.get(external_id)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def aborted_document(session_id: str) -> bytes:
    stamp = "2026-03-02T10:00:00.000Z"
    messages = [
        {"type": "human", "content": "Book Lisbon", "id": f"Step|{stamp}|0000000001"},
        {"type": "ai", "content": "Giving up.", "id": f"Step|{stamp}|0000000002"},
    ]
    return json.dumps(
        {
            "id": session_id,
            "version": 1.5,
            "runStatus": "aborted",
            "createdOn": stamp,
            "saveOn": stamp,
            "flow": {
                "name": "BenchFlow",
                "model": {"provider": "openai", "name": "gpt-4o-mini"},
                "memory": {"Step": {"messages": messages}},
                "steps": [{"name": "Step", "state": {}}],
                "currentStep": "Step",
            },
            "log": [],
            "error": [],
            "warn": [],
            "debug": [],
            "verbose": [],
        }
    ).encode()


def _start_redis(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly",
         "no", "--dir", str(work)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            import socket

            with socket.create_connection((HOST, port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://{HOST}:{port}/0"
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("the private redis-server did not start")


def _start_worker(data_dir: Path, env_extra: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, **production_like_env(), "DATA_DIR": str(data_dir), **env_extra}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log_file = open(data_dir / "worker.log", "ab")  # noqa: SIM115 - the worker's stdout
    return subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "celery"), "-A", "workers.celery:app", "worker",
         "--loglevel=warning", "--concurrency=2", "--hostname", f"bench-{uuid.uuid4().hex[:6]}@%h"],
        cwd=ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)


def one_backend(ctx: Any, backend: str, saves: int, receiver: Receiver) -> dict[str, Any]:
    data_dir = ctx.fresh_dir(f"b12-{backend}")
    redis = None
    env: dict[str, str] = {"JOB_SCHEDULE_EVALUATE_ALERTS": "off"}  # measure the commit path
    if backend == "redis":
        redis, url = _start_redis(data_dir)
        env["REDIS_URL"] = url
    worker = None
    try:
        with Server(data_dir, env=env) as server:
            worker = _start_worker(data_dir, env)
            headers = ctx.json_headers
            rule = {
                "name": "bench aborted",
                "event": "session_ended",
                "params": {"status": ["aborted"]},
                "webhook_url": receiver.url,
            }
            status, body = request_once(
                server.port, "POST", "/api/v1/alerts", json.dumps(rule).encode(), headers
            )
            if status != 201:
                raise RuntimeError(f"creating the rule answered {status}: {body[:300]!r}")
            # The first save also waits for the worker to come up: not measured.
            warm = f"b12-warm-{uuid.uuid4().hex}"
            request_once(server.port, "POST", "/api/v1/sessions", aborted_document(warm), headers)
            if receiver.wait(warm, timeout=120) is None:
                raise RuntimeError(f"the worker never delivered; see {data_dir}/worker.log")
            latencies = []
            for _ in range(saves):
                external_id = f"b12-{uuid.uuid4().hex}"
                status, body = request_once(
                    server.port, "POST", "/api/v1/sessions", aborted_document(external_id),
                    headers,
                )  # fmt: skip
                committed = time.perf_counter()
                if status != 201:
                    raise RuntimeError(f"ingest answered {status}: {body[:300]!r}")
                arrived = receiver.wait(external_id, timeout=60)
                latencies.append(None if arrived is None else arrived - committed)
    finally:
        if worker is not None:
            _stop(worker)
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)
    delivered = [s for s in latencies if s is not None]
    return {
        "saves": saves,
        "delivered": len(delivered),
        "latency_s": [None if s is None else round(s, 4) for s in latencies],
        "median_s": median(delivered),
        "p95_s": percentile(delivered, 95),
        "max_s": max(delivered) if delivered else None,
    }


def bench_b12(ctx: Any) -> None:
    saves = 3 if ctx.smoke else 20
    backends = ["embedded"] + (["redis"] if shutil.which("redis-server") else [])
    receiver = Receiver()
    try:
        points = {b: one_backend(ctx, b, saves, receiver) for b in backends}
    finally:
        receiver.close()
    medians = {b: p["median_s"] for b, p in points.items()}
    ctx.record(
        "B12",
        f"alert latency: an aborting save's commit to its webhook, {saves} saves each, "
        f"{' and '.join(backends)}",
        f"median <= {TARGET_S:g} s on the embedded defaults and with Redis",
        {
            "params": {"saves": saves, "backends": backends, "worker_concurrency": 2},
            "runs": points,
            "median": medians,
            "p50": medians,
            "p95": {b: p["p95_s"] for b, p in points.items()},
            "p99": None,
            "peak_rss_mb": None,
            "baselines": {},
            "ratios": {},
            "target_met": {
                f"{b} median<={TARGET_S:g}s": p["median_s"] is not None
                and p["median_s"] <= TARGET_S
                and p["delivered"] == p["saves"]
                for b, p in points.items()
            },
            "headline": {
                **{f"{b}_median_s": p["median_s"] for b, p in points.items()},
                **{f"{b}_max_s": p["max_s"] for b, p in points.items()},
                "signed": receiver.signed,
            },
        },
    )
