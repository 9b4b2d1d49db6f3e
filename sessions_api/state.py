"""Named durable state: small JSON values kept between runs (a sync position, the rollup
watermark and dirty hours, a job's lock lease), one ``JobState`` row per name.

Reads are plain. Every change is a read-modify-write on the row under ``SELECT ... FOR
UPDATE`` (on SQLite the IMMEDIATE transaction serialises writers), so two processes changing
the same name never lose each other's update.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.db import IntegrityError, transaction

from sessions_api.models import JobState

#: Gets a copy of the stored value; returns the value to store, or None to leave it as is.
Change = Callable[[dict[str, Any]], Mapping[str, Any] | None]


def read_state(*, name: str) -> dict[str, Any]:
    """The value stored under ``name``; empty when there is none yet."""
    value = JobState.objects.filter(name=name).values_list("value", flat=True).first()
    return dict(value or {})


def update_state(*, name: str, change: Change) -> dict[str, Any]:
    """Apply ``change`` to the value under a row lock and return the value stored afterwards.

    Runs in its own transaction, or as a savepoint inside the caller's (the change then
    commits or rolls back with the caller's work)."""
    with transaction.atomic():
        row = _locked_row(name)
        current = dict(row.value or {})
        new = change(dict(current))
        if new is None:
            return current
        row.value = dict(new)
        row.save(update_fields=["value", "updated_at"])
        return dict(row.value)


def write_state(*, name: str, value: Mapping[str, Any]) -> None:
    """Replace the value under ``name``."""
    update_state(name=name, change=lambda _current: value)


def _locked_row(name: str) -> JobState:
    row = JobState.objects.select_for_update().filter(name=name).first()
    if row is None:
        try:
            # A savepoint: losing the race to create the row must not end the transaction.
            with transaction.atomic():
                row = JobState.objects.create(name=name, value={})
        except IntegrityError:
            row = JobState.objects.select_for_update().get(name=name)
    return row
