"""The one place that speaks to Django's database layer below the ORM.

Bulk DELETE. :func:`delete_by_ids` deletes rows and what refers to them with one statement per
related table, following the models' ``on_delete``: what purge needs for a batch of sessions.

Bulk INSERT. :func:`insert_rows` writes many rows of one table with one ``executemany``: the
ingest path (a session, its version, its derived rows), the rollups and the orm document
store use it instead of ``bulk_create``, whose model instance and SQL compilation per row cost
3x the whole insert of a session's derived rows.

WAL checkpoints (SQLite only; a no-op on other databases). With the default
``wal_autocheckpoint`` the COMMIT that pushes the WAL past 1,000 pages copies the whole WAL
back into the database file and syncs it before it returns. That copy runs after the write
lock is released, but the committing caller waits for it, and a purge batch of 200 sessions
leaves 3,000 to 7,000 pages (every index of every table it touches).
:func:`checkpoint_between_batches` has a batch job do that copy itself, between its
transactions, so neither its own commits nor an ingest request's meet a long WAL.

Planner statistics are deliberately left alone: nothing here runs ANALYZE or
``PRAGMA optimize``. SQLite's ``sqlite_stat1`` counts NULLs as one value, so for a mostly-NULL
indexed column (``parent_session_id``, ``expired_at``) it records "every row has the same
value", and the planner then scans the whole table for ``parent_session_id IN (...)`` (the
branches of a purged batch, a session's branches page) where the index finds nothing in
microseconds. The jobs' statements are instead shaped so the primary key is the only sensible
way in with or without statistics (lifecycle.batches.recheck).
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import CASCADE, DO_NOTHING, SET_NULL, signals
from django.db.models.deletion import Collector, get_candidate_relations_to_delete

# Values the database driver takes exactly as the ORM would hand them over: preparing a str
# for a text field, or an int or float for a numeric one, returns it unchanged, and that
# preparation was most of what was left of the insert's cost.
_NATIVE: tuple[tuple[type[models.Field], type], ...] = (
    (models.CharField, str),
    (models.TextField, str),
    (models.IntegerField, int),  # the small, positive and big integer fields too
    (models.FloatField, float),
)
# Fields whose values repeat across the rows of one insert (every derived row names the same
# session; rollup cells share a few bucket starts): each distinct value is prepared once.
_REPEATING = (models.ForeignKey, models.DateTimeField)


def insert_rows(
    model: type[models.Model],
    fields: Sequence[models.Field | str],
    rows: Sequence[Sequence[Any]],
    *,
    if_absent: bool = False,
    batch_size: int | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> int:
    """INSERT ``rows`` (a value per field of ``fields``, fields or their names) into
    ``model``'s table and return how many were inserted.

    Values are prepared by their field as the ORM would, except those it would return
    unchanged. ``if_absent`` adds ON CONFLICT DO NOTHING (SQLite and PostgreSQL), so a row
    whose key is taken is skipped instead of aborting the transaction. ``batch_size`` bounds
    the rows per ``executemany``.
    """
    if not rows:
        return 0
    db = connections[using]  # the connection itself: each use of the proxy costs
    sql, resolved, kinds = _insert_statement(model, tuple(fields), if_absent, using, db.vendor)
    repeats = len(rows) > 1
    prepare = [
        _preparer(f, kind, db, repeats=repeats) for f, kind in zip(resolved, kinds, strict=True)
    ]
    params = [[v if p is None else p(v) for p, v in zip(prepare, row, strict=True)] for row in rows]
    step = batch_size or len(params)
    inserted = 0
    with db.cursor() as cursor:
        for start in range(0, len(params), step):
            batch = params[start : start + step]
            if len(batch) == 1:
                cursor.execute(sql, batch[0])
            else:
                cursor.executemany(sql, batch)
            inserted += cursor.rowcount
    return inserted


def update_row(
    model: type[models.Model],
    pk: Any,
    fields: Sequence[str],
    values: Sequence[Any],
    *,
    using: str = DEFAULT_DB_ALIAS,
) -> int:
    """UPDATE ``fields`` (names) of the row of ``model`` whose primary key is ``pk`` to
    ``values``, prepared as :func:`insert_rows` prepares them; returns the rows updated (0 or 1).

    ``Model.save()`` writes every column and builds its statement anew on each call; a save of
    a session changes a few columns, so this writes those with a statement built once."""
    db = connections[using]
    sql, resolved, kinds = _update_statement(model, tuple(fields), using, db.vendor)
    preparers = [
        _preparer(f, kind, db, repeats=False) for f, kind in zip(resolved, kinds, strict=True)
    ]
    params = [v if p is None else p(v) for p, v in zip(preparers, values, strict=True)]
    params.append(prepare(model._meta.pk, pk, using=using))
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def select_rows(
    model: type[models.Model],
    where: Sequence[str],
    values: Sequence[Any],
    *,
    for_update: bool = False,
    using: str = DEFAULT_DB_ALIAS,
) -> list[models.Model]:
    """The rows of ``model`` whose fields named in ``where`` equal ``values``, as instances
    (``SELECT ... FOR UPDATE`` with ``for_update`` where the database has it).

    What ``model.objects.filter(...)`` gives, with the statement and the converters from
    database values built once: the ORM compiles both on every query, which cost a save more
    than its lock itself."""
    db = connections[using]
    sql, where_fields = _select_statement(model, tuple(where), for_update, using, db.vendor)
    params = [prepare(f, v, using=using) for f, v in zip(where_fields, values, strict=True)]
    attnames, converters = _row_converters(model, using, db.vendor)
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    rows = []
    for raw in found:
        row = list(raw)
        for position, expression, convert in converters:
            row[position] = convert(row[position], expression, db)
        rows.append(model.from_db(using, attnames, row))
    return rows


@functools.lru_cache(maxsize=64)
def _select_statement(
    model: type[models.Model], where: tuple[str, ...], for_update: bool, using: str, vendor: str
) -> tuple[str, list[models.Field]]:
    connection = connections[using]
    quote = connection.ops.quote_name
    where_fields = [model._meta.get_field(name) for name in where]
    sql = (
        f"SELECT {', '.join(quote(f.column) for f in model._meta.concrete_fields)}"
        f" FROM {quote(model._meta.db_table)}"
        f" WHERE {' AND '.join(f'{quote(f.column)} = %s' for f in where_fields)}"
    )
    if for_update and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    return sql, where_fields


@functools.lru_cache(maxsize=64)
def _row_converters(
    model: type[models.Model], using: str, vendor: str
) -> tuple[list[str], list[tuple[int, Any, Callable[..., Any]]]]:
    """(attribute names, [(position, column expression, converter)]): the conversions the
    ORM's compiler applies to each column of ``model`` read from this database."""
    connection = connections[using]
    converters = []
    for position, field in enumerate(model._meta.concrete_fields):
        expression = field.get_col(model._meta.db_table)
        for convert in connection.ops.get_db_converters(expression) + expression.get_db_converters(
            connection
        ):
            converters.append((position, expression, convert))
    return [f.attname for f in model._meta.concrete_fields], converters


def prepare(field: models.Field, value: Any, *, using: str = DEFAULT_DB_ALIAS) -> Any:
    """``value`` as the database driver takes it for ``field`` (a parameter of hand-written SQL:
    a UUID, a datetime)."""
    return field.get_db_prep_save(value, connection=connections[using])


@functools.lru_cache(maxsize=256)
def _update_statement(
    model: type[models.Model], fields: tuple[str, ...], using: str, vendor: str
) -> tuple[str, list[models.Field], list[tuple[str, type | None]]]:
    resolved = [model._meta.get_field(f) for f in fields]
    quote = connections[using].ops.quote_name
    sql = (
        f"UPDATE {quote(model._meta.db_table)}"
        f" SET {', '.join(f'{quote(f.column)} = %s' for f in resolved)}"
        f" WHERE {quote(model._meta.pk.column)} = %s"
    )
    return sql, resolved, [_field_kind(f) for f in resolved]


@functools.lru_cache(maxsize=256)
def _insert_statement(
    model: type[models.Model],
    fields: tuple[models.Field | str, ...],
    if_absent: bool,
    using: str,
    vendor: str,  # a test may point an alias at another database
) -> tuple[str, list[models.Field], list[tuple[str, type | None]]]:
    """The INSERT of ``fields`` into ``model``'s table, and the fields resolved: the same few
    statements run for every document ingested, and building one costs a field look-up and a
    quoted name per column."""
    resolved = [model._meta.get_field(f) if isinstance(f, str) else f for f in fields]
    quote = connections[using].ops.quote_name
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)}"
        f" ({', '.join(quote(f.column) for f in resolved)})"
        f" VALUES ({', '.join(['%s'] * len(resolved))})"
    )
    if if_absent:
        sql += " ON CONFLICT DO NOTHING"
    return sql, resolved, [_field_kind(f) for f in resolved]


def _preparer(
    field: models.Field,
    field_kind: tuple[str, type | None],
    db: BaseDatabaseWrapper,
    *,
    repeats: bool,
) -> Callable[[Any], Any] | None:
    kind, native = field_kind
    if kind == "str":
        return None  # the index holds only str in its text fields
    prepare = partial(field.get_db_prep_save, connection=db)
    if kind == "native":
        return lambda value: value if type(value) is native else prepare(value)
    if kind == "repeating" and repeats:
        return functools.cache(prepare)
    return prepare


def _field_kind(field: models.Field) -> tuple[str, type | None]:
    """How a field's values are prepared ("str", "native", "repeating" or "other"), worked out
    once per statement (it is cached with it) rather than once per insert."""
    for field_class, native in _NATIVE:
        if isinstance(field, field_class):
            return ("str" if native is str else "native"), native
    if isinstance(field, _REPEATING):
        return "repeating", None
    return "other", None


#: How often a batch job copies the WAL back (about 1 s of its batches' pages at a time).
CHECKPOINT_EVERY_S = 1.0


@contextmanager
def checkpoint_between_batches(*, using: str = DEFAULT_DB_ALIAS) -> Iterator[Callable[[], None]]:
    """For a job that writes in many short transactions: yields ``after_batch``, to call after
    each commit.

    Within the block this connection's commits do not checkpoint; ``after_batch`` runs a
    PASSIVE checkpoint instead, which waits for no reader or writer (ingestion keeps writing
    meanwhile) and leaves the WAL short, at most once every CHECKPOINT_EVERY_S: successive
    batches rewrite the same pages (the tables' and indexes' upper levels), which one
    checkpoint copies once instead of once per batch. The connection's own setting comes back
    afterwards.
    """
    connection = connections[using]
    if connection.vendor != "sqlite" or not connection.get_autocommit():
        # Another database, or inside an outer transaction (tests): nothing is committed here.
        yield lambda: None
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        previous = int(cursor.fetchone()[0])
        cursor.execute("PRAGMA wal_autocheckpoint=0")

    last = time.monotonic()

    def after_batch() -> None:
        nonlocal last
        if time.monotonic() - last < CHECKPOINT_EVERY_S:
            return
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        last = time.monotonic()

    try:
        yield after_batch
    finally:
        if connection.connection is not None:  # a closed connection's successor has the default
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA wal_autocheckpoint={previous}")


def delete_by_ids(model: type[models.Model], ids: Sequence[Any]) -> dict[str, int]:
    """Delete these rows of ``model``, applying each relation's ``on_delete`` with one
    statement per related table; returns the rows deleted per model label, as
    ``QuerySet.delete()`` does.

    The outcome of ``model.objects.filter(pk__in=ids).delete()`` without its collector, which
    first loads every row into Python: cascaded rows are deleted by key and SET_NULL links
    cleared the same way. The statements are written once per model and run as plain SQL:
    building a queryset per table and compiling it cost as long as running the statements,
    inside the caller's transaction (purge's write lock). When a relation needs more than
    that (PROTECT, a delete signal receiver, a cascade that cascades further) Django's
    collector does the whole batch.
    """
    if not ids:
        return {}
    using = router.db_for_write(model)
    connection = connections[using]
    steps = _direct_delete_statements(model, using)
    if steps is None:
        _, per_model = model._base_manager.using(using).filter(pk__in=ids).delete()
        return dict(per_model)
    pk = model._meta.pk
    params = [pk.get_db_prep_value(pk.to_python(value), connection) for value in ids]
    in_list = "(" + ", ".join(["%s"] * len(params)) + ")"
    deleted: dict[str, int] = defaultdict(int)
    with connection.cursor() as cursor:
        for label, statement in steps:
            cursor.execute(statement + in_list, params)
            if label is not None:
                deleted[label] += cursor.rowcount
    return dict(deleted)


def _direct_delete_statements(
    model: type[models.Model], using: str
) -> tuple[tuple[str | None, str], ...] | None:
    """(model label, or None for a cleared link; SQL up to its ``IN`` list) for every related
    table and then ``model``'s own, or None when the collector is needed."""
    planned = _direct_delete_sql(model, using)
    if planned is None:
        return None
    involved, statements = planned
    # Receivers come and go (tests connect them): checked on every call, not cached.
    if any(_has_delete_signals(each) for each in involved):
        return None
    return statements


@functools.cache
def _direct_delete_sql(
    model: type[models.Model], using: str
) -> tuple[tuple[type[models.Model], ...], tuple[tuple[str | None, str], ...]] | None:
    steps = _direct_delete_steps(model, using)
    if steps is None:
        return None
    quote = connections[using].ops.quote_name
    statements: list[tuple[str | None, str]] = []
    for foreign_key, action in steps:
        table, column = quote(foreign_key.model._meta.db_table), quote(foreign_key.column)
        if action is SET_NULL:
            statements.append((None, f"UPDATE {table} SET {column} = NULL WHERE {column} IN "))
        else:
            statements.append(
                (foreign_key.model._meta.label, f"DELETE FROM {table} WHERE {column} IN ")
            )
    # Nothing refers to these rows any more: delete them without collecting them again.
    table, column = quote(model._meta.db_table), quote(model._meta.pk.column)
    statements.append((model._meta.label, f"DELETE FROM {table} WHERE {column} IN "))
    involved = (model, *(foreign_key.model for foreign_key, _ in steps))
    return involved, tuple(statements)


def _direct_delete_steps(
    model: type[models.Model], using: str
) -> list[tuple[models.ForeignKey, Any]] | None:
    """(foreign key to ``model``, CASCADE or SET_NULL) for every relation, or None when one of
    them (or ``model`` itself) needs Django's collector to be deleted faithfully."""
    if _has_delete_signals(model):
        return None
    collector = Collector(using=using)
    steps: list[tuple[models.ForeignKey, Any]] = []
    for relation in get_candidate_relations_to_delete(model._meta):
        foreign_key = relation.field
        on_delete = foreign_key.remote_field.on_delete
        if on_delete is DO_NOTHING:
            continue
        if on_delete is SET_NULL:
            steps.append((foreign_key, SET_NULL))  # the collector sends no signal for these either
        elif on_delete is CASCADE and collector.can_fast_delete(
            foreign_key.model._base_manager.all(), from_field=foreign_key
        ):
            steps.append((foreign_key, CASCADE))
        else:
            return None
    return steps


def _has_delete_signals(model: type[models.Model]) -> bool:
    return signals.pre_delete.has_listeners(model) or signals.post_delete.has_listeners(model)
