"""The server under test and the HTTP load generator.

The server is gunicorn with exactly the arguments ``bin/run`` uses (2 workers x 4 threads,
timeouts, access log), on 127.0.0.1 and a temporary DATA_DIR, started here and stopped by its
PID. The load generator is a small threaded ``http.client`` client with keep-alive
connections; it only ever targets 127.0.0.1 and stops by itself after a bounded number of
requests or seconds, whichever comes first.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import ROOT, children_of, proc_status

HOST = "127.0.0.1"
# (method, path, body, headers) for request number i.
RequestFactory = Callable[[int], tuple[str, str, bytes | None, dict[str, str]]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


#: One per bench run: the server and the task processes must agree (login sessions are signed).
_SECRET_KEY = secrets.token_urlsafe(60)


def production_like_env() -> dict[str, str]:
    """The settings bin/run serves with: DEBUG off and a real secret, over plain HTTP."""
    return {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": _SECRET_KEY,
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_SECURE_HSTS_SECONDS": "0",
        "DJANGO_SECURE_COOKIES": "0",
    }


def bin_run_web_args(port: int, run_dir: Path) -> list[str]:
    """gunicorn arguments as bin/run builds them (WEB_WORKERS default 2, 4 threads)."""
    gunicorn = str(ROOT / ".venv" / "bin" / "gunicorn")
    workers = os.environ.get("WEB_WORKERS", "2")
    args = [
        gunicorn,
        "config.wsgi",
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        workers,
        "--threads",
        "4",
        "--timeout",
        "60",
        "--graceful-timeout",
        "10",
        "--error-logfile",
        "-",
    ]
    help_text = subprocess.run([gunicorn, "--help"], capture_output=True, text=True).stdout
    if "--control-socket" in help_text:
        args += ["--control-socket", str(run_dir / "gunicorn.ctl")]
    return args


class Server:
    """gunicorn on a DATA_DIR; ``with Server(data_dir) as server:`` starts and stops it."""

    def __init__(self, data_dir: Path, *, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "web.log"

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        run_dir = self.data_dir / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **production_like_env(), "DATA_DIR": str(self.data_dir), **self.env}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.process = subprocess.Popen(
            bin_run_web_args(self.port, run_dir),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early; see {self.log_path}")
            try:
                status, _ = request_once(self.port, "GET", "/healthz", timeout=2)
                if status == 200 and len(self.worker_pids()) >= 1:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer /healthz; see {self.log_path}")

    def worker_pids(self) -> list[int]:
        return children_of(self.process.pid) if self.process else []

    def memory(self) -> dict[str, Any]:
        """Current and peak RSS of each worker (MB), from /proc."""
        workers = []
        for pid in self.worker_pids():
            status = proc_status(pid)
            workers.append(
                {
                    "pid": pid,
                    "rss_mb": round(status.get("VmRSS", 0) / 2**20, 1),
                    "peak_rss_mb": round(status.get("VmHWM", 0) / 2**20, 1),
                }
            )
        master = proc_status(self.process.pid) if self.process else {}
        return {
            "workers": workers,
            "max_worker_peak_rss_mb": max((w["peak_rss_mb"] for w in workers), default=None),
            "master_rss_mb": round(master.get("VmRSS", 0) / 2**20, 1),
        }

    def stop(self) -> None:
        """SIGTERM to the gunicorn master we started (it stops its workers), then SIGKILL to
        the same PIDs if they outlive a bounded wait."""
        if self.process is None:
            return
        workers = self.worker_pids()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        for pid in workers:
            try:
                os.kill(pid, 0)
            except OSError:
                continue
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self._log.close()
        self.process = None


def request_once(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    bytes_sent: int = 0
    lag: list[float] = field(default_factory=list)  # paced mode: how late requests started

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_load(
    port: int,
    factory: RequestFactory,
    *,
    concurrency: int,
    max_seconds: float,
    max_requests: int,
    rate: float | None = None,
    ok: tuple[int, ...] = (200, 201),
    stop_event: threading.Event | None = None,
    timeout: float = 60,
) -> LoadResult:
    """``concurrency`` threads send requests until ``max_requests`` were sent, ``max_seconds``
    passed or ``stop_event`` is set. With ``rate`` (requests/s over all threads) requests are
    paced on a fixed schedule; latencies are measured from when each request was sent."""
    result = LoadResult()
    lock = threading.Lock()
    counter = iter(range(max_requests))
    started = time.perf_counter()
    deadline = started + max_seconds
    interval = concurrency / rate if rate else 0.0

    def worker(offset: int) -> None:
        conn: http.client.HTTPConnection | None = None
        next_at = started + (interval * offset / concurrency if interval else 0.0)
        latencies, lag = [], []
        errors = sent = 0
        statuses: Counter[str] = Counter()
        while True:
            if stop_event is not None and stop_event.is_set():
                break
            if interval:
                wait = next_at - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                lag.append(max(0.0, -wait))
                next_at += interval
            if time.perf_counter() >= deadline:
                break
            with lock:
                index = next(counter, None)
            if index is None:
                break
            method, path, body, headers = factory(index)
            t0 = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                status = type(exc).__name__
                if conn is not None:
                    conn.close()
                conn = None
            latencies.append(time.perf_counter() - t0)
            statuses[str(status)] += 1
            sent += 1
            if status not in ok:
                errors += 1
            result_bytes = len(body) if body else 0
            with lock:
                result.bytes_sent += result_bytes
        if conn is not None:
            conn.close()
        with lock:
            result.latencies.extend(latencies)
            result.lag.extend(lag)
            result.requests += sent
            result.errors += errors
            result.statuses.update(statuses)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max_seconds + timeout + 5)
    result.seconds = time.perf_counter() - started
    return result
