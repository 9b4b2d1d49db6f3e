"""CSV cells that a spreadsheet would run as a formula are kept as text, whatever disguise the
trigger wears (leading whitespace or line breaks, full-width and small forms)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboard.spreadsheet import csv_cell

pytestmark = pytest.mark.pure

TRIGGERS = [
    "=1+1",
    "+1",
    "-1",
    "@SUM(A1)",
    "\t=1",
    "\r=1",
    "\n=cmd|' /C calc'!A0",
    " =1",
    "\u00a0=1",
    "\u200b=1",
    "\uff1dHYPERLINK(1)",  # full-width equals
    "\uff0b1",
    "\uff0d1",
    "\uff20x",
    "\ufe66x",  # small equals
    "\u22121",  # minus sign
]


@pytest.mark.parametrize("text", TRIGGERS)
def test_every_formula_trigger_becomes_text(text):
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["hello", "a=b", "1-2", "", "ünïcode", "'quoted"])
def test_plain_text_is_unchanged(text):
    assert csv_cell(text) == text


def test_other_values():
    assert csv_cell(None) == ""
    assert csv_cell(3) == 3
    assert csv_cell(["a", "=b"]) == "a;=b"
    assert csv_cell(["=a"]) == "'=a"
    assert csv_cell(datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02T00:00:00+00:00"
