"""The client drops the connection after the server commits, then retries: same id, no
duplicate. Against a real gunicorn (production settings, 2 workers) on 127.0.0.1, with a raw
socket client that sends a whole request and closes without reading the answer.

Also end to end: the server's JSON log lines carry the request's X-Request-ID.
"""

from __future__ import annotations

import json
import socket
import struct
import uuid
from collections.abc import Iterator

import pytest

from tests.support.live_processes import (
    HOST,
    LiveServer,
    create_api_key,
    live_database,
    picoflow_document,
    request,
    wait_for,
)

pytestmark = pytest.mark.slow


def query(database, sql: str, params: tuple = ()) -> list[tuple]:
    if database.vendor == "sqlite":
        import sqlite3

        with sqlite3.connect(f"file:{database.path}?mode=ro", uri=True, timeout=20) as conn:
            return conn.execute(sql.replace("%s", "?"), params).fetchall()
    import psycopg

    with psycopg.connect(database.url, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


def stored(database, external_id: str) -> list[tuple]:
    """(session id, latest version, version rows, body rows) for one external id."""
    sessions = query(
        database,
        "SELECT s.id, s.latest_version,"
        " (SELECT COUNT(*) FROM sessions_api_documentversion v WHERE v.session_id = s.id)"
        " FROM sessions_api_session s WHERE s.external_id = %s",
        (external_id,),
    )
    return [
        (
            session_id,
            latest,
            versions,
            query(
                database,
                "SELECT COUNT(*) FROM sessions_api_documentbody WHERE session_id = %s",
                (normal_id(session_id),),
            )[0][0],
        )
        for session_id, latest, versions in sessions
    ]


def normal_id(value: object) -> str:
    return str(uuid.UUID(str(value)))


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[tuple[LiveServer, object, str]]:
    tmp = tmp_path_factory.mktemp("i3")
    with live_database(tmp, "dropped") as database:
        key = create_api_key(database, tmp)
        server = LiveServer(tmp, database, workers=2, threads=4)
        try:
            yield server, database, key
        finally:
            server.stop()


def send_and_drop(port: int, path: str, body: bytes, key: str, *, abort: bool = False) -> None:
    """Send a complete request, then close without reading a byte of the answer. ``abort``:
    an RST (SO_LINGER 0) instead of an orderly FIN."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    sock = socket.create_connection((HOST, port), timeout=10)
    try:
        sock.sendall(head + body)
        if abort:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()


def test_drop_after_commit_then_retry_gives_the_same_id_and_no_duplicate(live):
    server, database, key = live
    for _ in range(20):
        external_id = str(uuid.uuid4())
        body = picoflow_document(external_id)
        send_and_drop(server.port, "/api/v1/sessions", body, key)
        # The server commits although nobody reads its answer.
        first = wait_for(
            "the dropped ingest to commit", lambda e=external_id: stored(database, e), 15
        )
        retry = request(server.port, "POST", "/api/v1/sessions", body, key=key)
        assert retry.status == 200, retry.body[:300]
        answer = retry.json()
        assert answer["id"] == normal_id(first[0][0])
        assert answer["version"] == 1
        assert answer["changed"] is False
        assert stored(database, external_id) == [(first[0][0], 1, 1, 1)]


def test_abortive_drop_then_immediate_retry_stores_once(live):
    server, database, key = live
    for _ in range(20):
        external_id = str(uuid.uuid4())
        body = picoflow_document(external_id)
        send_and_drop(server.port, "/api/v1/sessions", body, key, abort=True)
        retry = request(server.port, "POST", "/api/v1/sessions", body, key=key)
        assert retry.status in {200, 201}, retry.body[:300]
        # Whatever became of the dropped request (served first, served second, or never
        # read), the session is there once with one version.
        rows = wait_for("one stored session", lambda e=external_id: stored(database, e), 15)
        assert len(rows) == 1
        assert normal_id(rows[0][0]) == retry.json()["id"]
        assert rows[0][1:] == (1, 1, 1)


def test_dropped_batch_then_retry_changes_nothing(live):
    server, database, key = live
    ids = [str(uuid.uuid4()) for _ in range(10)]
    body = b'{"documents": [' + b",".join(picoflow_document(i) for i in ids) + b"]}"
    send_and_drop(server.port, "/api/v1/sessions/batch", body, key)
    wait_for("the dropped batch to commit", lambda: all(stored(database, i) for i in ids), 20)
    retry = request(server.port, "POST", "/api/v1/sessions/batch", body, key=key)
    assert retry.status == 200
    results = retry.json()["results"]
    assert all(r["ok"] and not r["created"] and not r["changed"] for r in results), results
    for external_id, result in zip(ids, results, strict=True):
        rows = stored(database, external_id)
        assert len(rows) == 1 and rows[0][1:] == (1, 1, 1)
        assert normal_id(rows[0][0]) == result["id"]


def test_json_log_lines_carry_the_request_id(live):
    """Request ids on the deployed configuration: DJANGO_DEBUG=0 writes JSON lines, and
    the access line of a request names its X-Request-ID."""
    server, _, key = live
    request_id = f"live-{uuid.uuid4().hex}"
    answer = request(
        server.port, "GET", "/api/v1/sessions?q=secret-search", key=key,
        headers={"X-Request-ID": request_id},
    )  # fmt: skip
    assert answer.status == 200
    assert answer.headers["x-request-id"] == request_id

    def logged() -> list[dict]:
        entries = []
        for line in server.proc.output().splitlines():
            if line.startswith("{") and request_id in line:
                entries.append(json.loads(line))
        return entries

    entries = wait_for("the access log line", logged, timeout=10)
    access = [e for e in entries if e["logger"] == "observatory.access"]
    assert access and access[0]["status"] == 200 and access[0]["path"] == "/api/v1/sessions"
    output = server.proc.output()
    assert "secret-search" not in output  # query strings are never logged
    assert key.split("_", 2)[2] not in output  # nor API keys
