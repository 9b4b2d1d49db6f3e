"""Named durable state (sessions_api/state.py): one value per name, changed under a row lock."""

from __future__ import annotations

import pytest
from django.db import transaction

from sessions_api.models import JobState
from sessions_api.state import read_state, update_state, write_state

pytestmark = pytest.mark.django_db


def test_a_name_never_written_reads_empty():
    assert read_state(name="nothing:here") == {}


def test_written_value_reads_back():
    write_state(name="sync:position", value={"position": {"value": 3}})
    write_state(name="sync:position", value={"position": {"value": 4}})
    assert read_state(name="sync:position") == {"position": {"value": 4}}
    assert JobState.objects.filter(name="sync:position").count() == 1


def test_update_sees_the_stored_value_and_returns_the_new_one():
    write_state(name="counter", value={"n": 1})
    stored = update_state(name="counter", change=lambda value: {**value, "n": value["n"] + 1})
    assert stored == {"n": 2}
    assert read_state(name="counter") == {"n": 2}


def test_a_change_that_returns_none_leaves_the_value_as_it_is():
    write_state(name="lease", value={"owner": "a"})
    stored = update_state(name="lease", change=lambda value: None)
    assert stored == {"owner": "a"}
    assert read_state(name="lease") == {"owner": "a"}


def test_the_change_gets_a_copy_it_may_mutate():
    write_state(name="hours", value={"hours": ["h1"]})

    def mutate_and_refuse(value):
        value["hours"] = []
        return None

    assert update_state(name="hours", change=mutate_and_refuse) == {"hours": ["h1"]}
    assert read_state(name="hours") == {"hours": ["h1"]}


@pytest.mark.django_db(transaction=True)
def test_an_update_inside_a_transaction_rolls_back_with_it():
    write_state(name="dirty", value={"hours": []})
    with pytest.raises(RuntimeError), transaction.atomic():
        update_state(name="dirty", change=lambda value: {"hours": ["h1"]})
        raise RuntimeError("the caller's work failed")
    assert read_state(name="dirty") == {"hours": []}
