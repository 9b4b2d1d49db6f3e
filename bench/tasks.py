"""Work that runs inside Django, each task in its own process (``python -m bench.tasks``).

A fresh process per task keeps benchmarks apart (caches, connections) and gives each its own
peak RSS (VmHWM). DATA_DIR is set before Django starts, so nothing touches ./var.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import self_peak_rss_mb, summary_ms, write_json


def setup(data_dir: str) -> None:
    os.environ["DATA_DIR"] = data_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    # As the web server's worker does once its application is loaded (config/wsgi.py).
    from config.runtime import freeze_startup_objects

    freeze_startup_objects(import_views=True)


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


# --- preparation -------------------------------------------------------------------------------


def task_prepare(data_dir: str, params: dict[str, Any]) -> dict[str, Any]:
    """Migrate a fresh database; create roles, prices, an API key and a logged-in session."""
    from django.conf import settings
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.auth.models import Group
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from sessions_api.access import keys

    call_command("migrate", verbosity=0, interactive=False)
    call_command("ensure_roles", verbosity=0)
    call_command("seed_prices", verbosity=0)
    key = keys.create_api_key(name="bench", scopes=["ingest", "read", "write", "admin"]).key
    user = get_user_model().objects.create_superuser(
        username="bench", email="bench@example.com", password="bench-password-123"
    )
    user.groups.add(Group.objects.get(name="admin"))
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return {"api_key": key, "session_cookie": store.session_key}


def task_ingest(data_dir: str, params: dict[str, Any]) -> dict[str, Any]:
    """Ingest pickled [(body, external_id or None)] through services.ingest_document."""
    from sessions_api.ingest import services

    items = pickle.loads(Path(params["pickle"]).read_bytes())
    start = time.perf_counter()
    ids, created = [], 0
    now = datetime.now(UTC) - timedelta(minutes=params.get("minutes_ago", 0))
    for body, external_id in items:
        outcome = services.ingest_document(body=body, external_id=external_id, now=now)
        ids.append(outcome.id)
        created += outcome.created
    return {"ids": ids, "created": created, "seconds": round(time.perf_counter() - start, 3)}


def task_bulk(data_dir: str, params: dict[str, Any]) -> dict[str, Any]:
    from django.db import connection

    from bench.datagen import bulk_clone, bulk_clone_postgres

    if connection.vendor == "postgresql":
        load, target = bulk_clone_postgres, os.environ["DATABASE_URL"]
    else:
        load, target = bulk_clone, Path(data_dir) / "observatory.sqlite3"
    loaded = load(
        target,
        count=params["count"],
        start_index=params["start_index"],
        now=datetime.fromisoformat(params["now"]),
        days=params["days"],
        seed=params.get("seed", 11),
        expire=params.get("expire"),
        with_bodies=params.get("with_bodies", False),
        with_search=params.get("with_search", False),
        plants=params.get("plants"),
    )
    return {**loaded, "peak_rss_mb": self_peak_rss_mb()}


# --- B4: lists ---------------------------------------------------------------------------------


def task_lists(data_dir: str, params: dict[str, Any]) -> dict[str, Any]:
    """List queries in-process (server time without HTTP): keyset pages vs OFFSET pages."""
    from django.db.models import Count, Q

    from sessions_api.models import Session, ToolCallRecord
    from sessions_api.sessions import cursors, selectors
    from sessions_api.sessions.records import record_from_row

    limit = 50
    total = Session.objects.count()
    depth_pages = min(params.get("depth_pages", 10_000), max(1, total // limit // 2))
    offset = depth_pages * limit - limit
    repeat = params.get("repeat", 15)
    agent = (
        Session.objects.exclude(agent="").values("agent").annotate(n=Count("id")).order_by("-n")
    )[0]["agent"]
    tool = ToolCallRecord.objects.values("name").annotate(n=Count("id")).order_by("-n")[0]["name"]
    now = datetime.now(UTC)
    since = now - timedelta(days=7)
    filters = {
        "first_page": ({}, selectors.SessionFilters()),
        "status": ({"status": "completed"}, selectors.SessionFilters(status=["completed"])),
        "agent_errors": (
            {"agent": agent, "has_errors": "true"},
            selectors.SessionFilters(agent=agent, has_errors=True),
        ),
        "tool_since": (
            {"tool": tool, "since": since.isoformat()},
            selectors.SessionFilters(tool=tool, since=since),
        ),
    }
    # The cursor a client would hold after paging to `depth_pages` (read once, untimed).
    row = (
        Session.objects.order_by("-updated_at", "-id").values_list("updated_at", "id")[
            offset - 1 : offset
        ]
    )[0]
    deep_cursor = cursors.encode_cursor("-updated_at", row[0], str(row[1]))
    results: dict[str, Any] = {}
    for name, (_, flt) in filters.items():
        selectors.list_sessions(filters=flt, limit=limit)  # warm
        results[f"keyset_{name}"] = summary_ms(
            timed(lambda f=flt: selectors.list_sessions(filters=f, limit=limit), repeat)
        )
    results["keyset_deep"] = summary_ms(
        timed(
            lambda: selectors.list_sessions(
                filters=selectors.SessionFilters(), cursor=deep_cursor, limit=limit
            ),
            repeat,
        )
    )

    def offset_page(start: int) -> list[Any]:
        rows = Session.objects.order_by("-updated_at", "-id")[start : start + limit]
        return [record_from_row(r) for r in rows]

    # The keyset query written so SQLite can seek the (updated_at, id) index: a leading
    # `updated_at <= cursor` range, then the tie-break (the form proposed in BENCHMARKS.md).
    value, last_id = cursors.decode_cursor(
        deep_cursor, cursors.aware_datetime, cursors.session_id, order="-updated_at"
    )

    def seek_page() -> list[Any]:
        rows = Session.objects.filter(
            Q(updated_at__lte=value) & (Q(updated_at__lt=value) | Q(id__lt=last_id))
        ).order_by("-updated_at", "-id")[:limit]
        return [record_from_row(r) for r in rows]

    results["keyset_deep_seek_form"] = summary_ms(timed(seek_page, repeat))
    results["offset_first"] = summary_ms(timed(lambda: offset_page(0), repeat))
    results["offset_deep"] = summary_ms(timed(lambda: offset_page(offset), max(3, min(repeat, 5))))
    deep_page = selectors.list_sessions(
        filters=selectors.SessionFilters(), cursor=deep_cursor, limit=limit
    ).items
    same = (
        [r.id for r in deep_page]
        == [r.id for r in offset_page(offset)]
        == [r.id for r in seek_page()]
    )
    return {
        "sessions": total,
        "depth_pages": depth_pages,
        "depth_rows": offset,
        "deep_cursor": deep_cursor,
        "keyset_equals_offset": same,
        "http_filters": {name: query for name, (query, _) in filters.items()},
        "inproc": results,
        "peak_rss_mb": self_peak_rss_mb(),
    }


# --- B5: timeline ------------------------------------------------------------------------------


def task_timeline(data_dir: str, params: dict[str, Any]) -> dict[str, Any]:
    """Cold parse of a stored version, and the paged window render vs a whole-session render."""
    from django.core.cache import cache
    from django.template.loader import render_to_string

    from sessions_api.sessions import selectors

    out: dict[str, Any] = {}
    for label, session_id in params["sessions"].items():
        record = selectors.get_session(session_id=session_id)
        cold = []
        for _ in range(params.get("repeat", 3)):
            cache.clear()
            t0 = time.perf_counter()
            parsed = selectors.get_parsed_version(record=record)
            cold.append(time.perf_counter() - t0)
        events = parsed.events
        cache.clear()
        t0 = time.perf_counter()
        window = selectors.get_timeline_window(record=record, start=0, limit=200)
        html = render_to_string(
            "dashboard/partials/timeline_events.html", {"events": window.events, "record": record}
        )
        paged_cold = time.perf_counter() - t0
        paged = timed(
            lambda window=window, record=record: render_to_string(
                "dashboard/partials/timeline_events.html",
                {"events": window.events, "record": record},
            ),
            params.get("repeat", 3),
        )
        whole = timed(
            lambda events=events, record=record: render_to_string(
                "dashboard/partials/timeline_events.html", {"events": events, "record": record}
            ),
            max(1, params.get("repeat", 3) - 1),
        )
        whole_html = render_to_string(
            "dashboard/partials/timeline_events.html", {"events": events, "record": record}
        )
        out[label] = {
            "messages": record.summary.message_count,
            "events": len(events),
            "body_bytes": len(selectors.get_raw_body(session_id=record.id, version=record.version)),
            "cold_parse_ms": summary_ms(cold),
            "paged_first_window_cold_ms": round(paged_cold * 1000, 2),
            "render_200_ms": summary_ms(paged),
            "render_whole_ms": summary_ms(whole),
            "html_bytes_200": len(html),
            "html_bytes_whole": len(whole_html),
            "rows_200": html.count('<li class="ev'),
            "rows_whole": whole_html.count('<li class="ev'),
        }
    out["peak_rss_mb"] = self_peak_rss_mb()
    return out


# --- B6: rollups -------------------------------------------------------------------------------


def task_rollups(data_dir: str, params: dict[str, Any]) -> dict[str, Any]:
    from django.db import connection

    from sessions_api.analytics import overview as analytics
    from sessions_api.analytics import rollups
    from sessions_api.models import RollupBucket, Session

    now = datetime.now(UTC)
    sessions = Session.objects.count()
    full_runs = []
    full_cpu = []
    rss_after_full = None
    for _ in range(params.get("full_repeat", 1)):
        t0, c0 = time.perf_counter(), time.process_time()
        result = rollups.rebuild_rollups(now=now)
        full_runs.append(time.perf_counter() - t0)
        # This process's CPU: SQLite's work is in it, PostgreSQL's is in the server.
        full_cpu.append(time.process_time() - c0)
        rss_after_full = rss_after_full or self_peak_rss_mb()
    buckets = RollupBucket.objects.count()
    incremental_runs = []
    incremental_cpu = []
    changes = params.get("changes", 1000)
    for step in range(1, params.get("incremental_repeat", 3) + 1):
        at = now + timedelta(minutes=10 * step)
        # 1,000 changes: the most recently active sessions get a new version (what ingest
        # writes to the index row: new status, new received time).
        ids = list(Session.objects.order_by("-updated_at").values_list("id", flat=True)[:changes])
        with connection.cursor() as cursor:
            for chunk_start in range(0, len(ids), 500):
                chunk = [i.hex for i in ids[chunk_start : chunk_start + 500]]
                marks = ",".join(["%s"] * len(chunk))
                cursor.execute(
                    "UPDATE sessions_api_session SET last_received_at = %s, "
                    "latest_version = latest_version + 1, "
                    f"status = CASE status WHEN 'running' THEN 'completed' ELSE status END "
                    f"WHERE id IN ({marks})",
                    [str((at - timedelta(seconds=1)).replace(tzinfo=None)), *chunk],
                )
        t0, c0 = time.perf_counter(), time.process_time()
        inc = rollups.rollup_analytics(now=at)
        incremental_runs.append(time.perf_counter() - t0)
        incremental_cpu.append(time.process_time() - c0)
    # What the overview page reads (analytics.overview: RollupBucket rows for whole hours, the
    # open edges from the index), one chart the same way, and that chart straight from the
    # index (the naive baseline), for 24 hours and 30 days.
    charts: dict[str, Any] = {}
    repeat = params.get("chart_repeat", 5 if sessions < 300_000 else 3)
    for label, span in (("24h", timedelta(hours=24)), ("30d", timedelta(days=30))):
        since, until = now - span, now
        gran = analytics.granularity_for(since, until)

        def overview(since=since, until=until, gran=gran) -> None:
            analytics.overview(since=since, until=until, granularity=gran)

        def one_chart(since=since, until=until) -> None:
            rollups.aggregate_index(lo=since, hi=until, series=["sessions_by_status"])

        def from_rollups(since=since, until=until, gran=gran) -> None:
            analytics.sessions_by_status(since=since, until=until, granularity=gran)

        charts[label] = {
            "granularity": gran,
            "overview_all_charts_ms": summary_ms(timed(overview, repeat)),
            "sessions_by_status_index_ms": summary_ms(timed(one_chart, repeat)),
            "sessions_by_status_rollup_ms": summary_ms(timed(from_rollups, repeat)),
        }
    return {
        "sessions": sessions,
        "buckets": buckets,
        "full_rebuild_s": [round(x, 3) for x in full_runs],
        "full_rebuild_cpu_s": [round(x, 3) for x in full_cpu],
        "full_hours": result.hours_recomputed,
        "incremental_s": [round(x, 3) for x in incremental_runs],
        "incremental_cpu_s": [round(x, 3) for x in incremental_cpu],
        "incremental_hours": inc.hours_recomputed,
        "incremental_changed_sessions": inc.changed_sessions,
        "changes": changes,
        "charts": charts,
        "peak_rss_mb_after_full": rss_after_full,
        "peak_rss_mb": self_peak_rss_mb(),
    }


# --- B7: expiry and purge ----------------------------------------------------------------------


def task_cleanup(data_dir: str, params: dict[str, Any]) -> dict[str, Any]:
    """expire_sessions then purge_sessions (the jobs' defaults), timing every write
    transaction: with transaction_mode IMMEDIATE the write lock is held from BEGIN to COMMIT."""
    from django.db import connection

    from sessions_api import conf
    from sessions_api.lifecycle import expiry, purge

    connection.ensure_connection()
    holds: list[float] = []
    begin_at: list[float] = []
    original_commit = connection._commit
    original_rollback = connection._rollback
    if connection.vendor == "sqlite":
        original_begin = connection._start_transaction_under_autocommit

        def begin() -> None:
            original_begin()
            begin_at.append(time.perf_counter())

        connection._start_transaction_under_autocommit = begin
    else:
        # PostgreSQL: a transaction runs from leaving autocommit to COMMIT; its row locks (and
        # the snapshot VACUUM must respect) last that long.
        original_set = connection._set_autocommit

        def set_autocommit(autocommit: bool) -> None:
            original_set(autocommit)
            if not autocommit:
                begin_at.append(time.perf_counter())

        connection._set_autocommit = set_autocommit

    def end(original):
        def wrapped() -> None:
            original()
            if begin_at:
                holds.append(time.perf_counter() - begin_at.pop())

        return wrapped

    connection._commit = end(original_commit)
    connection._rollback = end(original_rollback)

    now = datetime.now(UTC)
    c0 = time.process_time()
    t0 = time.perf_counter()
    expired = expiry.expire_sessions(now=now, batch_size=params.get("expire_batch", 500))
    expire_s = time.perf_counter() - t0
    grace = conf.purge_expired_grace() or timedelta(0)
    t1 = time.perf_counter()
    purged = purge.purge_sessions(
        now=now + grace + timedelta(minutes=1), batch_size=params.get("purge_batch", 200)
    )
    purge_s = time.perf_counter() - t1
    return {
        "expired": expired.counts(),
        "purged": purged.counts(),
        "expire_s": round(expire_s, 3),
        "purge_s": round(purge_s, 3),
        "total_s": round(expire_s + purge_s, 3),
        # This process's CPU (on SQLite the database's work too; PostgreSQL's is the server's).
        "cpu_s": round(time.process_time() - c0, 3),
        "transactions": len(holds),
        "lock_hold_ms": summary_ms(holds),
        "lock_holds_over_200ms": sum(1 for h in holds if h > 0.2),
        "peak_rss_mb": self_peak_rss_mb(),
    }


# --- B2: the raw ceiling -----------------------------------------------------------------------


def task_raw_ceiling(data_dir: str, params: dict[str, Any]) -> dict[str, Any]:
    """orjson + bare sqlite3 executemany of the same documents in one transaction (no Django,
    no validation), with the app's pragmas (WAL, synchronous=NORMAL)."""
    import sqlite3

    import orjson

    bodies = pickle.loads(Path(params["pickle"]).read_bytes())
    runs = []
    for run in range(params.get("runs", 5)):
        path = Path(data_dir) / f"raw-{run}.sqlite3"
        db = sqlite3.connect(str(path), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE docs (id INTEGER PRIMARY KEY, external_id TEXT, body BLOB)")
        t0 = time.perf_counter()
        rows = []
        for i, body in enumerate(bodies):
            doc = orjson.loads(body)
            external = doc.get("id") if isinstance(doc, dict) else None
            rows.append((i, str(external), body))
        db.execute("BEGIN")
        db.executemany("INSERT INTO docs VALUES (?, ?, ?)", rows)
        db.execute("COMMIT")
        runs.append(time.perf_counter() - t0)
        db.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    rates = [len(bodies) / r for r in runs]
    return {
        "documents": len(bodies),
        "docs_per_s_runs": [round(r, 1) for r in rates],
        "docs_per_s": round(statistics.median(rates), 1),
        "peak_rss_mb": self_peak_rss_mb(),
    }


# --- B9: a session that grows ------------------------------------------------------------------


def task_growing_session(data_dir: str, params: dict[str, Any]) -> dict[str, Any]:
    """One chat session saved whole every ``every`` messages up to ``messages``, through
    ``ingest_document``, as an agent saves after each turn; then what the store holds for it and
    three versions (first, middle, latest) read back and checked byte for byte."""
    import hashlib

    from django.db.models import Count, Sum
    from django.db.models.functions import Length

    from bench.datagen import chat_document
    from sessions_api.ingest import services
    from sessions_api.models import DocumentBody
    from sessions_api.sessions import selectors
    from sessions_api.storage import get_document_store

    messages, every = params["messages"], params["every"]
    session_key = params.get("session_key", "conv_growing0000000000000001")
    bodies = [
        chat_document(messages=n, session_id=session_key) for n in range(every, messages + 1, every)
    ]
    # Two untimed saves of another session first (a new session, then a new version): the
    # timed saves must not pay the process's first-call costs (lazy imports, compiled
    # patterns, the database connection) on either path.
    for warm_up in (every, 2 * every):
        services.ingest_document(
            body=chat_document(messages=warm_up, session_id=session_key + "-warm-up", seed=2),
            now=datetime.now(UTC),
        )
    saves = []
    digests: dict[int, str] = {}
    session_id = ""
    for body in bodies:
        now = datetime.now(UTC)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        outcome = services.ingest_document(body=body, now=now)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if not outcome.changed:
            raise RuntimeError(f"save of {len(body)} bytes stored no new version")
        session_id = outcome.id
        digests[outcome.version] = hashlib.sha256(body).hexdigest()
        saves.append(
            {
                "version": outcome.version,
                "messages": outcome.summary.message_count,
                "bytes": len(body),
                "cpu_ms": round(cpu * 1000, 3),
                "wall_ms": round(wall * 1000, 3),
            }
        )
    # What the orm store physically holds for the session: every DocumentBody row's bytes.
    # Measured on the rows, not through get(), which returns whole documents however they are
    # kept.
    stored = DocumentBody.objects.filter(session_id=session_id).aggregate(
        rows=Count("id"), bytes=Sum(Length("body"))
    )
    store = get_document_store()
    # The API's /raw reads through the selector; today it is the store's get, and the two are
    # timed apart so a read path that reassembles versions shows where its cost lands.
    readers = {
        "store_get": lambda version: store.get(session_id=session_id, version=version),
        "selectors_get_raw_body": lambda version: selectors.get_raw_body(
            session_id=session_id, version=version
        ),
    }
    latest = len(bodies)
    reads: dict[str, Any] = {}
    for version in sorted({1, max(1, latest // 2), latest}):
        reads[str(version)] = {"bytes": saves[version - 1]["bytes"]}
        for name, reader in readers.items():
            body = reader(version)
            reads[str(version)][name] = {
                "byte_for_byte": hashlib.sha256(body).hexdigest() == digests[version],
                "ms": summary_ms(
                    timed(lambda r=reader, v=version: r(v), params.get("read_repeat", 5))
                ),
            }
    cpu = [s["cpu_ms"] for s in saves]
    return {
        "session_id": session_id,
        "saves": saves,
        "stored_rows": stored["rows"],
        "stored_bytes": stored["bytes"],
        "latest_bytes": saves[-1]["bytes"],
        "whole_documents_bytes": sum(s["bytes"] for s in saves),
        "first_save_cpu_ms": cpu[0],
        "last_save_cpu_ms": cpu[-1],
        "total_save_cpu_ms": round(sum(cpu), 3),
        "reads": reads,
        "byte_for_byte": all(
            figures[name]["byte_for_byte"] for figures in reads.values() for name in readers
        ),
        "peak_rss_mb": self_peak_rss_mb(),
    }


# --- B10: search ----------------------------------------------------------------------------------


def task_search(data_dir: str, params: dict[str, Any]) -> dict[str, Any]:
    """Search queries in-process (server time without HTTP): a page of 50 results and their
    snippets, per query; the size of the search index."""
    from django.db import connection

    from sessions_api.models import SearchEntry, Session
    from sessions_api.search import matching
    from sessions_api.search.query import parse_query
    from sessions_api.sessions import selectors

    now = datetime.now(UTC)
    repeat = params.get("repeat", 15)
    results: dict[str, Any] = {}
    for name, spec in params["queries"].items():
        since = spec.get("since_days")
        flt = selectors.SessionFilters(
            q=spec["q"],
            status=spec.get("status", []),
            since=now - timedelta(days=since) if since else None,
        )

        def search(f=flt) -> int:
            page = selectors.list_sessions(filters=f, limit=50)
            found = matching.first_matches([r.id for r in page.items], parse_query(f.q))
            return len(page.items) + 0 * len(found)

        hits = search()  # warm
        timings = summary_ms(timed(search, repeat))
        results[name] = {"query": spec, "results_on_page": hits, **timings}
    plain = selectors.SessionFilters()
    selectors.list_sessions(filters=plain, limit=50)
    results["plain_first_page"] = summary_ms(
        timed(lambda: selectors.list_sessions(filters=plain, limit=50), repeat)
    )
    recall = _search_recall(params.get("recall", {}))
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name, SUM(pgsize) FROM dbstat WHERE name LIKE 'search_entry_fts%' "
                "OR name LIKE 'search_pair_fts%' "
                "OR name IN ('sessions_api_searchentry', 'search_session_event_idx') GROUP BY name"
            )
        else:
            cursor.execute(
                "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relname IN "
                "('sessions_api_searchentry', 'search_entry_text_trgm', "
                "'search_session_event_idx', 'search_entry_pairs')"
            )
        sizes = {name: int(size) for name, size in cursor.fetchall()}
    return {
        "vendor": connection.vendor,
        "sessions": Session.objects.count(),
        "entries": SearchEntry.objects.count(),
        "index_bytes": sizes,
        "inproc": results,
        "recall": recall,
        "peak_rss_mb": self_peak_rss_mb(),
    }


def _search_recall(spec: dict[str, Any]) -> dict[str, Any]:
    """Whether cloned sessions are found as ingested ones would be: every session a planted
    text was put in (``planted``: text -> how many), counted through the same filter as ``q``;
    and a few clones by their own external id (``clones``: the clone numbers; the id ends in
    ``~bench~<number>``, which no other clone's does when the number is over a tenth of the
    total), each found alone."""
    from sessions_api.models import Session
    from sessions_api.search import matching
    from sessions_api.search.query import parse_query

    def holding(text: str) -> list[str]:
        rows = matching.filter_matching(Session.objects.all(), parse_query(f'"{text}"'))
        return [str(pk) for pk in rows.values_list("pk", flat=True)]

    planted = {
        text: {"expected": expected, "found": len(holding(text))}
        for text, expected in spec.get("planted", {}).items()
    }
    clones = {}
    for number in spec.get("clones", []):
        suffix = f"~bench~{number}"
        own = Session.objects.filter(external_id__endswith=suffix).values_list("pk", flat=True)
        clones[str(number)] = {"own": [str(pk) for pk in own], "found": holding(suffix)}
    complete = all(v["expected"] == v["found"] for v in planted.values()) and all(
        len(v["own"]) == 1 and v["found"] == v["own"] for v in clones.values()
    )
    return {"planted": planted, "clones": clones, "complete": complete}


def _otel_stored() -> dict[str, int]:
    """Sessions of format otel, and the spans their latest documents hold."""
    from sessions_api.models import Session
    from sessions_api.storage import get_document_store

    store = get_document_store()
    rows = list(Session.objects.filter(format="otel").values_list("id", "latest_version"))
    spans = sum(
        len(json.loads(store.get(session_id=str(row_id), version=version))["spans"])
        for row_id, version in rows
    )
    return {"sessions": len(rows), "spans": spans}


def task_otlp_fold(data_dir: str, params: dict[str, Any]) -> dict[str, Any]:
    """The fold_otel_spans job over every span B11 left pending: spans and sessions per second
    of CPU and of wall time, as one worker process runs it."""
    from django.utils import timezone

    from sessions_api.ingest.otlp import fold_otel_spans

    wall, cpu = time.perf_counter(), time.process_time()
    result = fold_otel_spans(now=timezone.now())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        **result.counts(),
        "stored": _otel_stored(),
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "spans_per_s": round(result.folded_spans / wall, 1) if wall else None,
        "sessions_per_s": round(result.sessions_changed / wall, 1) if wall else None,
        # On a shared machine the wall time is mostly waiting for a core: per CPU second too.
        "spans_per_cpu_s": round(result.folded_spans / cpu, 1) if cpu else None,
        "peak_rss_mb": self_peak_rss_mb(),
    }


def task_ingest_cpu(data_dir: str, params: dict[str, Any]) -> dict[str, Any]:
    """CPU seconds to ingest documents, with the search index or without it (``search``: false
    leaves the entries out: what ingest cost before search). The documents: the pickled ones
    (``pickle``, new sessions), or one chat session saved every ``every`` messages up to
    ``messages`` (``growing``, as B9 saves it: every save after the first is merged, so only
    its appended events are indexed). ``cpu_s`` is ingest's own; ``index_job_cpu_s`` what the
    index_search job spent on the same rows."""
    from bench.datagen import chat_document
    from sessions_api.ingest import incremental, indexing, services
    from sessions_api.search import index

    if not params.get("search", True):
        indexing.build_entries = lambda session, events=None: []
        index.write_entries = lambda *args, **kwargs: None
        index.remove_from = lambda *args, **kwargs: None
        index.events_before = lambda session_pk, seq: 0  # as if numbered: the merge still runs
        incremental.session_entry = lambda *args, **kwargs: None
    growing = params.get("growing")
    if growing:
        every, key = growing["every"], "conv_b10_growing_0001"
        items = [
            (chat_document(messages=n, session_id=key), None)
            for n in range(every, growing["messages"] + 1, every)
        ]
        # One untimed save of another session: the timed ones must not pay first-call costs.
        services.ingest_document(
            body=chat_document(messages=every, session_id=key + "-warm-up", seed=2),
            now=datetime.now(UTC),
        )
    else:
        items = pickle.loads(Path(params["pickle"]).read_bytes())
    now = datetime.now(UTC)
    merges = 0
    real_merge = incremental.merge

    def counting_merge(*args, **kwargs):
        nonlocal merges
        merged = real_merge(*args, **kwargs)
        merges += merged is not None
        return merged

    incremental.merge = counting_merge
    # The index_search job, as a worker runs it beside ingest: every ``index_every`` documents,
    # its CPU counted apart (``index_job_cpu_s``); often enough that no write indexes rows
    # itself (migration 0018: past 2,048 waiting rows).
    index_every = params.get("index_every", 100)
    job_cpu = 0.0
    server_cpu = _database_server_cpu()
    cpu, wall = time.process_time(), time.perf_counter()
    for n, (body, external_id) in enumerate(items, 1):
        services.ingest_document(body=body, external_id=external_id, now=now)
        if params.get("search", True) and n % index_every == 0:
            job_cpu -= time.process_time()
            index.index_waiting()
            job_cpu += time.process_time()
    ingest_cpu = time.process_time() - cpu - job_cpu
    wall = time.perf_counter() - wall
    if server_cpu is not None:
        server_cpu = _database_server_cpu() - server_cpu
    if params.get("search", True):
        job_cpu -= time.process_time()
        index.index_waiting()
        job_cpu += time.process_time()
    return {
        "documents": len(items),
        "merged": merges,
        "cpu_s": round(ingest_cpu, 3),
        "index_job_cpu_s": round(job_cpu, 3),
        # PostgreSQL's own process for this connection (its trigram and phrase-token indexes
        # are computed there); None on SQLite, which runs in this process.
        "server_cpu_s": None if server_cpu is None else round(server_cpu, 3),
        "wall_s": round(wall, 3),
    }


def _database_server_cpu() -> float | None:
    """CPU seconds of the PostgreSQL backend serving this connection (same machine: its
    /proc entry), or None on SQLite."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


TASKS = {
    "prepare": task_prepare,
    "ingest": task_ingest,
    "bulk": task_bulk,
    "lists": task_lists,
    "timeline": task_timeline,
    "rollups": task_rollups,
    "cleanup": task_cleanup,
    "raw_ceiling": task_raw_ceiling,
    "growing_session": task_growing_session,
    "search": task_search,
    "ingest_cpu": task_ingest_cpu,
    "otlp_fold": task_otlp_fold,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tasks")
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--params", default="{}")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    setup(args.data_dir)
    result = TASKS[args.task](args.data_dir, json.loads(args.params))
    write_json(Path(args.out), result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
