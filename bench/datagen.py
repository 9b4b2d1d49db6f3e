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
    ModelUsage, optionally DocumentVersion and DocumentBody) are cloned: new ids, unique
    external ids, times spread over the window (each clone's times shifted by one offset, so
    durations and the derived rows' times stay consistent). SQLite takes them with bare
    ``sqlite3`` ``executemany`` (``bulk_clone``), PostgreSQL with COPY
    (``bulk_clone_postgres``); both make the same clones from the same seed. Secondary indexes
    are dropped during the load and recreated after it (a sorted build), the same schema as
    migrations create. Column values are therefore exactly what ingest writes.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import ROOT
from sessions_api.search import pairs

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
    if value is None or value == "":
        return None
    return datetime.fromisoformat(value) if isinstance(value, str) else value


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


@dataclass
class Source:
    """What the clones are made from: the template rows, read once, and their column names."""

    session_cols: list[str]
    templates: list[list[Any]]
    derived_cols: dict[str, list[str]]
    derived: dict[str, dict[Any, list[list[Any]]]]  # by table: the tables cloned
    version_cols: list[str]
    #: A text to N: every Nth clone gets one more search entry holding it (rare phrases for B10).
    plants: dict[str, int] = field(default_factory=dict)


@dataclass
class Chunk:
    sessions: list[list[Any]]
    derived: dict[str, list[list[Any]]]
    versions: list[tuple[Any, ...]]
    bodies: list[tuple[Any, ...]]


def _clone_chunks(
    source: Source,
    *,
    count: int,
    start_index: int,
    now: datetime,
    days: float,
    seed: int,
    expire: bool | None,
    with_bodies: bool,
    body: bytes,
    new_id,
    out_time,
    chunk: int = 20_000,
):
    """The clones, ``chunk`` sessions at a time, whatever database they go to: ``new_id`` makes
    a session id from 128 random bits, ``out_time`` turns a datetime into the stored value, and
    ``now`` is naive or aware as the template times are. Search entries, when cloned, name the
    clone's own id in its session-fields entry."""
    rng = random.Random(seed + start_index)
    col = {name: i for i, name in enumerate(source.session_cols)}
    templates = source.templates
    parsed = [{c: _parse(t[col[c]]) for c in TIME_COLUMNS} for t in templates]
    window = timedelta(days=days).total_seconds()
    for chunk_start in range(start_index, start_index + count, chunk):
        chunk_end = min(chunk_start + chunk, start_index + count)
        out = Chunk([], {t: [] for t in source.derived}, [], [])
        for i in range(chunk_start, chunk_end):
            k = rng.randrange(len(templates))
            template, times = templates[k], parsed[k]
            row = list(template)
            bits = rng.getrandbits(128)
            sid = new_id(bits)
            row[col["id"]] = sid
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
                        row[col[name]] = out_time(min(value + received_delta, now))
                    else:
                        row[col[name]] = out_time(value + delta)
            if expire is True:
                row[col["expires_at"]] = out_time(
                    now - timedelta(seconds=60 + rng.random() * 86400)
                )
                if row[col["status"]] == "expired":
                    row[col["status"]] = "completed"
                row[col["expired_at"]] = None
                row[col["on_hold"]] = False
            elif expire is False:
                row[col["expires_at"]] = out_time(now + timedelta(days=30))
            out.sessions.append(row)
            for table in source.derived:
                cols = source.derived_cols[table]
                sid_at = cols.index("session_id")
                at = cols.index("occurred_at") if "occurred_at" in cols else None
                own_at = None
                if table == SEARCH:  # the session-fields entry names the session's own id
                    own_at = (cols.index("event_index"), cols.index("text"))
                for template_row in source.derived[table].get(template[col["id"]], ()):
                    copy = list(template_row)
                    copy[sid_at] = sid
                    if at is not None:
                        copy[at] = out_time(_parse(copy[at]) + delta)
                    if own_at is not None and copy[own_at[0]] == -1:
                        copy[own_at[1]] = copy[own_at[1]].replace(
                            template[col["external_id"]], row[col["external_id"]], 1
                        )
                    out.derived[table].append(copy)
            if SEARCH in source.derived:
                cols = source.derived_cols[SEARCH]
                for planted, every in source.plants.items():
                    if i % every == every // 2:
                        extra: list[Any] = [None] * len(cols)
                        extra[cols.index("session_id")] = sid
                        extra[cols.index("event_index")] = 100_000
                        extra[cols.index("events")] = ":message"
                        extra[cols.index("text")] = f"Customer wrote: {planted} (ticket {i})."
                        out.derived[SEARCH].append(extra)
            if with_bodies:
                hexed = f"{bits:032x}"
                dashed = f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"
                version = {
                    "id": None,
                    "session_id": sid,
                    "number": 1,
                    "sha256": f"{rng.getrandbits(256):064x}",
                    "size_bytes": len(body),
                    "received_at": row[col["last_received_at"]],
                    "revision": None,
                    "source": "import",
                    "append_point": None,  # a stand-in body: nothing to append to
                }
                out.versions.append(tuple(version[c] for c in source.version_cols))
                out.bodies.append((dashed, 1, body))
                row[col["latest_version"]] = 1
        yield out


def _stand_in_body(body_bytes: int) -> bytes:
    return (b'{"bench_stand_in":"' + b"x" * max(0, body_bytes - 22) + b'"}')[:body_bytes]


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
    """Add ``count`` sessions cloned from the sessions already in the SQLite database (the
    templates ingested through the real path). ``expire``: True gives every clone an expiry in
    the past, False one in the future, None keeps the template's. ``with_bodies`` adds a
    DocumentVersion and a DocumentBody (a ``body_bytes`` stand-in: purge never reads bodies)
    per clone. ``with_search`` clones the template's full-text search entries too (the FTS
    table catches up with them at the end); ``plants`` maps a text to N: every Nth clone gets
    one more entry holding it (rare phrases for B10)."""
    started = time.perf_counter()
    now = now.astimezone(UTC).replace(tzinfo=None)  # stored times are naive UTC
    db = sqlite3.connect(str(db_path), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-262144")
    pairs.register(db)  # the search triggers call search_pairs(text)
    session_cols = _columns(db, SESSION)
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
    derived: dict[str, dict[Any, list[list[Any]]]] = {t: defaultdict(list) for t in derived_tables}
    for table in derived_tables:
        cols = derived_cols[table]
        sid = cols.index("session_id")
        # The templates' rows only: a second load would otherwise hold every earlier clone's
        # rows in memory (2.5 GB after 100,000 sessions with their search rows).
        for row in db.execute(
            f'SELECT * FROM "{table}" WHERE session_id IN '
            f'(SELECT id FROM "{SESSION}" WHERE external_id NOT LIKE ?)',
            ("%~bench~%",),
        ):
            copy = list(row)
            copy[0] = None  # autoincrement id
            derived[table][row[sid]].append(copy)
    source = Source(
        session_cols,
        templates,
        derived_cols,
        derived,
        _columns(db, "sessions_api_documentversion") if with_bodies else [],
        plants or {},
    )
    tables = (SESSION, *derived_tables) + (
        ("sessions_api_documentversion", "sessions_api_documentbody") if with_bodies else ()
    )
    indexes = _secondary_indexes(db, tables)
    for name, _ in indexes:
        db.execute(f'DROP INDEX "{name}"')
    counts = {"sessions": 0, **{t: 0 for t in derived_tables}}
    for chunk in _clone_chunks(
        source,
        count=count,
        start_index=start_index,
        now=now,
        days=days,
        seed=seed,
        expire=expire,
        with_bodies=with_bodies,
        body=_stand_in_body(body_bytes),
        new_id=lambda bits: f"{bits:032x}",
        out_time=_fmt,
    ):
        db.execute("BEGIN")
        marks = ",".join("?" * len(session_cols))
        db.executemany(f'INSERT INTO "{SESSION}" VALUES ({marks})', chunk.sessions)
        for table in derived_tables:
            marks = ",".join("?" * len(derived_cols[table]))
            db.executemany(f'INSERT INTO "{table}" VALUES ({marks})', chunk.derived[table])
            counts[table] += len(chunk.derived[table])
        if with_bodies:
            marks = ",".join("?" * len(source.version_cols))
            db.executemany(
                f'INSERT INTO "sessions_api_documentversion" VALUES ({marks})', chunk.versions
            )
            db.executemany(
                'INSERT INTO "sessions_api_documentbody" (session_id, version, body) '
                "VALUES (?, ?, ?)",
                chunk.bodies,
            )
        db.execute("COMMIT")
        counts["sessions"] += len(chunk.sessions)
    load_s = time.perf_counter() - started
    for _, sql in indexes:
        db.execute(sql)
    index_s = time.perf_counter() - started - load_s
    if with_search:  # the FTS table catches up as a write would (search/index.py), at once
        db.execute("BEGIN")
        waiting = f'"{SEARCH}" WHERE id > (SELECT indexed_upto FROM search_entry_fts_progress)'
        db.execute(f"INSERT INTO search_entry_fts(rowid, text) SELECT id, text FROM {waiting}")
        db.execute(
            "INSERT INTO search_pair_fts(rowid, pairs) "
            f"SELECT id, search_pairs(text) FROM {waiting}"
        )
        db.execute(
            f'UPDATE search_entry_fts_progress SET indexed_upto = (SELECT max(id) FROM "{SEARCH}")'
        )
        db.execute("COMMIT")
    fts_s = time.perf_counter() - started - load_s - index_s
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return {
        "database": "sqlite",
        "rows": counts,
        "templates": len(templates),
        "insert_s": round(load_s, 2),
        "index_s": round(index_s, 2),
        "fts_s": round(fts_s, 2),
        "total_s": round(time.perf_counter() - started, 2),
    }


def bulk_clone_postgres(
    url: str,
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
    """:func:`bulk_clone` for PostgreSQL: the same clones, written with COPY. Secondary indexes
    (not the primary keys and unique constraints) are dropped for the load and rebuilt after
    it, foreign-key triggers are off during the COPY (the rows are consistent by
    construction), and the tables are vacuumed and analysed at the end, as autovacuum would
    leave them."""
    import uuid

    import psycopg
    from psycopg.types.json import Jsonb

    started = time.perf_counter()
    now = now.astimezone(UTC)
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("SET maintenance_work_mem = '512MB'")

        def columns(table: str) -> tuple[list[str], set[str]]:
            rows = db.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = %s ORDER BY ordinal_position",
                (table,),
            ).fetchall()
            return [r[0] for r in rows], {r[0] for r in rows if r[1] in ("json", "jsonb")}

        session_cols, session_json = columns(SESSION)
        templates = [
            list(row)
            for row in db.execute(
                f'SELECT * FROM "{SESSION}" WHERE external_id NOT LIKE %s ORDER BY id',
                ("%~bench~%",),
            )
        ]
        if not templates:
            raise RuntimeError("no template sessions to clone: ingest some documents first")
        json_at = [session_cols.index(c) for c in session_json]
        for row in templates:
            for i in json_at:
                row[i] = Jsonb(row[i])
        derived_tables = (*DERIVED, SEARCH) if with_search else DERIVED
        derived_cols: dict[str, list[str]] = {}
        derived: dict[str, dict[Any, list[list[Any]]]] = {
            t: defaultdict(list) for t in derived_tables
        }
        for table in derived_tables:
            cols, _ = columns(table)
            cols = [c for c in cols if c != "id"]  # the sequence numbers the copies
            derived_cols[table] = cols
            sid = cols.index("session_id")
            quoted = ", ".join(f'"{c}"' for c in cols)
            for row in db.execute(
                f'SELECT {quoted} FROM "{table}" WHERE session_id IN '
                f'(SELECT id FROM "{SESSION}" WHERE external_id NOT LIKE %s)',
                ("%~bench~%",),
            ):
                derived[table][row[sid]].append(list(row))
        version_cols: list[str] = []
        if with_bodies:
            version_cols = [c for c in columns("sessions_api_documentversion")[0] if c != "id"]
        source = Source(session_cols, templates, derived_cols, derived, version_cols, plants or {})
        tables = [SESSION, *derived_tables] + (
            ["sessions_api_documentversion", "sessions_api_documentbody"] if with_bodies else []
        )
        indexes = db.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = ANY(%s) "
            "AND i.schemaname = current_schema() "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            (tables,),
        ).fetchall()
        for name, _ in indexes:
            db.execute(f'DROP INDEX "{name}"')
        counts = {"sessions": 0, **{t: 0 for t in derived_tables}}

        def copy_rows(table: str, cols: list[str], rows: list[Any]) -> None:
            quoted = ", ".join(f'"{c}"' for c in cols)
            with db.cursor().copy(f'COPY "{table}" ({quoted}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)

        for chunk in _clone_chunks(
            source,
            count=count,
            start_index=start_index,
            now=now,
            days=days,
            seed=seed,
            expire=expire,
            with_bodies=with_bodies,
            body=_stand_in_body(body_bytes),
            new_id=lambda bits: uuid.UUID(int=bits),
            out_time=lambda value: value,
        ):
            with db.transaction():
                db.execute("SET LOCAL session_replication_role = replica")
                copy_rows(SESSION, session_cols, chunk.sessions)
                for table in derived_tables:
                    copy_rows(table, derived_cols[table], chunk.derived[table])
                    counts[table] += len(chunk.derived[table])
                if with_bodies:
                    copy_rows("sessions_api_documentversion", version_cols, chunk.versions)
                    copy_rows(
                        "sessions_api_documentbody",
                        ["session_id", "version", "body"],
                        chunk.bodies,
                    )
            counts["sessions"] += len(chunk.sessions)
        load_s = time.perf_counter() - started
        for _, sql in indexes:
            db.execute(sql)
        index_s = time.perf_counter() - started - load_s
        for table in tables:
            db.execute(f'VACUUM (ANALYZE) "{table}"')
    return {
        "database": "postgresql",
        "rows": counts,
        "templates": len(templates),
        "insert_s": round(load_s, 2),
        "index_s": round(index_s, 2),
        "total_s": round(time.perf_counter() - started, 2),
    }
