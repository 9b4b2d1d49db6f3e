"""Start-up objects are frozen out of the garbage collector's reach (config/runtime.py)."""

from __future__ import annotations

import gc
import sys

import pytest

from config.runtime import freeze_startup_objects


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the suite runs as it did


def test_freezing_loads_the_views_and_moves_what_lives_out_of_the_collectors_reach(unfrozen):
    assert gc.get_freeze_count() == 0
    freeze_startup_objects(import_views=True)
    assert "config.urls" in sys.modules  # and through it every view
    assert gc.get_freeze_count() > 10_000
    # A full collection no longer walks them: it finds nothing older to visit.
    assert len(gc.get_objects(generation=2)) < gc.get_freeze_count()
