"""The dashboard's dates, numbers and cursors: out of range is a 400 naming the parameter
(the page shows its default data with the problem), and an export refuses before it streams."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from tests import factories

pytestmark = pytest.mark.django_db

EARLY = "0001-01-01T00:00:00+14:00"  # an aware time whose UTC value is before year 1
HUGE = "99999999999999999999999"

PAGES = [
    ("/sessions/", "since", EARLY),
    ("/sessions/", "until", EARLY),
    ("/sessions/", "min_duration", HUGE),
    ("/sessions/", "max_duration", HUGE),
    ("/audit/", "since", EARLY),
    ("/audit/", "until", EARLY),
    ("/", "since", EARLY),
    ("/", "until", EARLY),
    ("/errors/", "since", EARLY),
    ("/errors/", "until", EARLY),
]


@pytest.mark.parametrize(("path", "parameter", "value"), PAGES)
def test_out_of_range_filters_are_400_naming_the_parameter(viewer_client, path, parameter, value):
    factories.session()
    response = viewer_client.get(path, {parameter: value})
    assert response.status_code == 400
    assert f"{parameter}: " in response.context["problem"]
    assert "out of range" in response.content.decode()


@pytest.mark.parametrize("export", ["/sessions/export.csv", "/sessions/export.json"])
@pytest.mark.parametrize(("parameter", "value"), [("since", EARLY), ("min_duration", HUGE)])
def test_exports_refuse_before_streaming(viewer_client, export, parameter, value):
    factories.session()
    response = viewer_client.get(export, {parameter: value})
    assert response.status_code == 400
    assert not response.streaming
    assert response.content.decode().startswith(f"Export refused: {parameter}: ")


def test_exports_with_good_parameters_still_stream_every_row(viewer_client):
    factories.session(session_id="one")
    factories.session(session_id="two")
    response = viewer_client.get("/sessions/export.json", {"since": "2000-01-01T00:00"})
    assert response.status_code == 200 and response.streaming
    rows = json.loads(b"".join(response.streaming_content))
    assert sorted(row["external_id"] for row in rows) == ["one", "two"]


@pytest.mark.parametrize(
    ("page", "parameter"),
    [
        ("", "version"),
        ("", "around"),
        ("", "start"),
        ("timeline/", "start"),
        ("raw/", "version"),
        ("versions/", "a"),
    ],
)
def test_out_of_range_numbers_on_a_session_page_are_400(viewer_client, page, parameter):
    record = factories.session()
    response = viewer_client.get(f"/sessions/{record.id}/{page}", {parameter: HUGE})
    assert response.status_code == 400


def test_out_of_range_job_history_position_is_400(viewer_client):
    assert viewer_client.get("/jobs/", {"before": HUGE}).status_code == 400


def test_a_cursor_holding_an_out_of_range_time_is_400(viewer_client):
    factories.session()
    raw = json.dumps(["-updated_at", EARLY, str(uuid.uuid4()), 0]).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    response = viewer_client.get("/sessions/", {"cursor": cursor})
    assert response.status_code == 400
    assert response.context["problem"]


@pytest.mark.parametrize(("parameter", "value"), [("status", "complete"), ("format", "openai")])
def test_an_unknown_status_or_format_is_said_not_dropped(viewer_client, parameter, value):
    factories.session()
    response = viewer_client.get("/sessions/", {parameter: value})
    assert response.status_code == 400
    assert f"unknown {parameter} '{value}'; use one of:" in response.context["problem"]
    assert not response.context["rows"]
    export = viewer_client.get("/sessions/export.csv", {parameter: value})
    assert export.status_code == 400 and not export.streaming
    assert viewer_client.get("/sessions/", {"status": "completed,running"}).status_code == 200
