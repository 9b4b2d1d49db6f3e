"""Live processes for the fault tests and the soak: a real gunicorn on 127.0.0.1, a private
redis-server, a database of their own, and a raw HTTP client.

Everything here binds to 127.0.0.1 only, runs in its own process group, and is stopped by the
PID this module started (never by name). Every wait is a poll with a deadline.

The database: with DATABASE_URL naming PostgreSQL (the suite's PostgreSQL run), a fresh
database ``<name>_live_<hex>`` on that server, dropped at the end; otherwise a SQLite file in a
temporary folder. Either way it is migrated by ``manage.py migrate`` in a subprocess, exactly as
a deployment does.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.picoflow_documents import picoflow_v15

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
        except Exception as exc:  # what we wait for may not be up yet
            last_error, value = exc, None
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:.1f} s waiting for {what} ({last_error!r})"
            )
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def base_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: ours minus every project setting, plus ``extra``."""
    drop = {
        "DATABASE_URL",
        "REDIS_URL",
        "DATA_DIR",
        "MONGODB_URL",
        "SESSION_STORE",
        "DJANGO_DEBUG",
        "DJANGO_SECRET_KEY",
        "DJANGO_ALLOWED_HOSTS",
        "DJANGO_SECURE_SSL_REDIRECT",
        "DJANGO_SECURE_HSTS_SECONDS",
        "DJANGO_SECURE_COOKIES",
        "API_RATE_LIMIT",
        "LOG_FORMAT",
        "ACCESS_LOG",
        "TEST_DATABASE_NAME",
    }
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PYTEST")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", PYTHONUNBUFFERED="1", **extra)
    return env


def production_env(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    """DJANGO_DEBUG=0 with a real secret, as docker-compose.yml runs it, over plain HTTP on
    127.0.0.1 (no TLS proxy here, so no redirect to https)."""
    settings = {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    return base_env(**{**settings, **extra})


class Proc:
    """A subprocess in its own process group (session), output to a log file."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], log_dir: Path, cwd: Path = ROOT
    ) -> None:
        self.name = name
        self.log = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self._log_file = self.log.open("wb")
        self.popen = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill9(self) -> None:
        """SIGKILL to the whole group (a worker's main process and its pool children), like a
        lost machine."""
        os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM to the group this object started, then SIGKILL at the deadline."""
        if self.popen.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        else:
            # The leader is gone; children it left in its group (ours) go too.
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        if not self._log_file.closed:
            self._log_file.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces or parentheses; split after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# --- database ---------------------------------------------------------------------------------


@dataclass
class LiveDatabase:
    url: str
    vendor: str  # "sqlite" or "postgresql"
    path: Path | None = None  # the SQLite file


@contextmanager
def live_database(tmp: Path, label: str = "live") -> Iterator[LiveDatabase]:
    """A migrated database for subprocess servers, of the suite's own vendor."""
    suite_url = os.environ.get("DATABASE_URL", "")
    if suite_url.startswith(("postgres://", "postgresql://")):
        import psycopg

        base = (os.environ.get("TEST_DATABASE_NAME") or "test_observatory")[:30]
        name = f"{base}_{label}_{uuid.uuid4().hex[:8]}"
        admin_url = suite_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        database = LiveDatabase(url=suite_url.rsplit("/", 1)[0] + "/" + name, vendor="postgresql")
        try:
            migrate(database, tmp)
            yield database
        finally:
            with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        path = tmp / f"{label}.sqlite3"
        database = LiveDatabase(url=f"sqlite:///{path}", vendor="sqlite", path=path)
        migrate(database, tmp)
        yield database


def manage(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


def migrate(database: LiveDatabase, tmp: Path) -> None:
    data_dir = tmp / "migrate-data"
    data_dir.mkdir(exist_ok=True)
    manage(
        "migrate", "--noinput", "-v0",
        env=base_env(DATABASE_URL=database.url, DATA_DIR=str(data_dir)),
    )  # fmt: skip


def create_api_key(
    database: LiveDatabase, tmp: Path, scopes: str = "ingest,read,write,admin"
) -> str:
    data_dir = tmp / "migrate-data"
    data_dir.mkdir(exist_ok=True)
    result = manage(
        "create_api_key", "--name", f"live-{uuid.uuid4().hex[:6]}", "--scopes", scopes,
        env=base_env(DATABASE_URL=database.url, DATA_DIR=str(data_dir)),
    )  # fmt: skip
    return result.stdout.strip().splitlines()[-1]


# --- gunicorn ---------------------------------------------------------------------------------


class LiveServer:
    """gunicorn config.wsgi on 127.0.0.1:<free port>, production settings."""

    def __init__(
        self,
        tmp: Path,
        database: LiveDatabase,
        *,
        workers: int = 2,
        threads: int = 4,
        timeout: int = 30,
        env: dict[str, str] | None = None,
        name: str = "web",
    ) -> None:
        self.port = free_port()
        self.data_dir = tmp / f"{name}-data"
        self.data_dir.mkdir(exist_ok=True)
        self.env = production_env(self.data_dir, database.url, **(env or {}))
        args = [
            str(VENV_BIN / "gunicorn"), "config.wsgi",
            "--bind", f"{HOST}:{self.port}",
            "--workers", str(workers),
            "--threads", str(threads),
            "--timeout", str(timeout),
            "--graceful-timeout", "5",
            "--error-logfile", "-",
        ]  # fmt: skip
        help_text = subprocess.run(
            [str(VENV_BIN / "gunicorn"), "--help"], capture_output=True, text=True, check=False
        ).stdout
        if "--control-socket" in help_text:  # gunicorn 24+: keep its control socket ours
            args += ["--control-socket", str(self.data_dir / "gunicorn.ctl")]
        self.proc = Proc(name, args, self.env, tmp)
        try:
            wait_for(f"{name} to answer /healthz", self._healthy, timeout=60, interval=0.1)
            wait_for(f"{workers} {name} workers", lambda: len(self.workers()) >= workers, 60)
        except AssertionError:
            print(self.proc.tail())
            self.stop()
            raise

    def _healthy(self) -> bool:
        if not self.proc.alive():
            raise AssertionError(f"gunicorn exited:\n{self.proc.tail()}")
        return request(self.port, "GET", "/healthz", timeout=2).status == 200

    def workers(self) -> list[int]:
        return children_of(self.proc.pid)

    def stop(self) -> None:
        self.proc.stop()


# --- redis ------------------------------------------------------------------------------------


class RedisServer:
    """A private redis-server on a free 127.0.0.1 port (never the shared 6379)."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://{HOST}:{self.port}/0"
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", HOST,
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.workdir),
                "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for("redis-server to answer", self.ping, timeout=15)

    def ping(self) -> bool:
        with socket.create_connection((HOST, self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # by its PID
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None


# --- HTTP -------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Answer:
    all_headers = {"Host": f"{HOST}:{port}", **(headers or {})}
    if key:
        all_headers["Authorization"] = f"Bearer {key}"
    if body is not None:
        all_headers.setdefault("Content-Type", "application/json")
    started = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        data = response.read()
        return Answer(
            status=response.status,
            headers={k.lower(): v for k, v in response.getheaders()},
            body=data,
            seconds=time.perf_counter() - started,
        )
    finally:
        conn.close()


def picoflow_document(session_id: str | None = None, *, turns: int = 2, note: str = "") -> bytes:
    """A small valid Picoflow v1.5 document (the format the spine tests use)."""
    session_id = session_id or str(uuid.uuid4())
    stamp = "2026-03-02T10:00:00.000Z"
    messages = []
    for n in range(turns):
        messages.append(
            {"type": "human", "content": f"question {n} {note}", "id": f"Step|{stamp}|{n:010d}1"}
        )
        messages.append({"type": "ai", "content": f"answer {n}", "id": f"Step|{stamp}|{n:010d}2"})
    doc = picoflow_v15(
        session_id=session_id,
        messages=messages,
        created=stamp,
        saved=stamp,
        flow="ReliabilityFlow",
        model="gpt-4o-mini",
    )
    return json.dumps(doc).encode()
