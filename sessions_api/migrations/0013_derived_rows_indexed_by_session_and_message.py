"""Tool-call and error rows indexed by (session, message_seq), tool calls also by
(session, call_id) and, for those still pending, by (session, message_seq) alone: a save that
appends to a session then reads and replaces its rows from one message on at the cost of what it
finds. The composite index leads with the session, so the foreign key's own index on the
session alone goes, and so does the index on a tool call's name alone, which (name, occurred_at)
leads with: each only cost every insert. Both are dropped by name, since altering the fields
would make SQLite copy both tables."""

import django.db.models.deletion
from django.db import migrations, models

# (table, column) of the single-column indexes that go.
_DROPPED = (
    ("sessions_api_toolcallrecord", "session_id"),
    ("sessions_api_sessionerror", "session_id"),
    ("sessions_api_toolcallrecord", "name"),
)


def _single_column_indexes(schema_editor, table, column):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return [
        name
        for name, info in constraints.items()
        if info["index"]
        and not info["primary_key"]
        and not info["unique"]
        and info["columns"] == [column]
    ]


def drop_single_column_indexes(apps, schema_editor):
    for table, column in _DROPPED:
        for name in _single_column_indexes(schema_editor, table, column):
            schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")


def create_single_column_indexes(apps, schema_editor):
    quote = schema_editor.quote_name
    for table, column in _DROPPED:
        if not _single_column_indexes(schema_editor, table, column):
            name = quote(f"{table}_{column}_only")
            schema_editor.execute(f"CREATE INDEX {name} ON {quote(table)} ({quote(column)})")


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_api", "0012_documentversion_append_point"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="sessionerror",
            index=models.Index(
                fields=["session", "message_seq"], name="sessionerror_session_seq_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="toolcallrecord",
            index=models.Index(fields=["session", "message_seq"], name="toolcall_session_seq_idx"),
        ),
        migrations.AddIndex(
            model_name="toolcallrecord",
            index=models.Index(fields=["session", "call_id"], name="toolcall_session_call_idx"),
        ),
        migrations.AddIndex(
            model_name="toolcallrecord",
            index=models.Index(
                condition=models.Q(("status", "pending")),
                fields=["session", "message_seq"],
                name="toolcall_pending_idx",
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="sessionerror",
                    name="session",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="errors",
                        to="sessions_api.session",
                    ),
                ),
                migrations.AlterField(
                    model_name="toolcallrecord",
                    name="name",
                    field=models.CharField(max_length=255),
                ),
                migrations.AlterField(
                    model_name="toolcallrecord",
                    name="session",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="tool_calls",
                        to="sessions_api.session",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunPython(drop_single_column_indexes, create_single_column_indexes),
            ],
        ),
    ]
