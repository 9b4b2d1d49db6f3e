"""The full-text search entries and, per database, the index that searches them.

SQLite: an external-content FTS5 table over the entries' text with the trigram tokenizer
(every run of three characters is a token, so a word, an id or CJK text is found by any part of
it, case-insensitively, with ``LIKE '%term%'``), kept in step by triggers. ``detail=none``: no
token positions, which makes the index about a quarter of the size and its writes about a third
cheaper; ``LIKE`` does not need them. PostgreSQL: a trigram GIN index (pg_trgm) on
UPPER(text), the expression Django's ``icontains`` compares. Self-contained: the raw SQL names
only this migration's own table.
"""

import django.db.models.deletion
from django.db import migrations, models

SQLITE_CREATE = [
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
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS search_entry_fts_update",
    "DROP TRIGGER IF EXISTS search_entry_fts_delete",
    "DROP TRIGGER IF EXISTS search_entry_fts_insert",
    "DROP TABLE IF EXISTS search_entry_fts",
]
POSTGRES_CREATE = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX search_entry_text_trgm ON sessions_api_searchentry "
    "USING gin (UPPER(text) gin_trgm_ops)",
]
POSTGRES_DROP = ["DROP INDEX IF EXISTS search_entry_text_trgm"]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_api", "0009_alerts"),
    ]

    operations = [
        migrations.CreateModel(
            name="SearchEntry",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("event_index", models.IntegerField()),
                ("seq", models.IntegerField(blank=True, null=True)),
                ("kind", models.CharField(max_length=16)),
                ("text", models.TextField()),
                (
                    "session",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="search_entries",
                        to="sessions_api.session",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["session", "event_index"], name="search_session_event_idx")
                ],
            },
        ),
        migrations.RunPython(
            _run({"sqlite": SQLITE_CREATE, "postgresql": POSTGRES_CREATE}),
            _run({"sqlite": SQLITE_DROP, "postgresql": POSTGRES_DROP}),
        ),
    ]
