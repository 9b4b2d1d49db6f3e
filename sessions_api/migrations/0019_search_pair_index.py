"""SQLite: a second full-text table beside the trigram one, of the tokens the spaces between
words make (three characters before a space and three after, casefolded: ``dernum`` for "order
number"), so that a phrase of common words is looked up among the few rows whose tokens include
its own. Contentless (the tokens are not stored), filled and emptied with the trigram table:
by the index job and the writes' catch-up for new rows, by the triggers for rows deleted or
changed, all through ``search_pairs(text)``, a function every connection registers
(sessions_api/search/pairs.py). Self-contained: the token function is repeated here for the fill,
and the raw SQL names only this app's own tables.

PostgreSQL: ``search_pairs(text)``, the same tokens cut from ``UPPER(text)`` (what its
``icontains`` compares), and a GIN index on it. It also makes a token where a line break is
among the three characters (a row's events are one per line), which no phrase asks for.
"""

import re

from django.db import migrations

_BOUNDARY = re.compile(r"(\S{3}) (?=(\S{3}))")


def _tokens(text):
    if text is None:
        return None
    return " ".join(set(map("".join, _BOUNDARY.findall(text.casefold()))))


_INDEXED = "(SELECT indexed_upto FROM search_entry_fts_progress)"
_LIMIT = "(SELECT waiting_limit FROM search_entry_fts_progress)"
_UPTO = (
    "coalesce((SELECT id FROM sessions_api_searchentry WHERE id > "
    f"{_INDEXED} ORDER BY id LIMIT 1 OFFSET max({_LIMIT} / 4, 1) - 1), new.id)"
)
# Every character but separators and controls is part of a token.
_TOKENIZER = "unicode61 categories 'L* N* Co M* P* S*' remove_diacritics 0"

DROP_TRIGGERS = [
    "DROP TRIGGER IF EXISTS search_entry_fts_catch_up",
    "DROP TRIGGER IF EXISTS search_entry_fts_delete",
    "DROP TRIGGER IF EXISTS search_entry_fts_update",
]
FORWARD = [
    *DROP_TRIGGERS,
    "CREATE VIRTUAL TABLE search_pair_fts USING fts5("
    f"pairs, content='', tokenize=\"{_TOKENIZER}\", detail=none, columnsize=0)",
    "INSERT INTO search_pair_fts(rowid, pairs) SELECT id, search_pairs(text) "
    f"FROM sessions_api_searchentry WHERE id <= {_INDEXED}",
    "CREATE TRIGGER search_entry_fts_catch_up AFTER INSERT ON sessions_api_searchentry "
    f"WHEN new.id - {_INDEXED} > {_LIMIT} BEGIN "
    "INSERT INTO search_entry_fts(rowid, text) SELECT id, text FROM sessions_api_searchentry "
    f"WHERE id > {_INDEXED} AND id <= {_UPTO}; "
    "INSERT INTO search_pair_fts(rowid, pairs) SELECT id, search_pairs(text) "
    f"FROM sessions_api_searchentry WHERE id > {_INDEXED} AND id <= {_UPTO}; "
    f"UPDATE search_entry_fts_progress SET indexed_upto = {_UPTO}; END",
    # Only rows the tables hold: a 'delete' of a row never indexed would corrupt them.
    "CREATE TRIGGER search_entry_fts_delete AFTER DELETE ON sessions_api_searchentry "
    f"WHEN old.id <= {_INDEXED} BEGIN "
    "INSERT INTO search_entry_fts(search_entry_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); "
    "INSERT INTO search_pair_fts(search_pair_fts, rowid, pairs) "
    "VALUES ('delete', old.id, search_pairs(old.text)); END",
    "CREATE TRIGGER search_entry_fts_update AFTER UPDATE OF text ON sessions_api_searchentry "
    f"WHEN old.id <= {_INDEXED} BEGIN "
    "INSERT INTO search_entry_fts(search_entry_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); "
    "INSERT INTO search_entry_fts(rowid, text) VALUES (new.id, new.text); "
    "INSERT INTO search_pair_fts(search_pair_fts, rowid, pairs) "
    "VALUES ('delete', old.id, search_pairs(old.text)); "
    "INSERT INTO search_pair_fts(rowid, pairs) VALUES (new.id, search_pairs(new.text)); END",
]
# The triggers of migrations 0014 and 0018.
BACKWARD = [
    *DROP_TRIGGERS,
    "DROP TABLE IF EXISTS search_pair_fts",
    "CREATE TRIGGER search_entry_fts_catch_up AFTER INSERT ON sessions_api_searchentry "
    f"WHEN new.id - {_INDEXED} > {_LIMIT} BEGIN "
    "INSERT INTO search_entry_fts(rowid, text) SELECT id, text FROM sessions_api_searchentry "
    f"WHERE id > {_INDEXED} AND id <= {_UPTO}; "
    f"UPDATE search_entry_fts_progress SET indexed_upto = {_UPTO}; END",
    "CREATE TRIGGER search_entry_fts_delete AFTER DELETE ON sessions_api_searchentry "
    f"WHEN old.id <= {_INDEXED} BEGIN "
    "INSERT INTO search_entry_fts(search_entry_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER search_entry_fts_update AFTER UPDATE OF text ON sessions_api_searchentry "
    f"WHEN old.id <= {_INDEXED} BEGIN "
    "INSERT INTO search_entry_fts(search_entry_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); "
    "INSERT INTO search_entry_fts(rowid, text) VALUES (new.id, new.text); END",
]


def _sqlite(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "sqlite":
            return
        schema_editor.connection.ensure_connection()
        schema_editor.connection.connection.create_function(
            "search_pairs", 1, _tokens, deterministic=True
        )
        for statement in statements:
            schema_editor.execute(statement)

    return run


PG_FORWARD = [
    # A loop over the words: PostgreSQL's regular expressions took 0.7 ms (and a look-behind
    # 2.8 ms) for a row of 2,000 characters, this 0.24 ms.
    "CREATE OR REPLACE FUNCTION search_pairs(t text) RETURNS text[] "
    "LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$ "
    "DECLARE w text; prev text := ''; tokens text[] := '{}'; "
    "BEGIN FOREACH w IN ARRAY string_to_array(upper(t), ' ') LOOP "
    "IF length(prev) >= 3 AND length(w) >= 3 THEN "
    "tokens := tokens || (right(prev, 3) || left(w, 3)); END IF; "
    "prev := w; END LOOP; RETURN tokens; END $$",
    # Concurrently: at 1M sessions the build takes about 10 minutes, during which a plain
    # CREATE INDEX would hold every ingest back. An interrupted build leaves the index invalid;
    # running the migration again drops it first.
    "DROP INDEX CONCURRENTLY IF EXISTS search_entry_pairs",
    "CREATE INDEX CONCURRENTLY search_entry_pairs ON sessions_api_searchentry "
    "USING gin (search_pairs(text))",
]
PG_BACKWARD = [
    "DROP INDEX CONCURRENTLY IF EXISTS search_entry_pairs",
    "DROP FUNCTION IF EXISTS search_pairs(text)",
]


def _postgresql(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    # PostgreSQL builds its index concurrently, which no transaction may hold; SQLite's part
    # stays one transaction.
    atomic = False

    dependencies = [
        ("sessions_api", "0018_search_index_in_background"),
    ]

    operations = [
        migrations.RunPython(_sqlite(FORWARD), _sqlite(BACKWARD), atomic=True),
        migrations.RunPython(_postgresql(PG_FORWARD), _postgresql(PG_BACKWARD), atomic=False),
    ]
