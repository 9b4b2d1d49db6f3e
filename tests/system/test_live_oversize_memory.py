"""The memory half of the body caps: oversize bodies (just over the single and the batch caps,
chunked without a length, an understated length) cost a web worker at most 50 MB of peak RSS.
The status codes of these cases are proven in tests/api/test_hostile_documents.py (in
process); here a real gunicorn worker on
127.0.0.1 receives them over a socket, and its kernel-reported peak RSS (VmHWM) is compared
before and after.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.live_processes import HOST, LiveServer, create_api_key, live_database

pytestmark = pytest.mark.slow

MB = 1024 * 1024
SINGLE_CAP = 10 * MB
BATCH_CAP = 50 * MB
BUDGET = 50 * MB


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory) -> Iterator[tuple[LiveServer, str]]:
    tmp = tmp_path_factory.mktemp("v3")
    with live_database(tmp, "oversize") as database:
        key = create_api_key(database, tmp)
        server = LiveServer(tmp, database, workers=1, threads=1, name="v3-web")
        try:
            yield server, key
        finally:
            server.stop()


def send(port: int, key: str, path: str, headers: str, body_size: int, *, chunked: bool) -> int:
    """Send a request with ``body_size`` bytes of body (streamed), return the status code."""
    sock = socket.create_connection((HOST, port), timeout=60)
    status: list[int] = []

    def read_status() -> None:
        try:
            data = sock.recv(64)
            status.append(int(data.split(b" ", 2)[1]))
        except (OSError, ValueError, IndexError):
            status.append(0)

    try:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\n{headers}Connection: close\r\n\r\n"
        )
        sock.sendall(head.encode())
        reader = threading.Thread(target=read_status, daemon=True)
        reader.start()
        chunk = b"[" + b"1," * (MB // 2 - 1)
        sent = 0
        try:
            while sent < body_size:
                part = chunk[: min(len(chunk), body_size - sent)]
                if chunked:
                    sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                else:
                    sock.sendall(part)
                sent += len(part)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed before taking the whole body: fine
        reader.join(timeout=60)
        return status[0] if status else 0
    finally:
        sock.close()


@pytest.mark.parametrize(
    ("case", "path", "headers", "size", "chunked", "expected"),
    [
        ("single-just-over", "/api/v1/sessions", f"Content-Length: {SINGLE_CAP + 1}\r\n",
         SINGLE_CAP + 1, False, {413}),
        ("batch-just-over", "/api/v1/sessions/batch", f"Content-Length: {BATCH_CAP + 1}\r\n",
         BATCH_CAP + 1, False, {413}),
        ("chunked-no-length", "/api/v1/sessions", "Transfer-Encoding: chunked\r\n",
         60 * MB, True, {413}),
        ("understated-length", "/api/v1/sessions", "Content-Length: 100\r\n",
         30 * MB, False, {400}),
    ],
)  # fmt: skip
def test_oversize_bodies_cost_the_worker_at_most_50_mb(
    one_worker, case, path, headers, size, chunked, expected
):
    server, key = one_worker
    (worker,) = server.workers()
    before = peak_rss(worker)
    status = send(server.port, key, path, headers, size, chunked=chunked)
    assert status in expected, (case, status)
    (still,) = server.workers()
    assert still == worker, "the worker died"
    growth = peak_rss(worker) - before
    print(f"oversize {case}: {status}, peak RSS +{growth / MB:.1f} MB")
    assert growth <= BUDGET, f"{case}: peak RSS grew {growth / MB:.0f} MB"
