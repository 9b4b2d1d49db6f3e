"""Search entries packed: a stored row holds a run of consecutive timeline events, one line of
text per event, with each line's "seq:kind" in ``events`` and the run's smallest and largest
seq; the session's own fields keep a row of their own. The trigram index costs per distinct
trigram per row, so one row per event cost about three times the tokenizing itself.

Existing entries are converted session by session. On SQLite the FTS5 table and its triggers
are dropped first (so the conversion does not re-tokenize every row twice) and made again
after, filled from the packed rows once, with ``columnsize=0`` (nothing reads the per-row
token counts) and indexing in batches: a flush of FTS5's pending terms costs per distinct
term, so one per saved document cost about as much as tokenizing it. Self-contained: the
packing is repeated here, and the raw SQL names only this app's own tables.
"""

from django.db import migrations, models

PACK_CHARS = 2_000
SEPARATOR = "\n"

FTS_DROP = [
    "DROP TRIGGER IF EXISTS search_entry_fts_update",
    "DROP TRIGGER IF EXISTS search_entry_fts_delete",
    "DROP TRIGGER IF EXISTS search_entry_fts_insert",
    "DROP TABLE IF EXISTS search_entry_fts",
]
# As migration 0010 made it: every insert indexed at once (what reversing this one restores).
FTS_AT_ONCE = [
    "CREATE VIRTUAL TABLE search_entry_fts USING fts5("
    "text, content='sessions_api_searchentry', content_rowid='id', tokenize='trigram', "
    "detail=none)",
    "CREATE TRIGGER search_entry_fts_insert AFTER INSERT ON sessions_api_searchentry BEGIN "
    "INSERT INTO search_entry_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER search_entry_fts_delete AFTER DELETE ON sessions_api_searchentry BEGIN "
    "INSERT INTO search_entry_fts(search_entry_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER search_entry_fts_update AFTER UPDATE ON sessions_api_searchentry BEGIN "
    "INSERT INTO search_entry_fts(search_entry_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); "
    "INSERT INTO search_entry_fts(rowid, text) VALUES (new.id, new.text); END",
    "INSERT INTO search_entry_fts(search_entry_fts) VALUES ('rebuild')",
]
# Rows are indexed in batches: the FTS table holds the rows up to ``indexed_upto`` (ids only
# grow: AUTOINCREMENT), search reads the rows after it directly (search/matching.py), and the
# insert that leaves more than PENDING_ROWS waiting indexes them all, in the writer's
# transaction. The other triggers touch the index only for rows it holds: a 'delete' of a row
# never indexed would corrupt it.
PENDING_ROWS = 64
_INDEXED = "(SELECT indexed_upto FROM search_entry_fts_progress)"
FTS_IN_BATCHES = [
    "CREATE TABLE search_entry_fts_progress ("
    "id INTEGER PRIMARY KEY CHECK (id = 1), indexed_upto INTEGER NOT NULL)",
    "CREATE VIRTUAL TABLE search_entry_fts USING fts5("
    "text, content='sessions_api_searchentry', content_rowid='id', tokenize='trigram', "
    "detail=none, columnsize=0)",
    "CREATE TRIGGER search_entry_fts_catch_up AFTER INSERT ON sessions_api_searchentry "
    f"WHEN new.id - {_INDEXED} > {PENDING_ROWS} BEGIN "
    "INSERT INTO search_entry_fts(rowid, text) SELECT id, text FROM sessions_api_searchentry "
    f"WHERE id > {_INDEXED} AND id <= new.id; "
    "UPDATE search_entry_fts_progress SET indexed_upto = new.id; END",
    "CREATE TRIGGER search_entry_fts_delete AFTER DELETE ON sessions_api_searchentry "
    f"WHEN old.id <= {_INDEXED} BEGIN "
    "INSERT INTO search_entry_fts(search_entry_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER search_entry_fts_update AFTER UPDATE OF text ON sessions_api_searchentry "
    f"WHEN old.id <= {_INDEXED} BEGIN "
    "INSERT INTO search_entry_fts(search_entry_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); "
    "INSERT INTO search_entry_fts(rowid, text) VALUES (new.id, new.text); END",
    "INSERT INTO search_entry_fts(rowid, text) SELECT id, text FROM sessions_api_searchentry",
    "INSERT INTO search_entry_fts_progress (id, indexed_upto) "
    "SELECT 1, coalesce(max(id), 0) FROM sessions_api_searchentry",
]
FTS_IN_BATCHES_DROP = [
    "DROP TRIGGER IF EXISTS search_entry_fts_catch_up",
    *FTS_DROP,
    "DROP TABLE IF EXISTS search_entry_fts_progress",
]


def _sqlite(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "sqlite":
            for statement in statements:
                schema_editor.execute(statement)

    return run


def _event(seq, kind):
    return f"{'' if seq is None else seq}:{kind}"


def _pack(entries):
    """(event_index, seq, kind, text) per event, in order -> packed rows' field values."""
    rows, run, size = [], [], 0

    def close():
        seqs = [seq for _, seq, _, _ in run if seq is not None]
        rows.append(
            {
                "event_index": run[0][0],
                "seq": min(seqs) if seqs else None,
                "last_seq": max(seqs) if seqs else None,
                "events": SEPARATOR.join(_event(seq, kind) for _, seq, kind, _ in run),
                "text": SEPARATOR.join(text for _, _, _, text in run),
            }
        )
        run.clear()

    for entry in entries:
        index, seq, kind, text = entry
        if index == -1:
            rows.append(
                {
                    "event_index": -1,
                    "seq": seq,
                    "last_seq": seq,
                    "events": _event(seq, kind),
                    "text": text,
                }
            )
            continue
        if run and (index != run[-1][0] + 1 or size + len(text) > PACK_CHARS):
            close()
            size = 0
        run.append(entry)
        size += len(text) + 1
    if run:
        close()
    return rows


def _each_session(SearchEntry, alias):
    ids = (
        SearchEntry.objects.using(alias).order_by().values_list("session_id", flat=True).distinct()
    )
    yield from ids.iterator(chunk_size=2000)


def _check_now(schema_editor):
    """PostgreSQL alters no table with foreign-key checks still pending from rows written in
    the same transaction: run them now."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def pack_entries(apps, schema_editor):
    SearchEntry = apps.get_model("sessions_api", "SearchEntry")
    alias = schema_editor.connection.alias  # the database being migrated, not the default
    for session_id in _each_session(SearchEntry, alias):
        rows = SearchEntry.objects.using(alias).filter(session_id=session_id)
        entries = list(
            rows.order_by("event_index").values_list("event_index", "seq", "kind", "text")
        )
        rows.delete()
        SearchEntry.objects.using(alias).bulk_create(
            SearchEntry(session_id=session_id, kind="", **row) for row in _pack(entries)
        )
    _check_now(schema_editor)


def unpack_entries(apps, schema_editor):
    SearchEntry = apps.get_model("sessions_api", "SearchEntry")
    alias = schema_editor.connection.alias  # the database being migrated, not the default
    for session_id in _each_session(SearchEntry, alias):
        rows = SearchEntry.objects.using(alias).filter(session_id=session_id)
        packed = list(rows.order_by("event_index").values_list("event_index", "events", "text"))
        rows.delete()
        SearchEntry.objects.using(alias).bulk_create(
            SearchEntry(
                session_id=session_id,
                event_index=first + i,
                seq=int(seq) if seq else None,
                last_seq=int(seq) if seq else None,
                kind=kind,
                events=_event(seq, kind),
                text=line,
            )
            for first, events, text in packed
            for i, ((seq, _, kind), line) in enumerate(
                zip(
                    (event.partition(":") for event in events.split(SEPARATOR)),
                    text.split(SEPARATOR),
                    strict=True,
                )
            )
        )
    _check_now(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_api", "0013_derived_rows_indexed_by_session_and_message"),
    ]

    operations = [
        migrations.RunPython(_sqlite(FTS_DROP), _sqlite(FTS_AT_ONCE)),
        migrations.AddField(
            model_name="searchentry",
            name="last_seq",
            field=models.IntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="searchentry",
            name="events",
            field=models.TextField(default=""),
            preserve_default=False,
        ),
        migrations.RunPython(pack_entries, unpack_entries),
        # A default, so that reversing the removal can add the column back to stored rows.
        migrations.AlterField(
            model_name="searchentry",
            name="kind",
            field=models.CharField(default="", max_length=16),
        ),
        migrations.RemoveField(model_name="searchentry", name="kind"),
        migrations.RunPython(_sqlite(FTS_IN_BATCHES), _sqlite(FTS_IN_BATCHES_DROP)),
    ]
