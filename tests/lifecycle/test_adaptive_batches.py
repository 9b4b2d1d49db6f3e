"""AdaptiveBatch: lifecycle batches sized by the lock time they measure."""

from __future__ import annotations

from sessions_api.lifecycle.batches import AdaptiveBatch


def test_a_slow_batch_shrinks_the_next_to_fit_the_target():
    batch = AdaptiveBatch(size=200, maximum=200, target_s=0.05)
    batch.observe(rows=200, seconds=0.2)  # 1 ms a row: 50 fit
    assert batch.size == 50
    batch.observe(rows=50, seconds=1.0)  # never below the floor
    assert batch.size == 25


def test_fast_batches_grow_back_at_most_double_and_never_past_the_maximum():
    batch = AdaptiveBatch(size=200, maximum=200, target_s=0.05, minimum=5)
    batch.observe(rows=200, seconds=2.0)
    assert batch.size == 5
    batch.observe(rows=5, seconds=0.0001)
    assert batch.size == 10
    for _ in range(10):
        batch.observe(rows=batch.size, seconds=0.0001)
    assert batch.size == 200


def test_the_minimum_never_exceeds_the_maximum():
    batch = AdaptiveBatch(size=2, maximum=2, minimum=5, target_s=0.05)
    batch.observe(rows=2, seconds=10.0)
    assert batch.size == 2


def test_rest_follows_the_last_hold_and_describe_reports_the_holds():
    batch = AdaptiveBatch(size=100, maximum=100, target_s=0.05, rest_ratio=1.0)
    batch.observe(rows=100, seconds=0.03)
    batch.observe(rows=100, seconds=0.01)
    assert batch.rest() == 0.01
    assert batch.describe()["lock_max_ms"] == 30.0
    assert batch.describe()["batches"] == 2
    assert AdaptiveBatch(size=10, rest_ratio=0.0).rest() == 0.0
