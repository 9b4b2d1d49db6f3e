"""Benchmark data: realistic documents, and index rows bulk-loaded at scale.

Documents
    * ``document_pool``: demo documents (``sessions_api.demo.dataset.generate_documents``:
      Picoflow v1, v1.5 and OpenAI chat transcripts of support, booking, triage and analysis flows)
      whose size is around 20 KB, plus every JSON format fixture in ``tests/fixtures`` (made by the
      real libraries) that parses. Each can be made unique any number of times
      (``Template.unique``): the session id inside the document is rewritten (same length), or, for
      a document without an id, ``?external_id=`` is passed, so every request creates a new session.
    * ``chat_document``: an OpenAI-chat transcript of any length (user turns, assistant turns
      with tool calls, JSON tool results, some failures, non-ASCII text), for the 2 MB documents
      (B3) and the 10,000-message session (B5).

Scale (B4, B6, B7)
    Generating a million documents through ingest would take hours on 2 cores (about 40 per
    second per core). Instead a few hundred documents are ingested through the real path
    (``services.ingest_document``), and their index rows (Session, ToolCallRecord, SessionError,
    ModelUsage, optionally DocumentVersion and DocumentBody) are cloned with bare ``sqlite3``
    ``executemany``: new ids, unique external ids, times spread over the window (each clone's
    times shifted by one offset, so durations and the derived rows' times stay consistent).
    Secondary indexes are dropped during the load and recreated after it (a sorted build), the
    same schema as migrations create. Column values are therefore exactly what ingest writes.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import ROOT

FIXTURES = ROOT / "tests" / "fixtures"


@dataclass(frozen=True)
class Template:
    body: bytes
    key: str | None  # the session id inside the document, or None (id-less: ?external_id=)
    label: str  # e.g. "demo:picoflow/v1-ext" or "fixture:langchain/dumpd.json"

    def unique(self, n: int) -> tuple[bytes, str]:
        """(body, query string) for a document no earlier request used."""
        if self.key is None:
            return self.body, f"?external_id=bench-{n:08x}-{abs(hash(self.label)) % 10**6}"
        return self.body.replace(self.key.encode(), mutate(self.key, n).encode()), ""


def mutate(key: str, n: int) -> str:
    if len(key) >= 12:
        return key[:-8] + f"{n:08x}"
    return f"{key}-{n:08x}"


def demo_templates(*, count: int, seed: int, low: int, high: int) -> list[Template]:
    from sessions_api.demo.dataset import generate_documents

    documents = generate_documents(
        now=datetime(2026, 1, 15, 12, tzinfo=UTC), count=count, seed=seed
    )
    chosen: dict[str, Template] = {}
    for document in documents:
        if low <= len(document.body) <= high:
            # The last version of each session (the longest).
            chosen[document.key] = Template(
                document.body, document.key, f"demo:{document.format_id}/{document.variant}"
            )
    return list(chosen.values())


def fixture_templates() -> list[Template]:
    """Every JSON fixture in the manifest that parses as it is and after its id is rewritten."""
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    templates = []
    for entry in manifest["fixtures"]:
        path = FIXTURES / entry["path"]
        if not path.is_file() or path.suffix != ".json":
            continue
        body = path.read_bytes()
        template = _checked(body, f"fixture:{entry['path']}")
        if template is not None:
            templates.append(template)
    return templates


def _checked(body: bytes, label: str) -> Template | None:
    from sessions_api.errors import InvalidDocument, RejectedDocument
    from sessions_api.formats import parse_document
    from sessions_api.formats.decoding import decode_document

    try:
        _, parsed = parse_document(decode_document(body))
    except (InvalidDocument, RejectedDocument):
        return None
    key = parsed.session.external_id
    if not parsed.session.messages:
        return None
    if key is None:
        return Template(body, None, label)
    if key.encode() not in body:
        return None
    template = Template(body, key, label)
    mutated, _ = template.unique(12345)
    try:
        _, again = parse_document(decode_document(mutated))
    except (InvalidDocument, RejectedDocument):
        return None
    return template if again.session.external_id == mutate(key, 12345) else None


def document_pool(*, smoke: bool, seed: int = 7) -> list[Template]:
    """About 20 KB documents: demo documents of 14-30 KB, and the format fixtures."""
    demo = demo_templates(count=300 if smoke else 1500, seed=seed, low=14_000, high=30_000)
    return demo + fixture_templates()


# --- long transcripts (B3, B5) -----------------------------------------------------------------

_WORDS = (  # noqa: SIM905 - a sentence is easier to edit than a list
    "order refund shipment carrier delayed customer invoice warehouse ticket escalate flight "
    "hotel booking itinerary payment card charged twice tracking number address Zürich Kyoto "
    "São Paulo Reykjavík straße café naïve résumé 東京 注文 配送 query revenue region churn "
    "weekly median percentile dashboard incident deploy rollback latency timeout retry"
).split()
_TOOLS = ("lookup_order", "search_kb", "issue_refund", "search_flights", "run_sql", "get_weather")


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."


def chat_document(*, messages: int, session_id: str, seed: int = 1, text_words: int = 40) -> bytes:
    """An OpenAI-chat transcript with exactly ``messages`` messages (system, user, assistant
    with tool calls, tool results with JSON, about 1 in 12 tool results an error)."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a helpful operations assistant. " * 4}
    ]
    call_no = 0
    while len(out) < messages:
        out.append({"role": "user", "content": _sentence(rng, text_words)})
        if len(out) >= messages:
            break
        calls = []
        for _ in range(rng.choice((1, 1, 2))):
            call_no += 1
            name = rng.choice(_TOOLS)
            calls.append(
                {
                    "id": f"call_{call_no:024d}",
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": json.dumps(
                            {"query": _sentence(rng, 6), "limit": rng.randrange(1, 20)},
                            ensure_ascii=False,
                        ),
                    },
                }
            )
        out.append({"role": "assistant", "content": None, "tool_calls": calls})
        for call in calls:
            if len(out) >= messages:
                break
            failed = rng.random() < 1 / 12
            content = (
                "Error: upstream timed out after 10s"
                if failed
                else json.dumps(
                    {
                        "results": [
                            {"id": rng.randrange(10**6), "title": _sentence(rng, 5)}
                            for _ in range(3)
                        ],
                        "took_ms": rng.randrange(5, 900),
                    },
                    ensure_ascii=False,
                )
            )
            out.append({"role": "tool", "tool_call_id": call["id"], "content": content})
        if len(out) >= messages:
            break
        out.append({"role": "assistant", "content": _sentence(rng, text_words * 2)})
    doc = {
        "id": session_id,
        "model": "gpt-4.1",
        "user": "bench@example.com",
        "created": 1767225600,
        "metadata": {"app": "bench", "env": "benchmark"},
        "messages": out[:messages],
        "usage": {
            "prompt_tokens": 1000 * messages,
            "completion_tokens": 200 * messages,
            "total_tokens": 1200 * messages,
        },
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def chat_document_of_size(*, target_bytes: int, session_id: str, seed: int = 1) -> bytes:
    """A transcript of about ``target_bytes`` (within a few percent)."""
    probe = chat_document(messages=200, session_id=session_id, seed=seed)
    per_message = len(probe) / 200
    messages = max(10, int(target_bytes / per_message))
    body = chat_document(messages=messages, session_id=session_id, seed=seed)
    while len(body) > target_bytes * 1.03 and messages > 10:
        messages = int(messages * 0.98)
        body = chat_document(messages=messages, session_id=session_id, seed=seed)
    return body


# --- bulk loading of index rows ----------------------------------------------------------------

SESSION = "sessions_api_session"
DERIVED = ("sessions_api_toolcallrecord", "sessions_api_sessionerror", "sessions_api_modelusage")
SEARCH = "sessions_api_searchentry"
TIME_COLUMNS = (
    "expired_at",
    "stuck_since",
    "started_at",
    "updated_at",
    "expires_at",
    "first_received_at",
    "last_received_at",
)


def _parse(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _fmt(value: datetime) -> str:
    # Django's SQLite format for an aware datetime stored in UTC: naive, space separator.
    return str(value.replace(tzinfo=None))


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in db.execute(f'PRAGMA table_info("{table}")')]


def _secondary_indexes(db: sqlite3.Connection, tables: tuple[str, ...]) -> list[tuple[str, str]]:
    marks = ",".join("?" * len(tables))
    return list(
        db.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({marks})",
            tables,
        )
    )


def bulk_clone(
    db_path: Path,
    *,
    count: int,
    start_index: int,
    now: datetime,
    days: float,
    seed: int,
    expire: bool | None = None,
    with_bodies: bool = False,
    body_bytes: int = 2048,
    with_search: bool = False,
    plants: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Add ``count`` sessions cloned from the sessions already in the database (the templates
    ingested through the real path). ``expire``: True gives every clone an expiry in the past,
    False one in the future, None keeps the template's. ``with_bodies`` adds a DocumentVersion
    and a DocumentBody (a ``body_bytes`` stand-in: purge never reads bodies) per clone.
    ``with_search`` clones the template's full-text search entries too (the FTS table follows by
    its triggers), naming the clone's own id in its session-fields entry; ``plants`` maps a text
    to N: every Nth clone gets one more entry holding it (rare phrases for B10)."""
    rng = random.Random(seed + start_index)
    started = time.perf_counter()
    now = now.astimezone(UTC).replace(tzinfo=None)  # stored times are naive UTC
    db = sqlite3.connect(str(db_path), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-262144")
    session_cols = _columns(db, SESSION)
    col = {name: i for i, name in enumerate(session_cols)}
    templates = [
        list(row)
        for row in db.execute(
            f'SELECT * FROM "{SESSION}" WHERE external_id NOT LIKE ? ORDER BY id', ("%~bench~%",)
        )
    ]
    if not templates:
        raise RuntimeError("no template sessions to clone: ingest some documents first")
    derived_tables = (*DERIVED, SEARCH) if with_search else DERIVED
    derived_cols = {table: _columns(db, table) for table in derived_tables}
    derived: dict[str, dict[str, list[list[Any]]]] = {
        table: defaultdict(list) for table in derived_tables
    }
    for table in derived_tables:
        cols = derived_cols[table]
        sid = cols.index("session_id")
        for row in db.execute(f'SELECT * FROM "{table}"'):
            derived[table][row[sid]].append(list(row))
    # Template times, parsed once.
    parsed = [{c: _parse(t[col[c]]) for c in TIME_COLUMNS} for t in templates]
    tables = (SESSION, *derived_tables) + (
        ("sessions_api_documentversion", "sessions_api_documentbody") if with_bodies else ()
    )
    indexes = _secondary_indexes(db, tables)
    for name, _ in indexes:
        db.execute(f'DROP INDEX "{name}"')
    window = timedelta(days=days).total_seconds()
    body = (b'{"bench_stand_in":"' + b"x" * max(0, body_bytes - 22) + b'"}')[:body_bytes]
    counts = {"sessions": 0, **{t: 0 for t in derived_tables}}
    plants = plants or {}
    if with_search:
        search_cols = derived_cols[SEARCH]
        text_at, index_at = search_cols.index("text"), search_cols.index("event_index")
    chunk = 20_000
    version_cols = _columns(db, "sessions_api_documentversion") if with_bodies else []
    for chunk_start in range(start_index, start_index + count, chunk):
        chunk_end = min(chunk_start + chunk, start_index + count)
        sessions: list[list[Any]] = []
        rows: dict[str, list[list[Any]]] = {t: [] for t in derived_tables}
        versions: list[tuple[Any, ...]] = []
        bodies: list[tuple[Any, ...]] = []
        for i in range(chunk_start, chunk_end):
            k = rng.randrange(len(templates))
            template, times = templates[k], parsed[k]
            row = list(template)
            new_id = f"{rng.getrandbits(128):032x}"
            row[col["id"]] = new_id
            row[col["external_id"]] = f"{template[col['external_id']][:480]}~bench~{i}"
            updated = now - timedelta(seconds=rng.random() * window)
            delta = updated - times["updated_at"]
            # Received times follow the clone's activity (a few seconds after its last update),
            # keeping the gap between first and last receipt the template had.
            received = updated + timedelta(seconds=rng.uniform(0.2, 5.0))
            received_delta = received - times["last_received_at"]
            for name in TIME_COLUMNS:
                value = times[name]
                if value is not None:
                    if name.endswith("_received_at"):
                        row[col[name]] = _fmt(min(value + received_delta, now))
                    else:
                        row[col[name]] = _fmt(value + delta)
            if expire is True:
                row[col["expires_at"]] = _fmt(now - timedelta(seconds=60 + rng.random() * 86400))
                row[col["status"]] = (
                    row[col["status"]] if row[col["status"]] != "expired" else ("completed")
                )
                row[col["expired_at"]] = None
                row[col["on_hold"]] = 0
            elif expire is False:
                row[col["expires_at"]] = _fmt(now + timedelta(days=30))
            sessions.append(row)
            for table in derived_tables:
                cols = derived_cols[table]
                for source in derived[table].get(template[col["id"]], ()):
                    copy = list(source)
                    copy[0] = None  # autoincrement id
                    copy[cols.index("session_id")] = new_id
                    if "occurred_at" in cols:
                        at = cols.index("occurred_at")
                        copy[at] = _fmt(_parse(copy[at]) + delta)
                    if table == SEARCH and copy[index_at] == -1:
                        copy[text_at] = copy[text_at].replace(
                            template[col["external_id"]], row[col["external_id"]], 1
                        )
                    rows[table].append(copy)
            if with_search:
                for planted, every in plants.items():
                    if i % every == every // 2:
                        extra: list[Any] = [None] * len(search_cols)
                        rows[SEARCH].append(extra)
                        extra[search_cols.index("session_id")] = new_id
                        extra[index_at] = 100_000
                        extra[search_cols.index("kind")] = "message"
                        extra[text_at] = f"Customer wrote: {planted} (ticket {i})."
            if with_bodies:
                dashed = (
                    f"{new_id[:8]}-{new_id[8:12]}-{new_id[12:16]}-{new_id[16:20]}-{new_id[20:]}"
                )
                received = row[col["last_received_at"]]
                version = {
                    "id": None,
                    "session_id": new_id,
                    "number": 1,
                    "sha256": f"{rng.getrandbits(256):064x}",
                    "size_bytes": len(body),
                    "received_at": received,
                    "revision": None,
                    "source": "import",
                }
                versions.append(tuple(version[c] for c in version_cols))
                bodies.append((dashed, 1, body))
            row[col["latest_version"]] = 1 if with_bodies else row[col["latest_version"]]
        db.execute("BEGIN")
        marks = ",".join("?" * len(session_cols))
        db.executemany(f'INSERT INTO "{SESSION}" VALUES ({marks})', sessions)
        for table in derived_tables:
            marks = ",".join("?" * len(derived_cols[table]))
            db.executemany(f'INSERT INTO "{table}" VALUES ({marks})', rows[table])
            counts[table] += len(rows[table])
        if with_bodies:
            marks = ",".join("?" * len(version_cols))
            db.executemany(f'INSERT INTO "sessions_api_documentversion" VALUES ({marks})', versions)
            db.executemany(
                'INSERT INTO "sessions_api_documentbody" (session_id, version, body) '
                "VALUES (?, ?, ?)",
                bodies,
            )
        db.execute("COMMIT")
        counts["sessions"] += len(sessions)
    load_s = time.perf_counter() - started
    for _, sql in indexes:
        db.execute(sql)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return {
        "rows": counts,
        "templates": len(templates),
        "insert_s": round(load_s, 2),
        "total_s": round(time.perf_counter() - started, 2),
    }
