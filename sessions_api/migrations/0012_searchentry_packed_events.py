"""Search entries packed: a stored row holds a run of consecutive timeline events, one line of
text per event, with each line's [seq, kind] in ``events`` and the run's smallest and largest
seq; the session's own fields keep a row of their own. The trigram index costs per distinct
trigram per row, so one row per event cost about three times the tokenizing itself.

Existing entries are converted session by session. On SQLite the FTS5 table and its triggers
are dropped first (so the conversion does not re-tokenize every row twice) and made again
after, now with ``columnsize=0`` (nothing reads the per-row token counts), then rebuilt from
the packed rows once. Self-contained: the packing is repeated here, and the raw SQL names only
this app's own tables.
"""

from django.db import migrations, models

PACK_CHARS = 32_000
SEPARATOR = "\n"

FTS_DROP = [
    "DROP TRIGGER IF EXISTS search_entry_fts_update",
    "DROP TRIGGER IF EXISTS search_entry_fts_delete",
    "DROP TRIGGER IF EXISTS search_entry_fts_insert",
    "DROP TABLE IF EXISTS search_entry_fts",
]


def _fts_create(options):
    return [
        "CREATE VIRTUAL TABLE search_entry_fts USING fts5("
        "text, content='sessions_api_searchentry', content_rowid='id', tokenize='trigram', "
        f"{options})",
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


def _sqlite(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "sqlite":
            for statement in statements:
                schema_editor.execute(statement)

    return run


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
                "events": [[seq, kind] for _, seq, kind, _ in run],
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
                    "events": [[seq, kind]],
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


def _each_session(SearchEntry):
    ids = SearchEntry.objects.order_by().values_list("session_id", flat=True).distinct()
    yield from ids.iterator(chunk_size=2000)


def pack_entries(apps, schema_editor):
    SearchEntry = apps.get_model("sessions_api", "SearchEntry")
    for session_id in _each_session(SearchEntry):
        rows = SearchEntry.objects.filter(session_id=session_id)
        entries = list(
            rows.order_by("event_index").values_list("event_index", "seq", "kind", "text")
        )
        rows.delete()
        SearchEntry.objects.bulk_create(
            SearchEntry(session_id=session_id, kind="", **row) for row in _pack(entries)
        )


def unpack_entries(apps, schema_editor):
    SearchEntry = apps.get_model("sessions_api", "SearchEntry")
    for session_id in _each_session(SearchEntry):
        rows = SearchEntry.objects.filter(session_id=session_id)
        packed = list(rows.order_by("event_index").values_list("event_index", "events", "text"))
        rows.delete()
        SearchEntry.objects.bulk_create(
            SearchEntry(
                session_id=session_id,
                event_index=first + i,
                seq=seq,
                last_seq=seq,
                kind=kind,
                events=[[seq, kind]],
                text=line,
            )
            for first, events, text in packed
            for i, ((seq, kind), line) in enumerate(zip(events, text.split(SEPARATOR), strict=True))
        )


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_api", "0011_drop_session_search_text"),
    ]

    operations = [
        migrations.RunPython(_sqlite(FTS_DROP), _sqlite(_fts_create("detail=none"))),
        migrations.AddField(
            model_name="searchentry",
            name="last_seq",
            field=models.IntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="searchentry",
            name="events",
            field=models.JSONField(default=list),
        ),
        migrations.RunPython(pack_entries, unpack_entries),
        migrations.RemoveField(model_name="searchentry", name="kind"),
        migrations.RunPython(_sqlite(_fts_create("detail=none, columnsize=0")), _sqlite(FTS_DROP)),
    ]
