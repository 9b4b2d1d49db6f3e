"""SQLite's full-text table is filled by a job instead of by the writes: an insert no longer
indexes the rows waiting once there are 64 of them, but only once there are more than
``waiting_limit`` (2,048, about 4 MB of text), and then only the oldest quarter of them, so
that a writer holds the lock for a short catch-up only when the job falls behind. Search reads
the waiting rows directly, as before. The limit is a column of the progress row, so it can be
changed without a migration. Self-contained: the raw SQL names only this app's own tables.
"""

from django.db import migrations

_INDEXED = "(SELECT indexed_upto FROM search_entry_fts_progress)"
_LIMIT = "(SELECT waiting_limit FROM search_entry_fts_progress)"
# The id of the last row a catch-up by the trigger indexes: the oldest quarter of the limit's
# worth of waiting rows (ids have gaps where rows were deleted, so counted, not added).
_UPTO = (
    "coalesce((SELECT id FROM sessions_api_searchentry WHERE id > "
    f"{_INDEXED} ORDER BY id LIMIT 1 OFFSET max({_LIMIT} / 4, 1) - 1), new.id)"
)

FORWARD = [
    "ALTER TABLE search_entry_fts_progress ADD COLUMN waiting_limit INTEGER NOT NULL DEFAULT 2048",
    "DROP TRIGGER IF EXISTS search_entry_fts_catch_up",
    "CREATE TRIGGER search_entry_fts_catch_up AFTER INSERT ON sessions_api_searchentry "
    f"WHEN new.id - {_INDEXED} > {_LIMIT} BEGIN "
    "INSERT INTO search_entry_fts(rowid, text) SELECT id, text FROM sessions_api_searchentry "
    f"WHERE id > {_INDEXED} AND id <= {_UPTO}; "
    f"UPDATE search_entry_fts_progress SET indexed_upto = {_UPTO}; END",
]
# What migration 0014 made: every waiting row indexed by the insert that leaves more than 64.
BACKWARD = [
    "DROP TRIGGER IF EXISTS search_entry_fts_catch_up",
    "ALTER TABLE search_entry_fts_progress DROP COLUMN waiting_limit",
    "CREATE TRIGGER search_entry_fts_catch_up AFTER INSERT ON sessions_api_searchentry "
    f"WHEN new.id - {_INDEXED} > 64 BEGIN "
    "INSERT INTO search_entry_fts(rowid, text) SELECT id, text FROM sessions_api_searchentry "
    f"WHERE id > {_INDEXED} AND id <= new.id; "
    "UPDATE search_entry_fts_progress SET indexed_upto = new.id; END",
]


def _sqlite(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "sqlite":
            for statement in statements:
                schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_api", "0017_jobrun_history_index"),
    ]

    operations = [
        migrations.RunPython(_sqlite(FORWARD), _sqlite(BACKWARD)),
    ]
