"""The tokens of the spaces between words: a text holding a phrase holds its tokens."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from sessions_api.search.entries import normalise
from sessions_api.search.pairs import boundary_tokens, phrase_tokens, phrase_tokens_upper


def test_a_space_with_three_characters_on_each_side_makes_a_token():
    assert set(boundary_tokens("Your ORDER number is 4417").split()) == {"ourord", "dernum"}
    assert phrase_tokens("order number") == ["dernum"]
    assert phrase_tokens("rder numb") == ["dernum"]  # parts of words, three characters or more
    assert phrase_tokens("order of number") == []  # "of" beside both spaces
    assert phrase_tokens("er number") == []  # the word before may be longer: "order", "over"
    assert phrase_tokens("order") == []


def test_a_token_the_tokenizer_would_split_is_not_asked_for():
    assert phrase_tokens("ab\u200bc def") == []  # a format character inside
    assert phrase_tokens("注文番号 照合に失敗") == ["文番号照合に"]


words = st.text(alphabet=st.sampled_from("abcÉé注文ß.,_-\u200b"), min_size=1, max_size=6)


@given(st.lists(words, min_size=2, max_size=12), st.data())
def test_a_text_holding_a_phrase_holds_the_phrase_tokens(text_words, data):
    text = normalise(" ".join(text_words))
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    phrase = text[start:end].strip()
    held = set(boundary_tokens(text.upper()).split())  # case does not matter
    assert set(phrase_tokens(phrase)) <= held


CASES = [
    ("Your ORDER number is 4417", "order number"),
    ("the cat sat on the mat", "the cat sat"),
    ("ready\nplease confirm the booking", "please confirm the"),
    ("Straße \u017ftop nummer here", "STOP nummer"),  # a long s: its upper case is S
    ("注文番号 照合に失敗 order abc", "失敗 order abc"),
    ("a b c", "a b"),
]


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's search_pairs(text)")
@pytest.mark.parametrize(("text", "phrase"), CASES)
def test_postgresql_cuts_the_tokens_a_phrase_asks_for(text, phrase):
    with connection.cursor() as cursor:
        cursor.execute("SELECT search_pairs(%s)", [text])
        held = set(cursor.fetchone()[0])
    assert set(phrase_tokens_upper(phrase)) <= held


def test_the_migration_fills_the_index_with_the_tokens_the_product_deletes_by():
    # The table is contentless: a row is deleted by giving the tokens it was indexed with
    # again, so the migration's copy of the function must cut the same ones.
    migration = importlib.import_module("sessions_api.migrations.0019_search_pair_index")
    for text, _ in CASES:
        assert set(migration._tokens(text).split()) == set(boundary_tokens(text).split())
    assert migration._tokens(None) is None
