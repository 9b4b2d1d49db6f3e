"""The embedded SQLite database commits with synchronous=FULL: a 2xx means the document is on
disk, even across an OS crash or power cut (the cost is measured by bench/durability.py)."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_sqlite_connections_commit_with_synchronous_full():
    if connection.vendor != "sqlite":
        pytest.skip("synchronous is a SQLite setting; this run uses " + connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous")
        assert cursor.fetchone()[0] == 2  # FULL
