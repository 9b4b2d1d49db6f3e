"""Fixtures for the reliability matrix (RELIABILITY.md; MATRIX.md beside this file maps every
row to its tests). The live-process helpers are in reliability_support.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache


@pytest.fixture
def clean_cache() -> Iterator[None]:
    """Rate-limit counters and cached derivations from another test must not leak in."""
    cache.clear()
    yield
    cache.clear()
