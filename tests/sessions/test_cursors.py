"""The keyset cursor codec every paged list shares."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest

from sessions_api.sessions import cursors

AT = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
SESSION = str(uuid.uuid4())


def raw_cursor(data: object, *, separators: tuple[str, str] = (",", ":")) -> str:
    encoded = json.dumps(data, separators=separators).encode()
    return base64.urlsafe_b64encode(encoded).decode().rstrip("=")


def test_a_position_comes_back_as_its_readers_return_it():
    cursor = cursors.encode_cursor("-updated_at", AT, SESSION)
    assert "=" not in cursor
    value, last_id = cursors.decode_cursor(
        cursor, cursors.aware_datetime, cursors.session_id, order="-updated_at"
    )
    assert (value, last_id) == (AT, SESSION)


def test_cursors_written_with_spaces_after_separators_still_decode():
    # The audit log wrote its cursors with json's default separators.
    cursor = raw_cursor([AT.isoformat(), 41], separators=(", ", ": "))
    assert cursors.decode_cursor(cursor, cursors.aware_datetime, cursors.integer) == (AT, 41)


def test_a_cursor_of_another_order_or_list_is_stale_not_malformed():
    for cursor in (
        cursors.encode_cursor("started_at", AT, SESSION),
        cursors.encode_cursor("-updated_at", AT, SESSION, 0),  # the explorer's shape
    ):
        with pytest.raises(cursors.MalformedCursor) as caught:
            cursors.decode_cursor(
                cursor, cursors.aware_datetime, cursors.session_id, order="-updated_at"
            )
        assert caught.value.message == cursors.OTHER_ORDER


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 !",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        raw_cursor({"at": AT.isoformat()}),
        raw_cursor([AT.isoformat()]),
        raw_cursor(["2025-03-01T12:30:00", 1]),  # naive time
        raw_cursor([AT.isoformat(), True]),  # a bool is not an id
        raw_cursor([AT.isoformat(), "7"]),
    ],
)
def test_altered_cursors_are_malformed(cursor):
    with pytest.raises(cursors.MalformedCursor) as caught:
        cursors.decode_cursor(cursor, cursors.aware_datetime, cursors.integer)
    assert caught.value.message == cursors.MALFORMED


def test_a_session_id_must_be_a_uuid_and_a_direction_zero_or_one():
    with pytest.raises(cursors.MalformedCursor):
        cursors.session_id("1 OR 1=1")
    assert cursors.flag(1) is True and cursors.flag(0) is False
    with pytest.raises(cursors.MalformedCursor):
        cursors.flag(2)
