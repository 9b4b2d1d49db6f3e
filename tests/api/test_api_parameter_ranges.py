"""Dates, numbers and cursors outside what can be stored or compared are a 400 naming the
parameter, never an overflow inside a query (a 500)."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from tests import factories

pytestmark = pytest.mark.django_db

# Aware times whose UTC value leaves years 1-9999, and one just inside each end.
OUT_OF_RANGE_MOMENTS = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:00:00-05:00"]
HUGE = "99999999999999999999999"


def _cursor(*values) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


def assert_names(response, parameter: str) -> None:
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body["code"] == "invalid_query"
    assert body["path"] == parameter
    assert parameter in body["message"]


@pytest.mark.parametrize("moment", OUT_OF_RANGE_MOMENTS)
@pytest.mark.parametrize("parameter", ["since", "until"])
def test_out_of_range_times_are_400_on_every_list(api, moment, parameter):
    record = factories.session()
    assert_names(api.get("/sessions", **{parameter: moment}), parameter)
    assert_names(api.get(f"/sessions/{record.id}/audit", **{parameter: moment}), parameter)


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/sessions", "limit"),
        ("/sessions/{id}/raw", "version"),
        ("/sessions/{id}/timeline", "version"),
        ("/sessions/{id}/timeline", "limit"),
        ("/sessions/{id}/audit", "limit"),
    ],
)
def test_out_of_range_numbers_are_400(api, path, parameter):
    record = factories.session()
    assert_names(api.get(path.format(id=record.id), **{parameter: HUGE}), parameter)


def test_times_just_inside_the_range_are_answered(api):
    factories.session()
    response = api.get("/sessions", since="0001-01-02T00:00:00+00:00", until="9999-12-30T00:00Z")
    assert response.status_code == 200
    assert len(response.json()["items"]) == 1


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor("-updated_at", "0001-01-01T00:00:00+14:00", str(uuid.uuid4())),
        _cursor("message_count", 2**70, str(uuid.uuid4())),
    ],
)
def test_cursors_holding_out_of_range_values_are_400(api, cursor):
    factories.session()
    order = (
        "message_count"
        if "message_count" in base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        else "-updated_at"
    )
    assert_names(api.get("/sessions", cursor=cursor, order=order), "cursor")
